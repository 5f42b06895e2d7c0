"""Tokenizer-fair evaluation: bits per UTF-8 byte (SPEC §5.4).

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
  the start token add no bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from tokenizers_zoo import encode_text, start_token_id


@dataclass
class BPBResult:
    bits: float
    bytes: int
    tokens: int

    @property
    def bpb(self) -> float:
        return self.bits / self.bytes


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


def score(model: Any, tokenizer: Any, texts: Iterable[str], *, batch_tokens: int = 4096,
          max_length: int = 2048, stride: int | None = None, progress: bool = True) -> BPBResult:
    """Total bits, bytes and tokens of ``texts`` under ``model`` (see module docstring)."""
    logprobs, n_bytes = token_logprobs(model, tokenizer, texts, batch_tokens=batch_tokens, max_length=max_length,
                                       stride=stride, progress=progress)
    return BPBResult(bits=-float(logprobs.double().sum()) / math.log(2), bytes=n_bytes, tokens=logprobs.numel())


def token_logprobs(model: Any, tokenizer: Any, texts: Iterable[str], *, batch_tokens: int = 4096,
                   max_length: int = 2048, stride: int | None = None,
                   progress: bool = False) -> tuple[torch.Tensor, int]:
    """``(log p of every scored token, UTF-8 bytes of the texts)`` under the rules of the module docstring. The
    token order depends only on the tokenizer, the texts and ``max_length``/``stride``, so models that share a
    tokenizer can be mixed token by token afterwards (:func:`zett.best_weights`)."""
    texts = [t for t in texts]
    if not texts or not any(texts):
        raise ValueError("no text to evaluate: pass a non-empty list of non-empty strings")
    start = start_token_id(tokenizer)
    limit = getattr(model.config, "max_position_embeddings", None)
    max_length = min(max_length, limit) if limit else max_length
    stride = stride or max(1, (3 * max_length) // 4)
    if not 0 < stride <= max_length - 1:
        raise ValueError(f"stride must be in [1, max_length-1], got {stride}")
    windows = [w for t in texts if t for w in _windows(encode_text(tokenizer, t), start, max_length, stride)]
    windows.sort(key=lambda w: len(w[0]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else start
    device = next(model.parameters()).device
    out = []
    batches = _batches(windows, batch_tokens)
    with torch.inference_mode():
        for batch in tqdm(batches, desc="bits/byte", disable=not progress, leave=False):
            length = max(len(w) for w, _ in batch)
            ids = torch.full((len(batch), length), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), length), dtype=torch.long)
            labels = torch.full((len(batch), length), -100, dtype=torch.long)
            for row, (w, context) in enumerate(batch):
                ids[row, :len(w)] = torch.tensor(w)
                mask[row, :len(w)] = 1
                labels[row, context:len(w)] = ids[row, context:len(w)]
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            target = labels[:, 1:].to(device)
            nll = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), target.reshape(-1),
                                  ignore_index=-100, reduction="none")
            out.append(-nll[target.reshape(-1) != -100].cpu())
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return torch.cat(out), n_bytes


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


def bits_per_byte(model: Any, tokenizer: Any, texts: Iterable[str], **kwargs) -> float:
    """Bits per UTF-8 byte of ``texts`` (lower is better); see the module docstring for the rules."""
    return score(model, tokenizer, texts, **kwargs).bpb


@torch.no_grad()
def teacher_divergence(student: Any, student_tokenizer: Any, teacher: Any, teacher_tokenizer: Any,
                       texts: Iterable[str], *, max_length: int = 512, **alm: Any) -> float:
    """Distance of ``student`` from ``teacher`` across tokenizers (SPEC §5.6): the chunk-level ALM divergence
    (binary KL at tau = 100 unless ``alm`` says otherwise) on ``texts``, one text at a time (first ``max_length``
    student tokens), averaged over aligned chunk groups. 0 means the student assigns every aligned chunk the
    teacher's likelihood; a token-level KL is undefined across vocabularies."""
    from tokenizers_zoo import load_tokenizer

    from .distill.data import StepBatches, default_teacher_length
    from .distill.trainer import lm_token_stats
    from .losses import alm_loss, boundary_mask

    texts = [t for t in texts if t]
    s_tok, t_tok = load_tokenizer(student_tokenizer), load_tokenizer(teacher_tokenizer)
    data = StepBatches(texts, s_tok, t_tok, batch_size=1, max_length=max_length,
                       teacher_max_length=default_teacher_length(s_tok, t_tok, texts, max_length), seed=0, first=0,
                       last=1)
    s_bnd, t_bnd = boundary_mask(s_tok), boundary_mask(t_tok)
    total, weight = 0.0, 0
    for i in range(len(texts)):
        batch = data.collate([i])
        t_dev, s_dev = next(teacher.parameters()).device, next(student.parameters()).device
        t_out = lm_token_stats(teacher, batch["teacher_input_ids"].to(t_dev),
                               batch["teacher_attention_mask"].to(t_dev), t_bnd)[0]
        s_out = lm_token_stats(student, batch["student_input_ids"].to(s_dev),
                               batch["student_attention_mask"].to(s_dev), s_bnd)[0]
        t_out = {k: v.to(s_dev) for k, v in t_out.items()}
        batch = {k: v.to(s_dev) for k, v in batch.items()}
        n = int(batch["num_chunks"].sum())
        total += float(alm_loss(t_out, s_out, batch, **alm)) * n
        weight += n
    return total / max(weight, 1)


__all__ = ["BPBResult", "bits_per_byte", "score", "teacher_divergence", "token_logprobs"]
