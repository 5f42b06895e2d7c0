"""The lexical auxiliary loss of hypernetwork training (SPEC §4.3): predicted rows near the base's own rows."""

from __future__ import annotations

import torch

from . import register_loss


@register_loss("lexical")
def lexical_loss(
    teacher_out: dict | None, student_out: dict, batch: dict, normalizer: float | torch.Tensor | None = None
) -> torch.Tensor:
    """Σ‖pred − E[id]‖² / n / mean‖E‖ over the predicted rows whose decomposition is one base id.

    ``student_out["rows"]`` [n, D]: the step's rows (predicted or copied); ``student_out["table"]`` [V_base, D]:
    the base's rows; ``batch["lexical_ids"]`` [n]: each row's single base id (-1: none); ``batch["predict"]`` [n]:
    which rows the hypernetwork predicted. ``normalizer``: n (default: this batch's count of such rows)."""
    rows, table = student_out["rows"], student_out["table"]
    ids = batch["lexical_ids"].to(rows.device)
    use = (ids >= 0) & batch["predict"].to(rows.device)
    if not use.any():
        return rows.sum() * 0.0
    count = use.sum() if normalizer is None else torch.as_tensor(normalizer, device=rows.device)
    return (rows[use] - table[ids[use]]).pow(2).sum() / count / table.norm(dim=1).mean()
