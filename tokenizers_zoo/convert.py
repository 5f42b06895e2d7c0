"""``convert_to_byte_level``: any tokenizer's pieces as byte-level strings (SPEC §3.2).

Byte-level tokenizers are returned as a copy. Any other family (SentencePiece
BPE or Unigram, WordPiece, plain) becomes a Unigram model over the same ids,
each piece written as the byte-level string of its surface form, so that:

* ids 0..len-1 keep their surface bytes (byte-fallback ``<0xNN>`` pieces
  become the single byte NN: byte fallback made explicit);
* every byte is reachable: bytes no piece covers are appended as new ids;
* any UTF-8 text round-trips exactly (no unknown token remains).

The segmentation follows Unigram scores: the original's for a Unigram model;
for BPE, earlier (more frequent) ids score higher, which approximates but does
not always reproduce BPE's merge order (``tests`` measure the agreement).
"""

from __future__ import annotations

import math
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from .byte_map import BYTE_TO_CHAR, to_byte_level
from .surface import SPIECE_SPACE, Family, TokenKind, _walk, backend_of, normalisation, pipeline_json, vocabulary

BYTE_SCORE = -50.0  # single-byte pieces are the last resort, like byte fallback


def _scores(tokenizer: Any, size: int) -> list[float]:
    import json

    full = json.loads(backend_of(tokenizer).to_str())["model"]
    if full["type"] == "Unigram":
        scores = [s for _, s in full["vocab"]]
        return scores + [BYTE_SCORE] * (size - len(scores))
    # BPE / WordPiece / WordLevel: lower ids were learned earlier, i.e. are more frequent.
    return [-1.0 - math.log1p(i) for i in range(size)]


def convert_to_byte_level(tokenizer: Any) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer with the same ids and surface bytes as ``tokenizer``."""
    vocab = vocabulary(tokenizer)
    if vocab.family is Family.BYTE_LEVEL:
        copy = PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer.from_str(backend_of(tokenizer).to_str()), **_role_kwargs(tokenizer)
        )
        copy.name_or_path = getattr(tokenizer, "name_or_path", "")
        return copy
    scores = _scores(tokenizer, len(vocab))
    pieces: list[tuple[str, float]] = []
    seen: set[str] = set()
    specials: list[AddedToken] = []
    for idx, (form, kind) in enumerate(zip(vocab.forms, vocab.kinds)):
        if kind in (TokenKind.SPECIAL, TokenKind.UNUSED) or not form:
            name = form.decode("utf-8", "replace") or f"<zett_empty_{idx}>"
            pieces.append((name, -1e9))
            specials.append(AddedToken(name, special=True, normalized=False))
            continue
        piece = to_byte_level(form)
        score = BYTE_SCORE if kind is TokenKind.BYTE_FALLBACK else scores[idx]
        if piece in seen:  # a second id with the same bytes (e.g. <0x41> beside A): never chosen
            score = -1e9
        seen.add(piece)
        pieces.append((piece, score))
    for b in range(256):
        if BYTE_TO_CHAR[b] not in seen:
            pieces.append((BYTE_TO_CHAR[b], BYTE_SCORE))
    backend = Tokenizer(models.Unigram(pieces, unk_id=None, byte_fallback=False))
    rep = normalisation(tokenizer)
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=rep.prefix_space != "never", use_regex=False)
    spec = pipeline_json(tokenizer)
    strip = [c for c in _walk(spec.get("decoder")) if c.get("type") == "Strip"]
    backend.decoder = decoders.ByteLevel()
    if strip:  # the original removes its prefix space when decoding; so does the copy
        backend.decoder = decoders.Sequence(
            [decoders.ByteLevel(), decoders.Strip(strip[0]["content"], strip[0]["start"], strip[0]["stop"])]
        )
    original = backend_of(tokenizer)
    if original.normalizer is not None and SPIECE_SPACE not in str(spec.get("normalizer")):
        backend.normalizer = original.normalizer
    if original.post_processor is not None:
        backend.post_processor = original.post_processor
    backend.add_special_tokens(specials)
    out = PreTrainedTokenizerFast(tokenizer_object=backend, **_role_kwargs(tokenizer))
    if getattr(tokenizer, "chat_template", None):
        out.chat_template = tokenizer.chat_template
    out.name_or_path = f"{getattr(tokenizer, 'name_or_path', '')}+byte_level"
    return out


def _role_kwargs(tokenizer: Any) -> dict:
    return {f"{r}_token": getattr(tokenizer, f"{r}_token", None) for r in ("bos", "eos", "pad", "unk")}
