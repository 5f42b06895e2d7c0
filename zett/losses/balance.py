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
    return _balance(_grads(values, shared), weights)


def balanced_loss(
    values: dict[str, torch.Tensor], shared: torch.Tensor, weights: dict[str, float]
) -> tuple[torch.Tensor, dict[str, float]]:
    """(a loss, the balanced weights) for losses that reach every trainable parameter through ``shared`` alone.
    The loss has the value of the weighted sum and its gradient, but its backward pass starts at ``shared`` from
    the weighted sum of the gradients the balancing computed anyway, so the graph between the losses and
    ``shared`` (a frozen model body) is not traversed a third time."""
    grads = _grads(values, shared)
    w = _balance(grads, weights)
    total = sum(w[name] * values[name] for name in values).detach()
    live = [w[name] * g for name, g in grads.items() if g is not None]
    if not live:
        return total, w
    push = (shared * sum(live).to(shared.dtype)).sum()
    return total + push - push.detach(), w


def _grads(values: dict[str, torch.Tensor], shared: torch.Tensor) -> dict[str, torch.Tensor | None]:
    return {
        name: torch.autograd.grad(value, shared, retain_graph=True, allow_unused=True)[0]
        for name, value in values.items()
    }


def _balance(grads: dict[str, torch.Tensor | None], weights: dict[str, float]) -> dict[str, float]:
    norms = {name: float(g.float().norm()) if g is not None else 0.0 for name, g in grads.items()}
    live = [n for n in norms.values() if n > 0]
    mean = sum(live) / len(live) if live else 1.0
    return {name: weights[name] * (mean / n if n > 0 else 1.0) for name, n in norms.items()}
