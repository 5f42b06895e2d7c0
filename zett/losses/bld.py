"""BLD: byte-level distillation, the cross-tokenizer baseline of the seed paper (SPEC §5.7).

The teacher's next-token distribution becomes a next-byte distribution at
every byte of the text; a small byte decoder (:class:`ByteHead`) on the
student's hidden states predicts the bytes of the student's next token, and
the loss is

    token_weight · next-token CE  +  byte_weight · next-byte CE  +  kl_weight · KL(teacher bytes ‖ head bytes)

summed over the student's scored tokens (byte terms: summed over each token's
bytes) and divided by the global count of scored student tokens, like SFT.

Two ways to get the teacher's byte distributions:

* ``path`` (default, no extra teacher passes): follow the teacher's own
  tokenization. Inside a token whose emitted prefix is u (u = b"" at a token
  boundary), p(b | u) = Σ_{v starts with u·b} p(v) / Σ_b' Σ_{v starts with u·b'} p(v),
  all from the one distribution that predicted the token; the sums are range
  sums over the vocabulary sorted by bytes (:class:`ByteTrie`).
* ``beam``: marginalise over tokenizations of the emitted prefix, keeping the
  ``beam`` most likely exact tokenizations ending at every byte offset (each
  needs a teacher pass): p(b | x_<i) ∝ Σ_m Σ_{h covers x_<m} p(h) Σ_{v starts
  with x[m:i]·b} p(v | h). With a beam at least as wide as the number of
  tokenizations this is exact.

Tokens without bytes (specials) are left out of every sum, so each byte
distribution sums to 1.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from tokenizers_zoo import TokenKind, vocabulary

from . import register_loss


class ByteTrie:
    """The tokenizer's byte-carrying tokens sorted by their bytes: every set "tokens starting with w" is one
    contiguous range, so prefix masses are differences of a cumulative sum."""

    def __init__(self, tokenizer: Any):
        vocab = vocabulary(tokenizer)
        pairs = sorted(
            (f, i)
            for i, (f, k) in enumerate(zip(vocab.forms, vocab.kinds))
            if f and k not in (TokenKind.SPECIAL, TokenKind.UNUSED)
        )
        if not pairs:
            raise ValueError("tokenizer has no tokens with bytes; BLD needs a text tokenizer")
        self.keys = [f for f, _ in pairs]
        self.order = torch.tensor([i for _, i in pairs], dtype=torch.long)
        self.vocab_size = len(vocab.forms)
        self.max_len = max(len(f) for f in self.keys)
        self.forms = vocab.forms
        self.exact: dict[bytes, list[int]] = {}
        for f, i in pairs:
            self.exact.setdefault(f, []).append(i)
        self._nodes: dict[bytes, np.ndarray | None] = {}

    def _upper(self, prefix: bytes) -> int:
        """First sorted index after every key that starts with ``prefix``."""
        stem = prefix.rstrip(b"\xff")
        if not stem:
            return len(self.keys)
        return bisect.bisect_left(self.keys, stem[:-1] + bytes([stem[-1] + 1]))

    def children(self, prefix: bytes) -> np.ndarray | None:
        """[257] sorted-index bounds: tokens starting with ``prefix + bytes([b])`` are ``[c[b], c[b+1])``;
        ``None`` when no token extends ``prefix``."""
        if prefix not in self._nodes:
            first = bisect.bisect_right(self.keys, prefix)  # tokens equal to prefix emit no further byte
            end = self._upper(prefix)
            if first >= end:
                self._nodes[prefix] = None
            else:
                bounds = [bisect.bisect_left(self.keys, prefix + bytes([b]), first, end) for b in range(256)]
                self._nodes[prefix] = np.array(bounds + [end], dtype=np.int64)
        return self._nodes[prefix]

    def byte_mass(self, cumsum: torch.Tensor, prefix: bytes) -> torch.Tensor | None:
        """[256] mass of tokens starting with ``prefix·b`` from ``cumsum`` = [0, cumsum(p[order])]; ``None`` if
        no token extends ``prefix``."""
        bounds = self.children(prefix)
        if bounds is None:
            return None
        at = cumsum[torch.from_numpy(bounds).to(cumsum.device)]
        return (at[1:] - at[:-1]).clamp(min=0.0)


def _sorted_cumsum(probs: torch.Tensor, trie: ByteTrie) -> torch.Tensor:
    """[..., K+1] float64 cumulative sums of ``probs`` [..., V] over the trie's sorted tokens, with a leading 0."""
    sorted_p = probs.double().index_select(-1, trie.order.to(probs.device))
    return torch.nn.functional.pad(sorted_p.cumsum(-1), (1, 0))


def path_byte_probs(
    logits: torch.Tensor | Callable[[int, int], torch.Tensor],
    ids: Sequence[int],
    offsets: Sequence[int],
    trie: ByteTrie,
    n_bytes: int,
    block: int = 32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher byte distributions along its own tokenization.

    ``logits`` [L, V] of one text (position k predicts token k+1), or a function giving the logits of positions
    ``[start, stop)`` (so a large vocabulary is never held for a whole text), ``ids`` its L tokens, ``offsets[k]``
    the text byte offset of token k's first byte (bytes falling outside ``[0, n_bytes)`` are skipped). Returns
    ``probs`` [n_bytes, 256] (float32) and ``covered`` [n_bytes] (bool)."""
    probs = torch.zeros(n_bytes, 256, dtype=torch.float64)
    covered = torch.zeros(n_bytes, dtype=torch.bool)
    ids = [int(i) for i in ids]
    for start in range(1, len(ids), block):
        stop = min(len(ids), start + block)
        rows = logits(start - 1, stop - 1) if callable(logits) else logits[start - 1 : stop - 1]
        cum = _sorted_cumsum(rows.double().softmax(-1), trie).cpu()
        for k in range(start, stop):
            form = trie.forms[ids[k]]
            for j in range(len(form)):
                pos = offsets[k] + j
                if not 0 <= pos < n_bytes:
                    continue
                mass = trie.byte_mass(cum[k - start], form[:j])
                if mass is None or mass.sum() <= 0:
                    continue
                probs[pos] = mass / mass.sum()
                covered[pos] = True
    return probs.float(), covered


@torch.no_grad()
def beam_byte_probs(model: Any, start_id: int | None, data: bytes, trie: ByteTrie, beam: int = 4) -> torch.Tensor:
    """[len(data), 256] next-byte distributions of ``model`` over ``data``, marginalising over the ``beam`` most
    likely exact tokenizations of every prefix (exact when ``beam`` covers them all). One model pass per
    hypothesis: for a few texts and comparisons, not for training at scale."""
    device = next(model.parameters()).device
    root = (start_id,) if start_id is not None else ()
    cache: dict[tuple[int, ...], torch.Tensor] = {}

    def next_logprobs(seq: tuple[int, ...]) -> torch.Tensor:
        if seq not in cache:
            ids = torch.tensor([seq], device=device)
            cache[seq] = model(input_ids=ids).logits[0, -1].double().log_softmax(-1).cpu()
        return cache[seq]

    hyps: dict[int, list[tuple[float, tuple[int, ...]]]] = {0: [(0.0, root)]}
    out = torch.zeros(len(data), 256, dtype=torch.float64)
    for i in range(len(data)):
        first = max(0, i - trie.max_len + 1)
        live = [(m, lp, seq) for m in range(first, i + 1) for lp, seq in hyps.get(m, [])]
        if not live:
            raise ValueError(f"no tokenization of the first {i} bytes; the tokenizer cannot cover this text")
        ref = max(lp for _, lp, _ in live)
        total = torch.zeros(256, dtype=torch.float64)
        for m, lp, seq in live:
            if trie.children(data[m:i]) is None:
                continue
            cum = _sorted_cumsum(next_logprobs(seq).exp(), trie)
            total += math.exp(lp - ref) * trie.byte_mass(cum, data[m:i])
        out[i] = total / total.sum().clamp(min=1e-300)
        grown = []
        for m in range(max(0, i + 1 - trie.max_len), i + 1):
            for tid in trie.exact.get(data[m : i + 1], []):
                grown += [(lp + float(next_logprobs(seq)[tid]), seq + (tid,)) for lp, seq in hyps.get(m, [])]
        hyps[i + 1] = sorted(grown, key=lambda h: -h[0])[:beam]
    return out.float()


class ByteHead(nn.Module):
    """A small byte decoder on a hidden state: a GRU started from the projected state, fed the previous byte,
    predicting the bytes of the next token one by one. Owned by the trainer; never part of an exported model."""

    def __init__(self, d_model: int, hidden: int = 256, max_bytes: int = 16):
        super().__init__()
        self.max_bytes = max_bytes
        self.init = nn.Linear(d_model, hidden)
        self.embed = nn.Embedding(257, hidden)  # 256 = start of the token
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 256)

    def forward(self, state: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``state`` [N, d], ``targets`` [N, M] (bytes, -1 = padding) → log-probs [N, M, 256] (teacher forcing)."""
        prev = torch.cat([torch.full_like(targets[:, :1], 256), targets[:, :-1].clamp(min=0)], dim=1)
        h0 = torch.tanh(self.init(state.float()))[None]
        y, _ = self.gru(self.embed(prev), h0.contiguous())
        return self.out(y).float().log_softmax(-1)


@register_loss("bld")
def bld_loss(
    teacher_out: dict,
    student_out: dict,
    batch: dict,
    *,
    head: ByteHead,
    token_weight: float = 1.0,
    byte_weight: float = 1.0,
    kl_weight: float = 1.0,
    normalizer: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """BLD loss (scalar). Needs ``teacher_out["byte_probs"]`` [B, N, 256] and ``["byte_covered"]`` [B, N]
    (indexed by text byte offset), ``student_out["hidden"]``, and ``batch["student_bytes"]`` [B, L, M] (bytes of
    each student token, -1 padded) with ``batch["student_byte_offset"]`` [B, L] (text offset of its first byte)."""
    lp = student_out["token_logprobs"].float()
    scored = batch["student_attention_mask"].clone().bool()
    scored[:, 0] = False
    count = scored.sum() if normalizer is None else normalizer
    count = torch.as_tensor(count, dtype=torch.float32).clamp(min=1.0)
    token_ce = -(lp * scored.float()).sum()
    nxt = batch["student_bytes"][:, 1:].long()  # position t predicts token t+1
    where = scored[:, 1:] & (nxt[..., 0] >= 0)
    rows, cols = where.nonzero(as_tuple=True)
    if rows.numel() == 0:
        return token_weight * token_ce / count + 0.0 * sum(p.sum() for p in head.parameters())
    targets = nxt[rows, cols][:, : head.max_bytes]
    logq = head(student_out["hidden"][rows, cols], targets)
    valid = targets >= 0
    byte_ce = -(logq.gather(-1, targets.clamp(min=0)[..., None])[..., 0] * valid.float()).sum()
    probs, covered = teacher_out["byte_probs"], teacher_out["byte_covered"]
    offset = batch["student_byte_offset"][:, 1:][rows, cols][:, None] + torch.arange(
        targets.shape[1], device=targets.device
    )
    inside = valid & (offset >= 0) & (offset < probs.shape[1])
    at = offset.clamp(0, probs.shape[1] - 1)
    inside &= covered[rows[:, None].expand_as(at), at]
    p_t = probs[rows[:, None].expand_as(at), at].float()
    terms = torch.where(p_t > 0, p_t * (p_t.clamp(min=1e-30).log() - logq), torch.zeros_like(p_t)).sum(-1)
    kl = (terms * inside.float()).sum()
    return (token_weight * token_ce + byte_weight * byte_ce + kl_weight * kl) / count


__all__ = ["ByteHead", "ByteTrie", "beam_byte_probs", "bld_loss", "path_byte_probs"]
