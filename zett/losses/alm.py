"""ALM: approximate likelihood matching across tokenizers (SPEC §5.2).

Per aligned chunk c, each model's chunk log-likelihood L_c = Σ_{t in c} log p(x_t | x_<t).
With outcome debiasing, the log-probability that the next token starts a new
word (a boundary token) is added at the chunk's end. Consecutive chunks are
merged into groups closed by a chunk after which the teacher puts more than
``theta`` of its mass on boundary tokens. Each group's pair (L_T, L_S) is then
compared as two Bernoulli distributions (y = e^{L/τ}, 1 - y) with a binary
f-divergence; the mean over valid groups is returned.
"""

from __future__ import annotations

import math

import torch

from . import register_loss
from .stats import chunk_last, chunk_sums, valid_chunks

LN2 = math.log(2.0)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - e^x) for x < 0, stable at both ends."""
    return torch.where(x < -LN2, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def binary_f_divergence(
    teacher: torch.Tensor, student: torch.Tensor, *, tau: float = 100.0, kind: str = "kl", eps: float = 1e-6
) -> torch.Tensor:
    """Elementwise divergence between Bernoulli(e^{T/τ}) and Bernoulli(e^{S/τ}); inputs are log-likelihoods ≤ 0.

    ``kl``: binary KL (binary cross-entropy minus the teacher's binary entropy; 0 at the optimum).
    ``tvd``: |e^a - e^b|. ``abs``: |T - S| (plain log-likelihood difference).
    """
    teacher, student = teacher.float(), student.float()
    if kind == "abs":
        return (teacher - student).abs()
    a = teacher.clamp(max=0.0) / tau - eps
    b = student.clamp(max=0.0) / tau - eps
    if kind == "tvd":
        return (torch.exp(a) - torch.exp(b)).abs()
    if kind == "kl":
        ya = torch.exp(a)
        return ya * (a - b) + (1.0 - ya) * (log1mexp(a) - log1mexp(b))
    raise ValueError(f"unknown divergence {kind!r}; choose 'kl', 'tvd' or 'abs'")


def _groups(close: torch.Tensor) -> torch.Tensor:
    """Group index of each chunk: a group ends at (and includes) each closing chunk."""
    return torch.cumsum(close.long(), dim=1) - close.long()


@register_loss("alm")
def alm_loss(
    teacher_out: dict,
    student_out: dict,
    batch: dict,
    *,
    tau: float = 100.0,
    divergence: str = "kl",
    debias: bool = True,
    merge: bool = True,
    theta: float = 0.1,
    eps: float = 1e-6,
    hidden_weight: float = 0.0,
    hidden_proj: torch.nn.Module | None = None,
    normalizer: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """ALM loss (scalar). ``normalizer``: the global number of valid groups (gradient accumulation or
    several processes); by default this batch's count."""
    t_chunk, s_chunk = batch["teacher_chunk_id"], batch["student_chunk_id"]
    num, valid = valid_chunks(batch)
    if num == 0:
        return student_out["token_logprobs"].sum() * 0.0
    t_lp = teacher_out["token_logprobs"].float()
    s_lp = student_out["token_logprobs"].float()
    l_t = chunk_sums(t_lp, t_chunk, num).clamp(max=0.0)
    l_s = chunk_sums(s_lp, s_chunk, num).clamp(max=0.0)
    if debias:
        b_t = chunk_last(teacher_out["boundary_logprobs"].float(), t_chunk, num).clamp(max=0.0)
        b_s = chunk_last(student_out["boundary_logprobs"].float(), s_chunk, num).clamp(max=0.0)
    else:
        b_t = b_s = torch.zeros_like(l_t)
    if merge and debias:
        last_valid = valid & ~torch.cat([valid[:, 1:], torch.zeros_like(valid[:, :1])], dim=1)
        close = valid & ((b_t.exp() > theta) | last_valid)
        gid = _groups(close).clamp(max=num - 1)
        w = valid.float()
        g_t = torch.zeros_like(l_t).scatter_add(1, gid, l_t * w + b_t * close.float())
        g_s = torch.zeros_like(l_s).scatter_add(1, gid, l_s * w + b_s * close.float())
        g_valid = torch.zeros_like(w).scatter_add(1, gid, close.float()) > 0
    else:
        g_t, g_s, g_valid = l_t + b_t, l_s + b_s, valid
    # invalid entries become a harmless finite value before any arithmetic (never NaN * 0)
    g_t = torch.where(g_valid, g_t, torch.full_like(g_t, -1.0)).clamp(max=0.0)
    g_s = torch.where(g_valid, g_s, torch.full_like(g_s, -1.0)).clamp(max=0.0)
    div = binary_f_divergence(g_t, g_s, tau=tau, kind=divergence, eps=eps)
    count = g_valid.sum() if normalizer is None else normalizer
    loss = (div * g_valid.float()).sum() / torch.as_tensor(count, dtype=torch.float32).clamp(min=1.0)
    if hidden_weight:
        loss = loss + hidden_weight * hidden_state_term(teacher_out, student_out, batch, valid, num, hidden_proj)
    return loss


def hidden_state_term(
    teacher_out: dict,
    student_out: dict,
    batch: dict,
    valid: torch.Tensor,
    num: int,
    proj: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Squared error of final hidden states at each chunk's last token, per channel divided by the
    teacher's mean square over valid chunks (SPEC §5.2.7)."""
    h_t = chunk_last(teacher_out["hidden"].float(), batch["teacher_chunk_id"], num)
    h_s = chunk_last(student_out["hidden"].float(), batch["student_chunk_id"], num)
    if proj is not None:
        h_s = proj(h_s)
    if h_s.shape[-1] != h_t.shape[-1]:
        raise ValueError(f"hidden sizes differ ({h_s.shape[-1]} vs {h_t.shape[-1]}); pass hidden_proj=")
    w = valid.float()[..., None]
    scale = (h_t.pow(2) * w).sum((0, 1)) / w.sum().clamp(min=1.0) + 1e-8
    err = ((h_s - h_t).pow(2) / scale * w).sum() / (w.sum() * h_t.shape[-1]).clamp(min=1.0)
    return err
