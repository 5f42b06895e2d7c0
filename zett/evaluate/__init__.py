"""Evaluation users can trust: bits per byte, multiple-choice tasks and agreement with the original model, each
tokenizer-fair and each with a confidence interval.

* :func:`bits_per_byte` / :func:`score`: language modelling on held-out text (:mod:`zett.evaluate.bpb`);
* :func:`choice_accuracy`: multiple-choice tasks by log-likelihood per byte (:mod:`zett.evaluate.tasks`);
* :func:`agreement`: the original model's outputs under the transferred one, similarity of greedy outputs and
  the chunk-level ALM divergence (:mod:`zett.evaluate.agreement`);
* :func:`compare`: the paired difference of two models scored on the same items, with its interval
  (:mod:`zett.evaluate.stats`).
"""

from .agreement import (
    CHAT_PROMPTS,
    AgreementResult,
    ItemScores,
    agreement,
    chrf,
    prompts_from_texts,
    teacher_divergence,
)
from .bpb import BPBResult, bits_per_byte, score, token_logprobs
from .stats import Estimate, compare
from .tasks import ChoiceResult, Task, TaskResult, choice_accuracy, load_tasks, read_task

__all__ = [
    "AgreementResult",
    "BPBResult",
    "CHAT_PROMPTS",
    "ChoiceResult",
    "Estimate",
    "ItemScores",
    "Task",
    "TaskResult",
    "agreement",
    "bits_per_byte",
    "choice_accuracy",
    "chrf",
    "compare",
    "load_tasks",
    "prompts_from_texts",
    "read_task",
    "score",
    "teacher_divergence",
    "token_logprobs",
]
