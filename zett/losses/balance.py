"""Gradient-magnitude balancing of several losses (SPEC §5.2.8), shared by distillation and hypernetwork
training."""

from __future__ import annotations

import torch


def balanced_weights(
    values: dict[str, torch.Tensor], shared: torch.Tensor, weights: dict[str, float]
) -> dict[str, float]:
    """SPEC §5.2.8 gradient-magnitude balancing: scale each loss by the inverse norm of its gradient at ``shared``
    (a tensor every loss reads, e.g. the student's final hidden states), times the mean norm, so that
    weighted losses push with equal force; no gradient flows through the weights."""
    norms = {}
    for name, value in values.items():
        (grad,) = torch.autograd.grad(value, shared, retain_graph=True, allow_unused=True)
        norms[name] = float(grad.float().norm()) if grad is not None else 0.0
    live = [n for n in norms.values() if n > 0]
    mean = sum(live) / len(live) if live else 1.0
    return {name: weights[name] * (mean / n if n > 0 else 1.0) for name, n in norms.items()}
