"""Per-token statistics that the losses consume, computed blockwise from logits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from tokenizers_zoo import TokenKind, vocabulary


def boundary_mask(tokenizer: Any) -> torch.Tensor:
    """Bool [V]: tokens whose surface form starts with space, \\n or \\t, and special tokens (SPEC §5.2.3)."""
    vocab = vocabulary(tokenizer)
    return torch.tensor(
        [
            (k in (TokenKind.SPECIAL, TokenKind.UNUSED)) or f[:1] in (b" ", b"\n", b"\t")
            for f, k in zip(vocab.forms, vocab.kinds)
        ],
        dtype=torch.bool,
    )


def token_stats(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    boundary: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    block: int = 1024,
) -> dict[str, torch.Tensor]:
    """``token_logprobs`` [B, L] (log p of x_t from logits at t-1; 0 at t=0 and padding) and
    ``boundary_logprobs`` [B, L] (log mass on boundary tokens of the next-token distribution at t).

    Works on blocks of ``block`` positions in fp32, so a 262k vocabulary never
    materialises full-batch fp32 log-probs.
    """
    b, length, vocab = logits.shape
    flat = logits.reshape(b * length, vocab)
    return _stats(
        lambda start, stop: flat[start:stop], (b, length), input_ids, boundary, attention_mask, block, logits.device
    )


def hidden_token_stats(
    hidden: torch.Tensor,
    project: Callable[[torch.Tensor], torch.Tensor],
    input_ids: torch.Tensor,
    boundary: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    block: int = 256,
) -> dict[str, torch.Tensor]:
    """:func:`token_stats` from final hidden states [B, L, d] and the output projection: logits exist for
    ``block`` positions at a time only (a 262k-vocabulary teacher never holds full-batch logits)."""
    b, length, d = hidden.shape
    flat = hidden.reshape(b * length, d)
    return _stats(
        lambda start, stop: project(flat[start:stop]),
        (b, length),
        input_ids,
        boundary,
        attention_mask,
        block,
        hidden.device,
    )


def _stats(
    rows_of: Callable[[int, int], torch.Tensor],
    shape: tuple[int, int],
    input_ids: torch.Tensor,
    boundary: torch.Tensor,
    attention_mask: torch.Tensor | None,
    block: int,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    b, length = shape
    tok_lp = torch.zeros(b, length, dtype=torch.float32, device=device)
    bnd_lp = torch.zeros(b, length, dtype=torch.float32, device=device)
    nxt = torch.cat([input_ids[:, 1:], input_ids[:, :1]], dim=1).reshape(-1)  # x_{t+1} at position t
    mask = boundary.to(device)
    tok_flat, bnd_flat = tok_lp.view(-1), bnd_lp.view(-1)
    for start in range(0, b * length, block):
        rows = rows_of(start, start + block).float()
        lse = torch.logsumexp(rows, dim=-1)
        tok_flat[start : start + block] = rows.gather(1, nxt[start : start + block, None])[:, 0] - lse
        bnd_flat[start : start + block] = torch.logsumexp(rows[:, mask], dim=-1) - lse
    # shift: log p(x_t | x_<t) lives at t
    token = torch.zeros_like(tok_lp)
    token[:, 1:] = tok_lp[:, :-1]
    if attention_mask is not None:
        token = token * attention_mask.to(token.dtype)
        bnd_lp = bnd_lp * attention_mask.to(bnd_lp.dtype)
    return {"token_logprobs": token.clamp(max=0.0), "boundary_logprobs": bnd_lp.clamp(max=0.0)}


def chunk_sums(values: torch.Tensor, chunk_id: torch.Tensor, num: int) -> torch.Tensor:
    """[B, C]: Σ of ``values`` [B, L] over the positions of each chunk (-1 positions ignored)."""
    safe = chunk_id.clamp(min=0)
    weights = (chunk_id >= 0).to(values.dtype)
    out = torch.zeros(values.shape[0], num, dtype=values.dtype, device=values.device)
    return out.scatter_add(1, safe, torch.where(chunk_id >= 0, values, torch.zeros_like(values)) * weights)


def chunk_last_index(chunk_id: torch.Tensor, num: int) -> torch.Tensor:
    """[B, C]: position of the last token of each chunk (-1 for empty chunks)."""
    positions = torch.arange(chunk_id.shape[1], device=chunk_id.device).expand_as(chunk_id)
    last = torch.full((chunk_id.shape[0], num), -1, dtype=torch.long, device=chunk_id.device)
    return last.scatter_reduce(
        1, chunk_id.clamp(min=0), torch.where(chunk_id >= 0, positions, -1), reduce="amax", include_self=True
    )


def chunk_last(values: torch.Tensor, chunk_id: torch.Tensor, num: int) -> torch.Tensor:
    """``values`` ([B, L] or [B, L, d]) at the last position of each chunk; zeros for empty chunks."""
    last = chunk_last_index(chunk_id, num)
    index = last.clamp(min=0)
    if values.dim() == 3:
        picked = values.gather(1, index[..., None].expand(-1, -1, values.shape[-1]))
        return picked * (last >= 0)[..., None].to(values.dtype)
    picked = values.gather(1, index)
    return torch.where(last >= 0, picked, torch.zeros_like(picked))


def chunk_counts(mask: torch.Tensor, chunk_id: torch.Tensor, num: int) -> torch.Tensor:
    """[B, C]: how many positions of each chunk have ``mask`` set."""
    return chunk_sums(mask.to(torch.float32), chunk_id, num)


def valid_chunks(batch: dict) -> tuple[int, torch.Tensor]:
    """``(C, valid [B, C])``: the padded chunk count and which chunks exist and have >= 1 teacher token."""
    nums = batch["num_chunks"]
    num = int(nums.max()) if nums.numel() else 0
    t_chunk = batch["teacher_chunk_id"]
    exists = torch.arange(num, device=t_chunk.device)[None, :] < nums[:, None].to(t_chunk.device)
    return num, exists & (chunk_counts(t_chunk >= 0, t_chunk, num) > 0)
