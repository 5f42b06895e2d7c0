"""Next-token cross-entropy of the student on its own tokenization (a baseline and an auxiliary term)."""

from __future__ import annotations

import torch

from . import register_loss


@register_loss("sft")
def sft_loss(teacher_out: dict | None, student_out: dict, batch: dict) -> torch.Tensor:
    """Mean -log p(x_t | x_<t) over the student's scored positions (``student_attention_mask``, t ≥ 1)."""
    lp = student_out["token_logprobs"].float()
    mask = batch["student_attention_mask"].to(lp.dtype).clone()
    mask[:, 0] = 0.0
    return -(lp * mask).sum() / mask.sum().clamp(min=1.0)
