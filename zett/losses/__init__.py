"""Cross-tokenizer losses, registered by name (SPEC §5.2).

Every loss is a pure function ``loss(teacher_out, student_out, batch, **params) -> Tensor``
over precomputed quantities (see :mod:`zett.losses.stats`):

* ``*_out["token_logprobs"]``: [B, L] log p(x_t | x_<t), 0 where unscored;
* ``*_out["boundary_logprobs"]``: [B, L] log Σ_{v in boundary set} p(v | x_<=t);
* ``*_out["logits"]``: [B, L, V] (ULD and SFT only); ``*_out["hidden"]``: [B, L, d] (optional);
* ``*_out["byte_probs"]`` / ``["byte_covered"]``: [B, N, 256] / [B, N] next-byte distributions by text byte
  offset (teacher side, BLD only);
* ``batch["teacher_chunk_id"]`` / ``batch["student_chunk_id"]``: [B, L] (-1 = no chunk),
  ``batch["num_chunks"]``: [B]; ``batch["student_labels"]`` [B, Ls] for SFT;
* ``lexical`` (hypernetwork training only): ``student_out["rows"]`` / ``["table"]``, ``batch["lexical_ids"]`` /
  ``["predict"]`` (see :mod:`zett.losses.lexical`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

LossFn = Callable[..., torch.Tensor]
_LOSSES: dict[str, LossFn] = {}
TEACHER_FREE = ("sft", "lexical")  # read only the student's side: no teacher outputs, no chunk alignment
ALIGNED = ("alm", "uld")  # read the chunk alignment (teacher_chunk_id / student_chunk_id / num_chunks)


def register_loss(name: str):
    def wrap(fn: LossFn) -> LossFn:
        _LOSSES[name] = fn
        return fn

    return wrap


def get_loss(name: str) -> LossFn:
    if name not in _LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(sorted(_LOSSES))}")
    return _LOSSES[name]


def available_losses() -> list[str]:
    return sorted(_LOSSES)


from . import alm, bld, lexical, sft, uld  # noqa: E402,F401  (register)
from .alm import alm_loss, binary_f_divergence, log1mexp  # noqa: E402
from .balance import balanced_loss, balanced_weights  # noqa: E402
from .stats import boundary_mask, chunk_sums, token_stats  # noqa: E402

__all__ = [
    "ALIGNED",
    "TEACHER_FREE",
    "alm_loss",
    "available_losses",
    "balanced_loss",
    "balanced_weights",
    "binary_f_divergence",
    "boundary_mask",
    "chunk_sums",
    "get_loss",
    "log1mexp",
    "register_loss",
    "token_stats",
]
