"""Agreement with the original model: does the transferred model still behave like the one it came from?

Three views, each tokenizer-fair (the two models may speak different tokenizers):

* **reference outputs under the model**: the reference model's greedy continuation of each prompt (and, for
  chat models, its answer through the chat template) is scored under the evaluated model in bits per byte of
  the continuation: low when the model would say what the original says;
* **similarity of greedy outputs**: chrF (character n-gram F-score, n = 1..6, beta = 2, whitespace ignored)
  between the two models' greedy continuations, each cut to the same number of bytes: 1 for identical text;
* **chunk-level ALM divergence** (:func:`teacher_divergence`) of the model from the reference on prompt +
  continuation: 0 when every aligned chunk gets the reference's likelihood.

A continuation is scored as the text that follows its prompt: tokenized on its own when its bytes can be covered
exactly that way, else (a tokenizer that would add a prefix space to a text starting with another character)
from the joint tokenization, starting at the first token that begins at or after the prompt's end.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from tokenizers_zoo import TokenKind, encode_text, normalisation, start_token_id, vocabulary

from .bpb import BPBResult, text_keys
from .stats import Estimate, Paired, mean_estimate
from .tasks import cache_of, with_cache

CHAT_PROMPTS = (
    "What is the capital of France?",
    "Name three primary colours.",
    "How many days are there in a week?",
    "What is the boiling point of water at sea level in degrees Celsius?",
    "Translate 'good morning' into Spanish.",
    "Give me a synonym for 'happy'.",
    "What is 12 plus 7?",
    "Who wrote 'Romeo and Juliet'?",
    "What do bees make?",
    "Write one sentence about the sea.",
    "What is the largest planet in the solar system?",
    "Explain in one sentence what a computer is.",
    "What colour is the sky on a clear day?",
    "List two fruits that are yellow.",
    "What is the opposite of 'cold'?",
    "Which animal is known as the king of the jungle?",
)


@dataclass
class ItemScores:
    """One number per item (prompt, text) with the items' keys, for intervals and paired comparisons."""

    values: np.ndarray
    keys: tuple

    def estimate(self, *, seed: int = 0) -> Estimate:
        return mean_estimate(self.values, seed=seed)

    def paired(self) -> Paired:
        return Paired(np.asarray(self.values, dtype=np.float64), self.keys)


@dataclass
class AgreementResult:
    """``reference_bpb``/``chat_bpb``: the reference's outputs scored under the model (``None`` without chat
    items); ``similarity``: chrF per item; ``divergence``: ALM divergence per continuation (``None`` when not
    asked for); the generated texts for reading them side by side."""

    prompts: list[str]
    reference_outputs: list[str]
    model_outputs: list[str]
    chat: list[bool]
    reference_bpb: BPBResult | None
    chat_bpb: BPBResult | None
    similarity: ItemScores
    divergence: ItemScores | None

    def as_dict(self, *, seed: int = 0) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n_prompts": len(self.prompts),
            "n_chat": sum(self.chat),
            "similarity_chrf": self.similarity.estimate(seed=seed).as_dict(),
        }
        for name, part in (("reference_bpb", self.reference_bpb), ("chat_bpb", self.chat_bpb)):
            if part is not None:
                out[name] = part.estimate(seed=seed).as_dict()
        if self.divergence is not None:
            out["divergence"] = self.divergence.estimate(seed=seed).as_dict()
        out["samples"] = [
            {"prompt": p, "chat": c, "reference": r, "model": m}
            for p, c, r, m in zip(self.prompts, self.chat, self.reference_outputs, self.model_outputs)
        ]
        return out


def chrf(hypothesis: str, reference: str, *, max_n: int = 6, beta: float = 2.0) -> float:
    """Character n-gram F-score in [0, 1] (whitespace removed first); 1 for identical texts."""
    hyp, ref = "".join(hypothesis.split()), "".join(reference.split())
    if hyp == ref:
        return 1.0
    precisions, recalls = [], []
    for n in range(1, max_n + 1):
        h = Counter(hyp[i : i + n] for i in range(len(hyp) - n + 1))
        r = Counter(ref[i : i + n] for i in range(len(ref) - n + 1))
        if not h or not r:
            continue
        common = sum((h & r).values())
        precisions.append(common / sum(h.values()))
        recalls.append(common / sum(r.values()))
    if not precisions:
        return 0.0
    p, r = float(np.mean(precisions)), float(np.mean(recalls))
    return 0.0 if p + r == 0 else (1 + beta**2) * p * r / (beta**2 * p + r)


def prompts_from_texts(texts: Sequence[str], *, n_chars: int = 200) -> list[str]:
    """Prompts cut from the start of each text: its first ``n_chars`` characters, ending before a space when one
    is near the end, so the continuation starts a new word."""
    out = []
    for text in texts:
        head = text[:n_chars]
        cut = head.rfind(" ")
        out.append(head[:cut] if cut > n_chars // 2 else head)
    return [p for p in out if p.strip()]


def chat_prefix(tokenizer: Any, prompt: str) -> list[int] | None:
    """Token ids of a one-turn chat up to the start of the assistant's answer, or ``None`` without a template."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def split_ids(tokenizer: Any, prefix: list[int], text: str) -> tuple[list[int], int]:
    """Ids to score after ``prefix`` (which starts with the start token) so that they cover ``text`` (see the
    module docstring), and how many leading ids of the returned sequence are context."""
    rep = normalisation(tokenizer)
    if rep.prefix_space == "never" or text.startswith(" "):
        cont = encode_text(tokenizer, text[1:] if rep.prefix_space == "always" else text)
        return prefix + cont, len(prefix)
    forms = vocabulary(tokenizer).forms
    before = b"".join(forms[i] for i in prefix[1:]).decode("utf-8", errors="replace")
    joint = tokenizer(before + text, add_special_tokens=False)["input_ids"]
    boundary = len(rep.apply_prefix(before.encode("utf-8")))
    offset, first = 0, len(joint)
    for i, idx in enumerate(joint):
        if offset >= boundary:
            first = i
            break
        offset += len(forms[idx])
    return [prefix[0]] + joint, first + 1


def greedy(model: Any, tokenizer: Any, ids: list[int], max_new_bytes: int) -> str:
    """Greedy continuation of ``ids`` until EOS, a special token or ``max_new_bytes`` bytes of text."""
    return greedy_batch(model, tokenizer, [ids], max_new_bytes)[0]


def greedy_batch(
    model: Any, tokenizer: Any, prefixes: Sequence[list[int]], max_new_bytes: int, *, batch_size: int = 16
) -> list[str]:
    """:func:`greedy` for many prefixes, ``batch_size`` at a time: left-padded (padding masked, positions
    counted from each prefix's first token), one decoding step for the whole batch until every row has stopped."""
    vocab = vocabulary(tokenizer)
    stop = {start_token_id(tokenizer)} | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())
    halt = torch.tensor([i in stop or k in (TokenKind.SPECIAL, TokenKind.UNUSED) for i, k in enumerate(vocab.kinds)])
    device = next(model.parameters()).device
    texts = []
    for first in range(0, len(prefixes), batch_size):
        chunk = prefixes[first : first + batch_size]
        width = max(len(p) for p in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, p in enumerate(chunk):
            ids[row, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[row, width - len(p) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out: list[list[int]] = [[] for _ in chunk]
        produced = [0] * len(chunk)
        done = [False] * len(chunk)
        cache = None
        with torch.inference_mode():
            while not all(done):
                res = model(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device),
                    position_ids=positions.to(device),
                    use_cache=True,
                    logits_to_keep=1,
                    **with_cache(model, cache),
                )
                cache = cache_of(res)
                nxt = res.logits[:, -1].argmax(-1).cpu()
                for row, token in enumerate(nxt.tolist()):
                    if done[row]:
                        continue
                    if token >= len(halt) or halt[token]:
                        done[row] = True
                        continue
                    out[row].append(token)
                    produced[row] += len(vocab.forms[token])
                    done[row] = produced[row] >= max_new_bytes
                ids = nxt[:, None]
                positions = positions[:, -1:] + 1
                mask = torch.cat([mask, torch.ones((len(chunk), 1), dtype=torch.long)], dim=1)
        for row in out:
            texts.append(b"".join(vocab.forms[i] for i in row)[:max_new_bytes].decode("utf-8", errors="ignore"))
    return texts


@torch.inference_mode()
def _continuation_bits(model: Any, ids: list[int], context: int) -> float:
    device = next(model.parameters()).device
    logits = model(input_ids=torch.tensor([ids], device=device)).logits[0].float()
    lp = torch.log_softmax(logits[context - 1 : -1], -1).gather(-1, torch.tensor(ids[context:], device=device)[:, None])
    return -float(lp.sum()) / math.log(2)


def agreement(
    model: Any,
    tokenizer: Any,
    reference: Any,
    reference_tokenizer: Any,
    prompts: Sequence[str],
    *,
    chat_prompts: Sequence[str] | None = None,
    max_new_bytes: int = 96,
    divergence: bool = True,
    progress: bool = True,
) -> AgreementResult:
    """Agreement of ``model`` with ``reference`` on ``prompts`` (plain continuations) and ``chat_prompts``
    (answers through the chat template; by default :data:`CHAT_PROMPTS` when both tokenizers have a template,
    none otherwise). See the module docstring for the three measures."""
    if chat_prompts is None:
        both = getattr(tokenizer, "chat_template", None) and getattr(reference_tokenizer, "chat_template", None)
        chat_prompts = CHAT_PROMPTS if both else ()
    items = [(p, False) for p in prompts if p] + [(p, True) for p in chat_prompts]
    if not items:
        raise ValueError("no prompts: pass texts to continue (prompts_from_texts) or chat prompts")
    r_prefixes = [prompt_ids(reference_tokenizer, p, c) for p, c in items]
    m_prefixes = [prompt_ids(tokenizer, p, c) for p, c in items]
    ref_out = greedy_batch(reference, reference_tokenizer, r_prefixes, max_new_bytes)
    mod_out = greedy_batch(model, tokenizer, m_prefixes, max_new_bytes)
    sims = []
    plain_bits, plain_bytes, chat_bits, chat_bytes = [], [], [], []
    for (prompt, is_chat), m_prefix, r_text, m_text in tqdm(
        list(zip(items, m_prefixes, ref_out, mod_out, strict=True)), desc="agreement", disable=not progress, leave=False
    ):
        n = min(len(r_text.encode()), len(m_text.encode()))
        sims.append(chrf(_cut(m_text, n), _cut(r_text, n)) if n else float(r_text == m_text))
        if not r_text:
            continue
        ids, context = split_ids(tokenizer, m_prefix, r_text)
        bits, bytes_ = (chat_bits, chat_bytes) if is_chat else (plain_bits, plain_bytes)
        bits.append(_continuation_bits(model, ids, context))
        bytes_.append(len(r_text.encode("utf-8")))
    keys = text_keys([("chat:" if c else "") + p for p, c in items])
    div = None
    if divergence:
        texts = [p + r for (p, c), r in zip(items, ref_out) if not c and r]
        if texts:
            values = teacher_divergence(model, tokenizer, reference, reference_tokenizer, texts, per_text=True)
            div = ItemScores(np.asarray(values), text_keys(texts))
    return AgreementResult(
        [p for p, _ in items],
        ref_out,
        mod_out,
        [c for _, c in items],
        _bpb(plain_bits, plain_bytes, [p + r for (p, c), r in zip(items, ref_out) if not c and r]),
        _bpb(chat_bits, chat_bytes, [p + r for (p, c), r in zip(items, ref_out) if c and r]),
        ItemScores(np.asarray(sims), keys),
        div,
    )


def prompt_ids(tokenizer: Any, prompt: str, chat: bool) -> list[int]:
    """Ids to generate from: the start token and ``prompt`` as plain text, or (``chat``) the one-turn chat up to
    the assistant's answer."""
    if chat:
        return with_start(tokenizer, chat_prefix(tokenizer, prompt) or [])
    return [start_token_id(tokenizer)] + encode_text(tokenizer, prompt)


def with_start(tokenizer: Any, ids: list[int]) -> list[int]:
    """``ids`` beginning with the tokenizer's start token (prepended unless a chat template already put it there)."""
    start = start_token_id(tokenizer)
    return ids if ids and ids[0] == start else [start] + ids


def _cut(text: str, n_bytes: int) -> str:
    return text.encode("utf-8")[:n_bytes].decode("utf-8", errors="ignore")


def _bpb(bits: list[float], n_bytes: list[int], texts: list[str]) -> BPBResult | None:
    if not bits:
        return None
    return BPBResult(
        bits=float(sum(bits)),
        bytes=int(sum(n_bytes)),
        tokens=0,
        doc_bits=tuple(bits),
        doc_bytes=tuple(n_bytes),
        keys=text_keys(texts),
    )


@torch.no_grad()
def teacher_divergence(
    student: Any,
    student_tokenizer: Any,
    teacher: Any,
    teacher_tokenizer: Any,
    texts: Sequence[str],
    *,
    max_length: int = 512,
    per_text: bool = False,
    **alm: Any,
) -> float | list[float]:
    """Distance of ``student`` from ``teacher`` across tokenizers (SPEC §5.6): the chunk-level ALM divergence
    (binary KL at tau = 100 unless ``alm`` says otherwise) on ``texts``, one text at a time (first ``max_length``
    student tokens), averaged over aligned chunk groups; ``per_text=True`` gives one value per text instead. 0
    means the student assigns every aligned chunk the teacher's likelihood; a token-level KL is undefined across
    vocabularies."""
    from tokenizers_zoo import load_tokenizer

    from ..distill.data import StepBatches, default_teacher_length
    from ..losses import alm_loss, boundary_mask
    from ..training.teacher import lm_token_stats

    texts = [t for t in texts if t]
    s_tok, t_tok = load_tokenizer(student_tokenizer), load_tokenizer(teacher_tokenizer)
    data = StepBatches(
        texts,
        s_tok,
        t_tok,
        batch_size=1,
        max_length=max_length,
        teacher_max_length=default_teacher_length(s_tok, t_tok, texts, max_length),
        seed=0,
        first=0,
        last=1,
    )
    s_bnd, t_bnd = boundary_mask(s_tok), boundary_mask(t_tok)
    values, weights = [], []
    t_dev, s_dev = next(teacher.parameters()).device, next(student.parameters()).device
    for i in range(len(texts)):
        batch = data.collate([i])
        t_out = lm_token_stats(
            teacher, batch["teacher_input_ids"].to(t_dev), batch["teacher_attention_mask"].to(t_dev), t_bnd
        )[0]
        s_out = lm_token_stats(
            student, batch["student_input_ids"].to(s_dev), batch["student_attention_mask"].to(s_dev), s_bnd
        )[0]
        t_out = {k: v.to(s_dev) for k, v in t_out.items()}
        batch = {k: v.to(s_dev) for k, v in batch.items()}
        values.append(float(alm_loss(t_out, s_out, batch, **alm)))
        weights.append(int(batch["num_chunks"].sum()))
    if per_text:
        return values
    return sum(v * w for v, w in zip(values, weights)) / max(sum(weights), 1)


__all__ = [
    "AgreementResult",
    "CHAT_PROMPTS",
    "ItemScores",
    "agreement",
    "chrf",
    "greedy",
    "greedy_batch",
    "prompt_ids",
    "prompts_from_texts",
    "teacher_divergence",
]
