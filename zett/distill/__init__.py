"""``zett.distill``: train a student to match a teacher that speaks another tokenizer (SPEC §5.3).

    model = zett.distill(student, student_tok, teacher, teacher_tok, "train.jsonl",
                         DistillConfig(steps=100, losses={"alm": 1.0}), run_dir="runs/x").model

A run directory holds ``config.yaml``, ``metrics.jsonl`` and an atomic
``checkpoint/``; calling again with the same directory resumes where it stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from tokenizers_zoo import load_tokenizer

from ..data import read_texts
from ..evaluate import bits_per_byte
from ..losses import boundary_mask
from .config import DistillConfig
from .data import StepBatches, default_teacher_length, loader
from ..losses.bld import ByteTrie
from .trainer import (Context, StepCallback, build_heads, load_checkpoint, log_metrics, make_accelerator,
                      make_optimizer, prepare_trainable, progress_bar, save_checkpoint, train_step)

log = logging.getLogger(__name__)


@dataclass
class DistillResult:
    model: Any
    metrics: list[dict]
    steps: int


def distill(student: Any, student_tokenizer: Any, teacher: Any, teacher_tokenizer: Any, data: Any,
            config: DistillConfig | dict | None = None, *, eval_data: Any = None,
            run_dir: str | Path | None = None, on_step: StepCallback | None = None,
            progress: bool = True) -> DistillResult:
    """Distil ``teacher`` into ``student`` (in place) and return the trained student.

    ``data``/``eval_data``: JSONL or text file, list of strings or a ``datasets`` dataset.
    ``on_step(step, metrics)`` may return ``False`` to stop early (as a kill would: no extra checkpoint).
    With ``embeddings+lora`` the returned model has the LoRA weights merged (a plain model).
    """
    config = DistillConfig.from_dict(config) if isinstance(config, dict) else (config or DistillConfig())
    texts = read_texts(data)
    eval_texts = read_texts(eval_data, max_docs=config.eval_docs) if eval_data is not None else []
    student_tok, teacher_tok = load_tokenizer(student_tokenizer), load_tokenizer(teacher_tokenizer)
    if len(student_tok) > student.get_input_embeddings().weight.shape[0]:
        raise ValueError(f"student tokenizer has {len(student_tok)} tokens but the student only "
                         f"{student.get_input_embeddings().weight.shape[0]} embeddings; transfer it first")
    run = Path(run_dir).expanduser() if run_dir is not None else None
    acc = make_accelerator(config.mixed_precision)
    if run is not None and acc.is_main_process:
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.yaml").write_text(config.to_yaml())
    torch.manual_seed(config.seed)
    heads = build_heads(student, teacher, config).to(acc.device)
    model = prepare_trainable(student, config)
    optimizer, scheduler = make_optimizer(model, config, heads)
    first = load_checkpoint(run, model, optimizer, scheduler, heads) if run is not None else 0
    if first:
        log.info("resuming %s at step %d", run, first)
    model, optimizer = acc.prepare(model, optimizer)
    model.train()
    teacher.requires_grad_(False)
    teacher.eval().to(acc.device)
    if config.batch_size % acc.num_processes:
        raise ValueError(f"batch_size {config.batch_size} must be a multiple of the {acc.num_processes} processes")
    ctx = Context(acc, config, teacher, boundary_mask(student_tok), boundary_mask(teacher_tok), heads=heads,
                  teacher_trie=ByteTrie(teacher_tok) if config.byte_targets else None, texts=texts)
    t_len = config.teacher_max_length or default_teacher_length(student_tok, teacher_tok, texts, config.max_length)
    # every process draws the whole global batch of a step and keeps its share
    dataset = StepBatches(texts, student_tok, teacher_tok, batch_size=config.batch_size,
                          max_length=config.max_length, teacher_max_length=t_len, seed=config.seed, first=first,
                          last=config.steps, rank=acc.process_index, world=acc.num_processes,
                          byte_targets=config.byte_targets)
    metrics: list[dict] = []
    bar = progress_bar(acc, first, config.steps, progress)
    step, start = first, time.perf_counter()
    for batch in loader(dataset, config.num_workers):
        row = train_step(model, optimizer, scheduler, batch, ctx)
        step += 1
        row.update(step=step, seconds=time.perf_counter() - start)
        if eval_texts and config.eval_every and step % config.eval_every == 0 and step < config.steps:
            row["eval_bpb"] = _evaluate(acc, model, student_tok, eval_texts)
        metrics.append(row)
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.4f}")
        if acc.is_main_process:
            log_metrics(run, row)
        if on_step is not None and on_step(step, row) is False:
            bar.close()
            return DistillResult(acc.unwrap_model(model), metrics, step)
        if run is not None and acc.is_main_process and (step % config.save_every == 0 or step == config.steps):
            save_checkpoint(run, acc.unwrap_model(model), optimizer, scheduler, step, config, heads)
        acc.wait_for_everyone()
    bar.close()
    final = acc.unwrap_model(model)
    if eval_texts:
        bpb = _evaluate(acc, model, student_tok, eval_texts)
        metrics.append({"step": step, "eval_bpb": bpb})
        if acc.is_main_process:
            log_metrics(run, {"step": step, "eval_bpb": bpb})
    if hasattr(final, "merge_and_unload"):
        final = final.merge_and_unload()
    final.eval()
    return DistillResult(final, metrics, step)


def _evaluate(acc: Accelerator, model: Any, tokenizer: Any, texts: list[str]) -> float:
    unwrapped = acc.unwrap_model(model)
    was_training = unwrapped.training
    unwrapped.eval()
    value = bits_per_byte(unwrapped, tokenizer, texts, progress=False)
    unwrapped.train(was_training)
    return value


__all__ = ["DistillConfig", "DistillResult", "distill"]
