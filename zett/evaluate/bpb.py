"""Bits per UTF-8 byte: the tokenizer-fair language-modelling score (SPEC §5.4).

How a document is scored, for every tokenizer alike:

* the text is tokenized as plain text (no special tokens added, none parsed
  out of the text: ``split_special_tokens=True``);
* one start token is prepended, the tokenizer's BOS, else its EOS; it is
  context only, never scored;
* every text token is scored: bits = -log2 p(token | everything before it);
  a prefix space the tokenizer adds is part of its first token and scored;
* documents longer than ``max_length`` tokens are scored in sliding windows:
  each window scores ``stride`` new tokens (default 3/4 of the window) with up
  to ``max_length - stride`` earlier tokens as context, so no token is scored twice or without context;
* BPB = total bits / total UTF-8 bytes of the original texts. Padding and
  the start token add no bytes;
* the interval (``ci=True``, :meth:`BPBResult.estimate`) resamples whole
  documents: each resample's BPB is its total bits over its total bytes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from tokenizers_zoo import encode_text, start_token_id

from .stats import LEVEL, N_BOOT, Estimate, Paired, ratio_estimate

LOGITS_BUDGET = 1 << 28  # logits held at once (tokens x vocabulary); 1 GiB in fp32


@dataclass
class BPBResult:
    """Bits, bytes and tokens of a set of texts, with the per-document numbers behind them (for intervals and
    paired comparisons: :meth:`estimate`, :func:`zett.evaluate.compare`)."""

    bits: float
    bytes: int
    tokens: int
    doc_bits: tuple[float, ...] = ()
    doc_bytes: tuple[int, ...] = ()
    keys: tuple = ()

    @property
    def bpb(self) -> float:
        return self.bits / self.bytes

    @property
    def n_docs(self) -> int:
        return len(self.doc_bytes)

    def estimate(self, *, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> Estimate:
        """Bits per byte with a bootstrap interval over documents (each resample: total bits / total bytes)."""
        if not self.doc_bytes:
            raise ValueError("this result holds no per-document numbers; score the texts with zett.evaluate.score")
        return ratio_estimate(self.doc_bits, self.doc_bytes, n_boot=n_boot, seed=seed, level=level)

    def paired(self) -> Paired:
        return Paired(np.asarray(self.doc_bits), self.keys, den=np.asarray(self.doc_bytes, dtype=np.float64))


def _windows(ids: list[int], start: int, max_length: int, stride: int) -> list[tuple[list[int], int]]:
    """(input ids, number of leading positions that are context only) per window."""
    seq = [start] + ids
    out = []
    scored_to = 1  # seq[0] is the start token
    while scored_to < len(seq):
        end = min(scored_to + stride, len(seq))
        begin = max(0, end - max_length)
        out.append((seq[begin:end], scored_to - begin))
        scored_to = end
    return out


def score(
    model: Any,
    tokenizer: Any,
    texts: Iterable[str],
    *,
    batch_tokens: int = 4096,
    max_length: int = 2048,
    stride: int | None = None,
    progress: bool = True,
) -> BPBResult:
    """Total bits, bytes and tokens of ``texts`` under ``model``, and per document (see module docstring).

    Windows are scored ``batch_tokens`` at a time, fewer for a large vocabulary: the logits held at once stay
    within ``LOGITS_BUDGET`` entries (a 262k vocabulary scores ~1k tokens a forward)."""
    texts = list(texts)
    logprobs, docs, n_bytes = _scored_tokens(
        model, tokenizer, texts, batch_tokens=batch_tokens, max_length=max_length, stride=stride, progress=progress
    )
    kept = [t for t in texts if t]
    doc_bits = torch.zeros(len(kept), dtype=torch.float64).index_add_(0, docs, -logprobs.double()) / math.log(2)
    return BPBResult(
        bits=float(doc_bits.sum()),
        bytes=n_bytes,
        tokens=logprobs.numel(),
        doc_bits=tuple(doc_bits.tolist()),
        doc_bytes=tuple(len(t.encode("utf-8")) for t in kept),
        keys=text_keys(kept),
    )


def text_keys(texts: Sequence[str]) -> tuple:
    """Identity of the scored items, so a paired comparison can check both sides scored the same texts."""
    return tuple(hashlib.blake2b(t.encode("utf-8"), digest_size=8).hexdigest() for t in texts)


def token_logprobs(
    model: Any,
    tokenizer: Any,
    texts: Iterable[str],
    *,
    batch_tokens: int = 4096,
    max_length: int = 2048,
    stride: int | None = None,
    progress: bool = False,
) -> tuple[torch.Tensor, int]:
    """``(log p of every scored token, UTF-8 bytes of the texts)`` under the rules of the module docstring. The
    token order depends only on the tokenizer, the texts and ``max_length``/``stride``, so models that share a
    tokenizer can be mixed token by token afterwards (:func:`zett.best_weights`)."""
    logprobs, _, n_bytes = _scored_tokens(
        model,
        tokenizer,
        list(texts),
        batch_tokens=batch_tokens,
        max_length=max_length,
        stride=stride,
        progress=progress,
    )
    return logprobs, n_bytes


def _scored_tokens(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    *,
    batch_tokens: int,
    max_length: int,
    stride: int | None,
    progress: bool,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Log-probs of the scored tokens, the document index of each, and the texts' UTF-8 bytes."""
    if not texts or not any(texts):
        raise ValueError("no text to evaluate: pass a non-empty list of non-empty strings")
    start = start_token_id(tokenizer)
    limit = getattr(model.config, "max_position_embeddings", None)
    max_length = min(max_length, limit) if limit else max_length
    stride = stride or max(1, (3 * max_length) // 4)
    if not 0 < stride <= max_length - 1:
        raise ValueError(f"stride must be in [1, max_length-1], got {stride}")
    windows = [
        (w, c, doc)
        for doc, t in enumerate(t for t in texts if t)
        for w, c in _windows(encode_text(tokenizer, t), start, max_length, stride)
    ]
    windows.sort(key=lambda w: len(w[0]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else start
    device = next(model.parameters()).device
    out, owners = [], []
    vocab = getattr(model.config, "vocab_size", None) or 1
    batches = _batches(windows, max(1, min(batch_tokens, LOGITS_BUDGET // vocab)))
    with torch.inference_mode():
        for batch in tqdm(batches, desc="bits/byte", disable=not progress, leave=False):
            length = max(len(w) for w, _, _ in batch)
            ids = torch.full((len(batch), length), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), length), dtype=torch.long)
            labels = torch.full((len(batch), length), -100, dtype=torch.long)
            for row, (w, context, _) in enumerate(batch):
                ids[row, : len(w)] = torch.tensor(w)
                mask[row, : len(w)] = 1
                labels[row, context : len(w)] = ids[row, context : len(w)]
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            target = labels[:, 1:].to(device)
            # row by row: the log-softmax of one row at a time beside the logits, not a copy of them all
            nll = torch.cat(
                [
                    F.cross_entropy(logits[row, :-1].float(), target[row], ignore_index=-100, reduction="none")
                    for row in range(len(batch))
                ]
            )
            scored = target.reshape(-1) != -100
            out.append(-nll[scored].cpu())
            doc = torch.tensor([d for _, _, d in batch]).repeat_interleave(length - 1).to(device)
            owners.append(doc[scored].cpu())
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return torch.cat(out), torch.cat(owners), n_bytes


def _batches(windows: list, batch_tokens: int) -> list[list]:
    batches, current, longest = [], [], 0
    for w in windows:
        longest_if = max(longest, len(w[0]))
        if current and longest_if * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, longest_if = [], len(w[0])
        current.append(w)
        longest = longest_if
    if current:
        batches.append(current)
    return batches


def bits_per_byte(
    model: Any, tokenizer: Any, texts: Iterable[str], *, ci: bool = False, seed: int = 0, **kwargs: Any
) -> float | Estimate:
    """Bits per UTF-8 byte of ``texts`` (lower is better); see the module docstring for the rules.

    With ``ci=True`` an :class:`~zett.evaluate.stats.Estimate` (value, 95% bootstrap interval over documents,
    seeded by ``seed``) instead of a float; ``float(estimate)`` is the same number."""
    result = score(model, tokenizer, texts, **kwargs)
    return result.estimate(seed=seed) if ci else result.bpb


__all__ = ["BPBResult", "bits_per_byte", "score", "text_keys", "token_logprobs"]
