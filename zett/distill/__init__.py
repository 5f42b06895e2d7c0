"""``zett.distill``: train a student to match a teacher that speaks another tokenizer (SPEC §5.3).

    model = zett.distill(student, student_tok, teacher, teacher_tok, "train.jsonl",
                         DistillConfig(steps=100, losses={"alm": 1.0}), run_dir="runs/x").model

The loop, checkpoints and logging are the shared training runtime's (:mod:`zett.training`); a run directory
holds ``config.yaml``, ``metrics.jsonl``, ``curves.svg`` and an atomic ``checkpoint/``; calling again with the
same directory resumes where it stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers_zoo import load_tokenizer

from ..data import read_texts
from ..evaluate import bits_per_byte
from ..losses import ALIGNED, boundary_mask
from ..losses.bld import ByteTrie
from ..training import Runtime, StepCallback
from .chat import read_prompts, require_template, teacher_conversations
from .config import DistillConfig
from .data import StepBatches, default_teacher_length, loader
from .trainer import DistillObjective, build_heads, prepare_trainable

log = logging.getLogger(__name__)


@dataclass
class DistillResult:
    model: Any
    metrics: list[dict]
    steps: int


def distill(
    student: Any,
    student_tokenizer: Any,
    teacher: Any,
    teacher_tokenizer: Any,
    data: Any,
    config: DistillConfig | dict | None = None,
    *,
    eval_data: Any = None,
    run_dir: str | Path | None = None,
    on_step: StepCallback | None = None,
    progress: bool = True,
) -> DistillResult:
    """Distil ``teacher`` into ``student`` (in place) and return the trained student.

    ``data``/``eval_data``: JSONL or text file, list of strings or a ``datasets`` dataset. With
    ``config.chat_prompts``, conversations the teacher writes join ``data`` (:mod:`zett.distill.chat`).
    ``on_step(step, metrics)`` may return ``False`` to stop early (as a kill would: no extra checkpoint).
    With ``embeddings+lora`` the returned model has the LoRA weights merged (a plain model), stopped early or not.
    """
    config = DistillConfig.from_dict(config) if isinstance(config, dict) else (config or DistillConfig())
    texts = read_texts(data)
    eval_texts = read_texts(eval_data, max_docs=config.eval_docs) if eval_data is not None else []
    student_tok, teacher_tok = load_tokenizer(student_tokenizer), load_tokenizer(teacher_tokenizer)
    if len(student_tok) > student.get_input_embeddings().weight.shape[0]:
        raise ValueError(
            f"student tokenizer has {len(student_tok)} tokens but the student only "
            f"{student.get_input_embeddings().weight.shape[0]} embeddings; transfer it first"
        )
    prompts = read_prompts(config.chat_prompts) if config.chats_per_step() else []
    if prompts:
        require_template(teacher_tok, "teacher")
        require_template(student_tok, "student")
    rt = Runtime(config, run_dir, name="distill")
    procs = rt.procs
    if config.batch_size % procs.num_processes:
        raise ValueError(f"batch_size {config.batch_size} must be a multiple of the {procs.num_processes} processes")
    heads = build_heads(student, teacher, config)
    first = rt.attach(prepare_trainable(student, config), heads)
    rt.model.train()
    teacher.requires_grad_(False)
    teacher.eval().to(rt.device)
    chats = []
    if prompts:
        chats = teacher_conversations(
            teacher, teacher_tok, prompts, max_new_bytes=config.chat_max_bytes, run_dir=rt.run, write=rt.is_main_process
        )
    objective = DistillObjective(
        config,
        teacher,
        boundary_mask(student_tok),
        boundary_mask(teacher_tok),
        rt.device,
        heads=heads,
        teacher_trie=ByteTrie(teacher_tok) if config.byte_targets else None,
        texts=texts,
    )
    t_len = config.teacher_max_length or default_teacher_length(student_tok, teacher_tok, texts, config.max_length)
    # every process draws the whole global batch of a step and keeps its share
    dataset = StepBatches(
        texts,
        student_tok,
        teacher_tok,
        batch_size=config.batch_size,
        max_length=config.max_length,
        teacher_max_length=t_len,
        seed=config.seed,
        first=first,
        last=config.steps,
        rank=procs.process_index,
        world=procs.num_processes,
        byte_targets=config.byte_targets,
        align=not config.lazy_teacher or any(name in ALIGNED for name in config.losses),
        chats=chats,
        chats_per_step=config.chats_per_step(),
    )

    def evaluate(step: int, batch: dict, row: dict) -> None:
        if eval_texts and config.eval_every and step % config.eval_every == 0 and step < config.steps:
            row["eval_bpb"] = _evaluate(rt.unwrapped, student_tok, eval_texts)

    try:
        metrics, step, stopped = rt.fit(
            loader(dataset, config.num_workers), objective, on_step=on_step, progress=progress, annotate=evaluate
        )
        if eval_texts and not stopped:
            metrics.append({"step": step, "eval_bpb": _evaluate(rt.unwrapped, student_tok, eval_texts)})
            rt.write_final(metrics[-1])
    finally:
        rt.close()
    final = rt.unwrapped
    if hasattr(final, "merge_and_unload"):
        final = final.merge_and_unload()
    final.eval()
    return DistillResult(final, metrics, step)


def _evaluate(model: Any, tokenizer: Any, texts: list[str]) -> float:
    was_training = model.training
    model.eval()
    value = bits_per_byte(model, tokenizer, texts, progress=False)
    model.train(was_training)
    return value


__all__ = ["DistillConfig", "DistillResult", "distill"]
