"""One optimizer step, the same for every trainer: the trainer's objective gives micro-batches, targets and a loss.

Normalisation: every loss is divided by a **global** count (ALM and ULD: aligned chunks, SFT and BLD: scored
student tokens) summed over all micro-batches of the step and all processes, so gradient accumulation and several
processes give the same update as one process with the same global batch. The phases of a step are separate
calls (``objective.targets``, ``objective.loss``, backward, :func:`apply_gradients`) so a profiler sees each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from .processes import Processes

FUSED_DEVICES = ("cpu", "cuda")  # where torch's AdamW has a fused kernel for float parameters


@dataclass
class StepInfo:
    """What a micro-batch's loss needs to know about its step."""

    counts: dict[str, torch.Tensor]  # loss name -> global normaliser of the step (all micro-batches, processes)
    micro_batches: int
    processes: int


class Objective(Protocol):
    """What a trainer supplies: its micro-batches, the fixed targets of one (no gradient, e.g. a teacher's
    outputs) and the loss on it. ``loss`` returns the weighted total and the values to log; a loss named in
    ``weights`` logs each process's share of the global value (the shares are summed over processes), anything
    else (e.g. ``w_<loss>``) is averaged over processes; all are summed over micro-batches."""

    weights: dict[str, float]

    def split(self, batch: dict[str, Any]) -> list[dict[str, Any]]: ...

    def targets(self, mb: dict[str, Any]) -> Any: ...

    def loss(
        self, model: nn.Module, mb: dict[str, Any], targets: Any, info: StepInfo
    ) -> tuple[torch.Tensor, dict[str, float]]: ...


def make_optimizer(
    params: list[tuple[str, nn.Parameter]], config: Any
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no weight decay on biases and norms) over the trainable ``(name, parameter)`` pairs; linear warm-up
    over ``config.warmup_steps``, then cosine decay to 10% of ``config.lr`` at ``config.steps``. ``config.fused_adamw``
    (where the device has the fused kernel): AdamW's fused implementation."""
    decay, no_decay = [], []
    for name, p in params:
        if p.requires_grad:
            (no_decay if p.dim() < 2 or "norm" in name.lower() else decay).append(p)
    # fused: one kernel over all parameters instead of a loop per tensor (the same update to float tolerance)
    devices = {p.device.type for p in decay + no_decay}
    fused = bool(getattr(config, "fused_adamw", False)) and devices <= set(FUSED_DEVICES)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(config.beta1, config.beta2),
        eps=1e-8,
        fused=fused or None,
    )

    def schedule(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / (config.warmup_steps + 1)
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


def global_counts(procs: Processes, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Per loss, its normaliser summed over the step's micro-batches and processes: aligned chunks (ALM, ULD) or
    scored student tokens (SFT, BLD)."""
    local = torch.tensor(
        [float(batch["num_chunks"].sum()), float(batch["student_attention_mask"][:, 1:].sum())], device=procs.device
    )
    total = procs.reduce(local, "sum")
    return {"alm": total[0], "uld": total[0], "sft": total[1], "bld": total[1]}


def optimizer_step(
    procs: Processes,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    objective: Objective,
    batch: dict[str, Any],
    *,
    heads: nn.Module | None = None,
    grad_clip: float = 0.0,
) -> dict[str, float]:
    """One optimizer step on this process's share of ``batch``; returns the logged values (reduced over processes),
    ``loss`` (their weighted sum) and ``lr``. ``heads``: trainable modules outside ``model`` (not DDP-wrapped)."""
    micro = objective.split(batch)
    info = StepInfo(global_counts(procs, batch), len(micro), procs.num_processes)
    logged: dict[str, float] = {}
    for i, mb in enumerate(micro):
        targets = objective.targets(mb)
        with procs.no_sync(model, skip=i < len(micro) - 1):
            with procs.autocast():
                total, parts = objective.loss(model, mb, targets, info)
            if not torch.isfinite(total):
                peak = optimizer.param_groups[0].get("initial_lr", optimizer.param_groups[0]["lr"])
                raise RuntimeError(
                    f"loss became {float(total)} at this step; lower lr (now {peak:g}) or check the "
                    "data; the last checkpoint is intact"
                )
            # DDP averages gradients over processes; the losses are already global means, so undo the average
            (total * procs.num_processes).backward()
        for name, value in parts.items():
            logged[name] = logged.get(name, 0.0) + value
    apply_gradients(procs, model, optimizer, scheduler, heads, grad_clip)
    return summarise(procs, logged, objective.weights, scheduler.get_last_lr()[0])


def apply_gradients(
    procs: Processes,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    heads: nn.Module | None,
    grad_clip: float,
) -> None:
    """Average the heads' gradients over processes, clip, step the optimizer and the schedule, clear gradients."""
    head_params = [p for p in heads.parameters() if p.grad is not None] if heads is not None else []
    if head_params and procs.num_processes > 1:
        flat = procs.reduce(torch.cat([p.grad.reshape(-1) for p in head_params]), "mean")
        for p, g in zip(head_params, flat.split([p.numel() for p in head_params])):
            p.grad.copy_(g.view_as(p.grad))
    if grad_clip:
        trainable = [p for p in model.parameters() if p.requires_grad]
        trainable += list(heads.parameters()) if heads is not None else []
        torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def summarise(procs: Processes, logged: dict[str, float], weights: dict[str, float], lr: float) -> dict[str, float]:
    """Reduce the logged values over processes (losses: the sum of the shares; others: the mean) and add ``loss``,
    each loss times its weight (a logged ``w_<loss>`` in place of the configured weight), and ``lr``."""
    if procs.num_processes > 1:
        reduced = procs.reduce(torch.tensor(list(logged.values()), device=procs.device), "mean").tolist()
        logged = {name: v * procs.num_processes if name in weights else v for name, v in zip(logged, reduced)}
    logged["loss"] = sum(logged.get(f"w_{name}", w) * logged[name] for name, w in weights.items())
    logged["lr"] = lr
    return logged
