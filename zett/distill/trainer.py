"""The distillation loop: setup, step, evaluate, save/resume (SPEC §5.3), on ``accelerate``.

Normalisation: every loss is divided by a **global** count (ALM and ULD: aligned
chunks, SFT: scored student tokens) summed over all micro-batches of the step
and all processes, so gradient accumulation and several processes give the
same update as one process with the same global batch.
"""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from hypernet.files import fresh_tmp, replace_dir

from ..losses import get_loss, token_stats
from .config import DistillConfig
from .data import split_micro

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What a step needs besides the batch."""

    acc: Accelerator
    config: DistillConfig
    teacher: Any
    student_boundary: torch.Tensor
    teacher_boundary: torch.Tensor
    cache: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    @property
    def needs_hidden(self) -> bool:
        return bool(self.config.alm.get("hidden_weight", 0.0)) and "alm" in self.config.losses

    @property
    def needs_logits(self) -> bool:
        return "uld" in self.config.losses


# -- setup -----------------------------------------------------------------------------------------------------


def prepare_trainable(model: Any, config: DistillConfig) -> Any:
    """Freeze what the trainable set excludes; wrap with LoRA for ``embeddings+lora``."""
    if config.trainable == "full":
        model.requires_grad_(True)
        return model
    if config.trainable == "embeddings+lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                          target_modules="all-linear", bias="none")
        model = get_peft_model(model, lora)
    else:
        model.requires_grad_(False)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.get_input_embeddings().weight.requires_grad_(True)
    if base.get_output_embeddings() is not None:
        base.get_output_embeddings().weight.requires_grad_(True)
    return model


def make_optimizer(model: Any, config: DistillConfig) -> tuple[torch.optim.Optimizer, Any]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.dim() < 2 or "norm" in name.lower() else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=config.lr, betas=(config.beta1, config.beta2), eps=1e-8)

    def schedule(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / (config.warmup_steps + 1)
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


# -- teacher and student outputs -----------------------------------------------------------------------------


def _forward(model: Any, ids: torch.Tensor, mask: torch.Tensor, boundary: torch.Tensor, *, hidden: bool,
             logits: bool) -> dict[str, torch.Tensor]:
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=hidden)
    stats = token_stats(out.logits, ids, boundary, mask)
    if hidden:
        stats["hidden"] = out.hidden_states[-1]
    if logits:
        stats["logits"] = out.logits
    return stats


def teacher_outputs(ctx: Context, mb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Teacher statistics for a micro-batch, from the cache where possible (the teacher's side of a text never
    changes: its tokenization is fixed)."""
    ids, mask = mb["teacher_input_ids"].to(ctx.acc.device), mb["teacher_attention_mask"].to(ctx.acc.device)
    keys = mb["text_index"].tolist()
    use_cache = ctx.config.cache_teacher and not ctx.needs_logits
    if not use_cache or any(k not in ctx.cache for k in keys):
        with torch.no_grad():
            out = _forward(ctx.teacher, ids, mask, ctx.teacher_boundary, hidden=ctx.needs_hidden,
                           logits=ctx.needs_logits)
        if not use_cache:
            return out
        for row, k in enumerate(keys):
            n = int(mask[row].sum())
            ctx.cache[k] = {name: v[row, :n].detach().cpu() for name, v in out.items()}
    out = {}
    for name in ctx.cache[keys[0]]:
        rows = [ctx.cache[k][name] for k in keys]
        padded = torch.zeros((len(rows), ids.shape[1]) + rows[0].shape[1:], dtype=rows[0].dtype)
        for r, t in enumerate(rows):
            padded[r, :len(t)] = t
        out[name] = padded.to(ctx.acc.device)
    return out


# -- one optimizer step ----------------------------------------------------------------------------------------


def global_counts(ctx: Context, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    local = torch.tensor([float(batch["num_chunks"].sum()),
                          float(batch["student_attention_mask"][:, 1:].sum())], device=ctx.acc.device)
    total = ctx.acc.reduce(local, reduction="sum") if ctx.acc.num_processes > 1 else local
    return {"alm": total[0], "uld": total[0], "sft": total[1]}


def train_step(model: Any, optimizer: Any, scheduler: Any, batch: dict, ctx: Context) -> dict[str, float]:
    counts = global_counts(ctx, batch)
    parts: dict[str, float] = {name: 0.0 for name in ctx.config.losses}
    micro = split_micro(batch, ctx.config.grad_accum)
    for i, mb in enumerate(micro):
        t_out = teacher_outputs(ctx, mb)
        sync = ctx.acc.no_sync(model) if i < len(micro) - 1 and ctx.acc.num_processes > 1 else nullcontext()
        with sync, ctx.acc.autocast():
            ids = mb["student_input_ids"].to(ctx.acc.device)
            mask = mb["student_attention_mask"].to(ctx.acc.device)
            s_out = _forward(model, ids, mask, ctx.student_boundary, hidden=ctx.needs_hidden, logits=ctx.needs_logits)
            dev_mb = {k: v.to(ctx.acc.device) for k, v in mb.items()}
            total = 0.0
            for name, weight in ctx.config.losses.items():
                kwargs = dict(ctx.config.alm) if name == "alm" else {}
                value = get_loss(name)(t_out, s_out, dev_mb, normalizer=counts[name], **kwargs)
                parts[name] += float(value.detach()) * ctx.acc.num_processes
                total = total + weight * value
        if not torch.isfinite(total):
            raise RuntimeError(f"loss became {float(total)} at this step; lower lr (now {ctx.config.lr}) or check "
                               "the data; the last checkpoint is intact")
        # DDP averages gradients over processes; the losses are already global means, so undo the average
        ctx.acc.backward(total * ctx.acc.num_processes)
    if ctx.config.grad_clip:
        ctx.acc.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], ctx.config.grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    if ctx.acc.num_processes > 1:
        reduced = ctx.acc.reduce(torch.tensor(list(parts.values()), device=ctx.acc.device), reduction="mean")
        parts = dict(zip(parts, reduced.tolist()))
    parts["loss"] = sum(ctx.config.losses[n] * parts[n] for n in ctx.config.losses)
    parts["lr"] = scheduler.get_last_lr()[0]
    return parts


# -- checkpoints -----------------------------------------------------------------------------------------------


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(run_dir: Path, model: Any, optimizer: Any, scheduler: Any, step: int,
                    config: DistillConfig) -> None:
    """Write ``run_dir/checkpoint`` atomically (a temporary directory renamed over the old one)."""
    final = run_dir / "checkpoint"
    tmp = fresh_tmp(final)
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state()}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "time": time.time()}))
    (tmp / "config.yaml").write_text(config.to_yaml())
    replace_dir(tmp, final)


def load_checkpoint(run_dir: Path, model: Any, optimizer: Any, scheduler: Any) -> int:
    """Restore trainable weights, optimizer, schedule and RNG; returns the step to continue from (0 if none)."""
    ckpt = run_dir / "checkpoint"
    if not (ckpt / "state.json").exists():
        return 0
    state = load_file(str(ckpt / "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = [n for n in state if n not in params]
    if missing:
        raise ValueError(f"checkpoint in {ckpt} does not fit this model ({len(missing)} unknown tensors, e.g. "
                         f"{missing[0]}); use a fresh run directory")
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor)
    extra = torch.load(ckpt / "optimizer.pt", weights_only=False)
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    torch.set_rng_state(extra["rng"])
    return int(json.loads((ckpt / "state.json").read_text())["step"])


def log_metrics(run_dir: Path | None, row: dict) -> None:
    if run_dir is None:
        return
    with (run_dir / "metrics.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def progress_bar(acc: Accelerator, first: int, total: int, enabled: bool) -> Any:
    return tqdm(total=total, initial=first, desc="distill", disable=not (enabled and acc.is_main_process))


StepCallback = Callable[[int, dict], "bool | None"]
