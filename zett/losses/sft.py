"""Next-token cross-entropy of the student on its own tokenization (a baseline and an auxiliary term)."""

from __future__ import annotations

import torch

from . import register_loss


@register_loss("sft")
def sft_loss(
    teacher_out: dict | None, student_out: dict, batch: dict, normalizer: float | torch.Tensor | None = None
) -> torch.Tensor:
    """Mean -log p(x_t | x_<t) over the student's scored positions (``student_attention_mask``, t ≥ 1).

    ``normalizer``: the global number of scored tokens (accumulation, several processes)."""
    lp = student_out["token_logprobs"].float()
    mask = batch["student_attention_mask"].to(lp.dtype).clone()
    mask[:, 0] = 0.0
    count = mask.sum() if normalizer is None else torch.as_tensor(normalizer, dtype=lp.dtype)
    return -(lp * mask).sum() / count.clamp(min=1.0)
