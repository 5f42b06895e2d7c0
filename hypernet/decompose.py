"""Decomposing target tokens into base ids (SPEC §4.1).

A target token's bytes are split by the **base tokenizer's model run directly
on the token** (no normaliser, no pre-tokenizer, no special tokens). Bytes the
base cannot represent get ids ``>= len(base)``: ``len(base) + k`` for the k-th
byte in :attr:`Decomposer.missing_bytes`, so a caller can give them rows of a
learned fallback table (the hypernetwork) or skip them (FVT).
"""

from __future__ import annotations

import json
from typing import Any

from tokenizers import Tokenizer

from tokenizers_zoo import SPIECE_SPACE, Family, TokenKind, to_byte_level, vocabulary
from tokenizers_zoo.surface import backend_of


class Decomposer:
    """Splits byte strings into base ids; build once per base tokenizer."""

    def __init__(self, base_tokenizer: Any):
        self.base = base_tokenizer
        vocab = vocabulary(base_tokenizer)
        self.family = vocab.family
        self.size = len(vocab)
        spec = json.loads(backend_of(base_tokenizer).to_str())
        for part in ("normalizer", "pre_tokenizer", "post_processor", "decoder"):
            spec[part] = None
        spec["added_tokens"] = []
        self.model = Tokenizer.from_str(json.dumps(spec))
        single = {}
        for i, (form, kind) in enumerate(zip(vocab.forms, vocab.kinds)):
            if len(form) == 1 and kind in (TokenKind.NORMAL, TokenKind.BYTE_FALLBACK):
                # Byte fallback ids win for SentencePiece (that is how the base spells a lone byte).
                if form[0] not in single or kind is TokenKind.BYTE_FALLBACK:
                    single[form[0]] = i
        self.byte_ids = single
        self.missing_bytes = [b for b in range(256) if b not in single]
        self._missing_index = {b: k for k, b in enumerate(self.missing_bytes)}
        self._missing = bytes(self.missing_bytes)

    def fallback_id(self, byte: int) -> int:
        return self.size + self._missing_index[byte]

    def _byte_id(self, byte: int) -> int:
        return self.byte_ids[byte] if byte in self.byte_ids else self.fallback_id(byte)

    def __call__(self, forms: list[bytes], max_subtokens: int | None = None) -> list[list[int]]:
        """Base ids for each byte string (``max_subtokens`` truncates)."""
        jobs: list[str] = []  # strings for the base model
        plans: list[Any] = []  # per form: an int into jobs (the whole form is one job), or a list of ids and
        for form in forms:  # ("job", k) steps
            text = self._whole(form)
            if text is not None:
                plans.append(len(jobs))
                jobs.append(text)
                continue
            plan: list = []
            for kind, part in self._segments(form):
                if kind == "ids":
                    plan.extend(part)
                else:
                    plan.append(("job", len(jobs)))
                    jobs.append(part)
            plans.append(plan)
        encoded = [e.ids for e in self.model.encode_batch(jobs, add_special_tokens=False)] if jobs else []
        out = []
        for plan in plans:
            if isinstance(plan, int):
                ids = encoded[plan]
            else:
                ids = []
                for step in plan:
                    if isinstance(step, tuple):
                        ids.extend(encoded[step[1]])
                    else:
                        ids.append(step)
            out.append(ids[:max_subtokens] if max_subtokens else ids)
        return out

    def _whole(self, form: bytes) -> str | None:
        """The base model's string for a byte-level ``form`` whose bytes the base all has (one job, the common
        case, without walking its bytes in Python); None otherwise."""
        if self.family is not Family.BYTE_LEVEL or not form:
            return None
        if self._missing and len(form.translate(None, self._missing)) != len(form):
            return None
        return to_byte_level(form)

    def _segments(self, form: bytes):
        """Yield ("text", str) parts for the base model and ("ids", [..]) for bytes handled here."""
        if not form:
            return
        if self.family is Family.BYTE_LEVEL:
            run = bytearray()
            for b in form:
                if b in self.byte_ids:
                    run.append(b)
                    continue
                if run:
                    yield "text", to_byte_level(bytes(run))
                    run = bytearray()
                yield "ids", [self.fallback_id(b)]
            if run:
                yield "text", to_byte_level(bytes(run))
            return
        for valid, part in _utf8_runs(form):
            if not valid:
                yield "ids", [self._byte_id(b) for b in part]
            elif self.family is Family.METASPACE:
                yield "text", part.decode("utf-8").replace(" ", SPIECE_SPACE)
            else:
                yield "text", part.decode("utf-8")


def _utf8_runs(data: bytes):
    """Split ``data`` into (True, valid UTF-8 run) and (False, invalid bytes) parts."""
    pos = 0
    while pos < len(data):
        try:
            data[pos:].decode("utf-8")
        except UnicodeDecodeError as err:
            if err.start:
                yield True, data[pos : pos + err.start]
            yield False, data[pos + err.start : pos + err.end]
            pos += err.end
        else:
            yield True, data[pos:]
            return
