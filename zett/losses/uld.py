"""ULD (universal logit distillation): L1 between sorted next-token probability vectors.

Positions are paired by chunk end (the distribution after each aligned chunk on
both sides); the shorter vocabulary is zero-padded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import register_loss
from .stats import chunk_last, valid_chunks


@register_loss("uld")
def uld_loss(
    teacher_out: dict, student_out: dict, batch: dict, normalizer: float | torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over valid chunks of the L1 distance between sorted next-token distributions."""
    t_chunk, s_chunk = batch["teacher_chunk_id"], batch["student_chunk_id"]
    num, valid = valid_chunks(batch)
    if num == 0:
        return student_out["logits"].sum() * 0.0
    p_t = chunk_last(teacher_out["logits"].float(), t_chunk, num).softmax(-1)
    p_s = chunk_last(student_out["logits"].float(), s_chunk, num).softmax(-1)
    p_t = p_t.sort(dim=-1, descending=True).values
    p_s = p_s.sort(dim=-1, descending=True).values
    size = max(p_t.shape[-1], p_s.shape[-1])
    p_t = F.pad(p_t, (0, size - p_t.shape[-1]))
    p_s = F.pad(p_s, (0, size - p_s.shape[-1]))
    dist = (p_t - p_s).abs().sum(-1)
    count = valid.sum() if normalizer is None else torch.as_tensor(normalizer, dtype=torch.float32)
    return (dist * valid.float()).sum() / count.clamp(min=1)
