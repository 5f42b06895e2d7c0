"""Surface forms: the bytes behind every token id (SPEC §3.1).

This is the one module that knows tokenizer families. Everything downstream
(decomposition, alignment, FVT, debiasing masks) works on the bytes it returns.

Families, detected from the backend pipeline (``tokenizers`` JSON):

* byte-level (GPT-2, Llama-3, Qwen, SmolLM2): pieces are GPT-2 byte-to-unicode
  strings, undone character by character;
* metaspace (SentencePiece: Llama-2, Mistral, Gemma, T5): ``▁`` is a space,
  ``<0xNN>`` byte-fallback pieces are the byte ``NN``;
* wordpiece: ``##x`` continues a word, any other piece starts one (leading space);
* plain: pieces are their own UTF-8 text.

Special added tokens are their content, flagged, and never take part in byte
matching. A non-special added token that the model also holds at its id (Gemma's
whitespace runs ``▁▁``…) takes the model's meaning of the piece; other added
tokens are their content as matched in the text.
"""

from __future__ import annotations

import enum
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .byte_map import CHAR_TO_BYTE, from_byte_level

SPIECE_SPACE = "\u2581"
_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_UNUSED = re.compile(r"reserved|unused", re.IGNORECASE)
_RESERVED = re.compile(r"[<\[]\|?(?:reserved|unused)[a-z_]*\d+\|?[>\]]", re.IGNORECASE)


class TokenKind(str, enum.Enum):
    NORMAL = "normal"
    SPECIAL = "special"
    BYTE_FALLBACK = "byte_fallback"
    UNUSED = "unused"


class Family(str, enum.Enum):
    BYTE_LEVEL = "byte_level"
    METASPACE = "metaspace"
    WORDPIECE = "wordpiece"
    PLAIN = "plain"


def backend_of(tokenizer: Any):
    """The ``tokenizers.Tokenizer`` behind a transformers tokenizer (or the object itself)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None and hasattr(tokenizer, "to_str") and hasattr(tokenizer, "encode_batch"):
        backend = tokenizer
    if backend is None:
        raise TypeError(
            f"{type(tokenizer).__name__} has no `backend_tokenizer`; zett needs a fast "
            "(Rust-backed) tokenizer. Load it with `tokenizers_zoo.load_tokenizer(...)`."
        )
    return backend


def pipeline_json(tokenizer: Any) -> dict:
    """The backend pipeline as a dict, without the (large) vocabulary and merges."""
    backend = backend_of(tokenizer)
    key = (id(backend), backend.get_vocab_size(with_added_tokens=True))  # tokens added later change the size
    cached = getattr(tokenizer, "_zett_pipeline", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    spec = json.loads(backend.to_str())
    model = spec["model"]
    if model.get("type") == "Unigram" and model.get("unk_id") is not None:
        model["unk_token"] = model["vocab"][model["unk_id"]][0]
    model.pop("vocab", None)
    model.pop("merges", None)
    _remember(tokenizer, "_zett_pipeline", (key, spec))
    return spec


def _remember(tokenizer: Any, name: str, value: Any) -> None:
    try:
        setattr(tokenizer, name, value)
    except AttributeError:  # a bare tokenizers.Tokenizer takes no attributes
        pass


def _walk(node: Any) -> Iterator[dict]:
    """All component dicts of a pipeline part (Sequence components included)."""
    if isinstance(node, dict):
        yield node
        for key in ("pretokenizers", "normalizers", "decoders", "processors"):
            for child in node.get(key) or []:
                yield from _walk(child)


def _types(node: Any) -> set[str]:
    return {c.get("type") for c in _walk(node)}


def family(tokenizer: Any) -> Family:
    spec = pipeline_json(tokenizer)
    return _family_of(spec)


def _family_of(spec: dict) -> Family:
    pre, dec, norm = spec.get("pre_tokenizer"), spec.get("decoder"), spec.get("normalizer")
    if "ByteLevel" in _types(pre) or "ByteLevel" in _types(dec):
        return Family.BYTE_LEVEL
    if "Metaspace" in _types(pre) or "Metaspace" in _types(dec):
        return Family.METASPACE
    replaces = [c for c in list(_walk(norm)) + list(_walk(dec)) if c.get("type") == "Replace"]
    if any(SPIECE_SPACE in json.dumps(c, ensure_ascii=False) for c in replaces):
        return Family.METASPACE
    if spec["model"]["type"] == "WordPiece":
        return Family.WORDPIECE
    return Family.PLAIN


def _piece_converter(spec: dict):
    fam = _family_of(spec)
    model = spec["model"]
    byte_fallback = bool(model.get("byte_fallback"))
    prefix = model.get("continuing_subword_prefix") or ""

    if fam is Family.BYTE_LEVEL:

        def convert(piece: str) -> tuple[bytes, TokenKind]:
            if prefix and piece.startswith(prefix):
                piece = piece[len(prefix) :]
            return from_byte_level(piece), TokenKind.NORMAL
    elif fam is Family.METASPACE:

        def convert(piece: str) -> tuple[bytes, TokenKind]:
            m = _BYTE_FALLBACK.fullmatch(piece) if byte_fallback else None
            if m:
                return bytes([int(m.group(1), 16)]), TokenKind.BYTE_FALLBACK
            return piece.replace(SPIECE_SPACE, " ").encode("utf-8"), TokenKind.NORMAL
    elif fam is Family.WORDPIECE:
        wp_prefix = prefix or "##"

        def convert(piece: str) -> tuple[bytes, TokenKind]:
            if piece.startswith(wp_prefix):
                return piece[len(wp_prefix) :].encode("utf-8"), TokenKind.NORMAL
            return b" " + piece.encode("utf-8"), TokenKind.NORMAL
    else:

        def convert(piece: str) -> tuple[bytes, TokenKind]:
            return piece.encode("utf-8"), TokenKind.NORMAL

    return fam, convert


@dataclass(frozen=True)
class Vocabulary:
    """Surface bytes and kinds of every id of one tokenizer."""

    forms: list[bytes]
    kinds: list[TokenKind]
    family: Family

    def __len__(self) -> int:
        return len(self.forms)


def vocabulary(tokenizer: Any) -> Vocabulary:
    """Surface forms and kinds in one pass (cached on the tokenizer object)."""
    cached = getattr(tokenizer, "_zett_vocabulary", None)
    size = len(tokenizer)
    if isinstance(cached, Vocabulary) and len(cached) == size:
        return cached
    spec = pipeline_json(tokenizer)
    fam, convert = _piece_converter(spec)
    forms = [b""] * size
    kinds = [TokenKind.UNUSED] * size
    backend = backend_of(tokenizer)
    added = {t["id"]: t for t in spec.get("added_tokens") or []}
    # id by id, not through get_vocab(): two ids may share one piece string.
    for idx in range(size):
        piece = None if idx in added else backend.id_to_token(idx)
        if piece is not None:
            forms[idx], kinds[idx] = convert(piece)
    model = backend.model
    for idx, tok in added.items():
        if 0 <= idx < size:
            forms[idx], kinds[idx] = _added_form(tok, model.id_to_token(idx), fam, spec, convert)
    vocab = Vocabulary(forms, kinds, fam)
    _remember(tokenizer, "_zett_vocabulary", vocab)
    return vocab


def _added_form(tok: dict, piece: str | None, fam: Family, spec: dict, convert) -> tuple[bytes, TokenKind]:
    """Bytes and kind of one added token; ``piece`` is what the model itself holds at that id.

    A special token is its text. A non-special one that the model also holds at its id (Gemma's whitespace
    runs ``▁▁``… and HTML tags, a ``<0xNN>`` piece) can come out of the model for plain text, so it takes the
    model's meaning of the piece (``▁▁`` is two spaces however it is flagged). Any other added token is matched
    in the text as written: its content, where a ``normalized`` one under a ``" " → "▁"`` normaliser reads ``▁``
    as a space. Reserved slots (``<unused12>``, ``<|reserved_special_token_3|>``) are unused, flagged or not.
    """
    content = tok["content"]
    special = bool(tok.get("special"))
    if special:
        kind = TokenKind.UNUSED if _UNUSED.search(content) else TokenKind.SPECIAL
    else:
        kind = TokenKind.UNUSED if _RESERVED.fullmatch(content) else TokenKind.NORMAL
    if not special and piece == content:
        form, model_kind = convert(piece)
        return form, (model_kind if kind is TokenKind.NORMAL else kind)
    if fam is Family.METASPACE and spec["model"].get("byte_fallback") and _BYTE_FALLBACK.fullmatch(content):
        return convert(content)  # <0xNN> registered as an added token
    if fam is Family.METASPACE and tok.get("normalized"):
        content = content.replace(SPIECE_SPACE, " ")
    return content.encode("utf-8"), kind


def surface_forms(tokenizer: Any) -> list[bytes]:
    """Bytes of every token id; index = id, length = ``len(tokenizer)``; no piece → ``b""``."""
    return list(vocabulary(tokenizer).forms)


def token_kinds(tokenizer: Any) -> list[TokenKind]:
    """One :class:`TokenKind` per id (normal, special, byte_fallback, unused)."""
    return list(vocabulary(tokenizer).kinds)


@dataclass(frozen=True)
class Normalisation:
    """What a tokenizer itself changes about a text before its pieces cover it.

    ``lossless`` tokenizers (byte-level BPE, SentencePiece with byte fallback,
    the byte tokenizer) reproduce ``text`` exactly after ``unicode_form`` and
    the prefix space: ``prefix_space`` is ``"never"``, ``"always"`` or
    ``"if_missing"`` (added only when the text does not already start with a
    space, as ``tokenizers``' Metaspace does). Lossy ones may lowercase, strip accents,
    rewrite whitespace or emit unknown tokens (``unknown_token`` names it).
    """

    prefix_space: str
    unicode_form: str | None
    lowercase: bool
    strip_accents: bool
    rewrites_whitespace: bool
    unknown_token: str | None
    family: Family

    def apply_prefix(self, data: bytes) -> bytes:
        if not data or self.prefix_space == "never":
            return data
        if self.prefix_space == "if_missing" and data.startswith(b" "):
            return data
        return b" " + data

    @property
    def lossless(self) -> bool:
        return not (
            self.lowercase
            or self.strip_accents
            or self.rewrites_whitespace
            or self.unknown_token
            or self.unicode_form in ("NFKC", "NFKD", "precompiled")
        )


def normalisation(tokenizer: Any) -> Normalisation:
    """Report the tokenizer's own normalisation (SPEC §2a)."""
    cached = getattr(tokenizer, "_zett_normalisation", None)
    if cached is not None and cached[0] == id(backend_of(tokenizer)):
        return cached[1]
    spec = pipeline_json(tokenizer)
    fam = _family_of(spec)
    norm = spec.get("normalizer")
    comps = list(_walk(norm))
    types = {c.get("type") for c in comps}
    unicode_form = next((t for t in ("NFC", "NFD", "NFKC", "NFKD") if t in types), None)
    if "Precompiled" in types:
        unicode_form = "precompiled"
    bert = [c for c in comps if c.get("type") == "BertNormalizer"]
    lowercase = "Lowercase" in types or any(c.get("lowercase") for c in bert)
    strip_accents = "StripAccents" in types or any(
        c.get("strip_accents") or (c.get("strip_accents") is None and c.get("lowercase")) for c in bert
    )
    rewrites_ws = (
        fam is Family.WORDPIECE
        or "Strip" in types
        or any(c.get("type") == "Replace" and SPIECE_SPACE not in json.dumps(c, ensure_ascii=False) for c in comps)
    )
    model = spec["model"]
    unknown = None
    if fam is not Family.BYTE_LEVEL and not model.get("byte_fallback"):
        unknown = model.get("unk_token")
    prefix = "never"
    if fam is not Family.WORDPIECE and _joined(tokenizer, "x").startswith(b" "):
        prefix = "always" if _joined(tokenizer, " x").startswith(b"  ") else "if_missing"
    rep = Normalisation(prefix, unicode_form, lowercase, strip_accents, rewrites_ws, unknown, fam)
    _remember(tokenizer, "_zett_normalisation", (id(backend_of(tokenizer)), rep))
    return rep


def _joined(tokenizer: Any, text: str) -> bytes:
    forms = vocabulary(tokenizer).forms
    ids = encode_text(tokenizer, text)
    return b"".join(forms[i] for i in ids)


def encode_text(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` as plain text: no special tokens added, none parsed from the text."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return backend_of(tokenizer).encode(text, add_special_tokens=False).ids
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def expected_bytes(tokenizer: Any, text: str) -> bytes:
    """The bytes that the joined surface forms of ``text`` must equal.

    For lossless tokenizers: ``text`` in the tokenizer's Unicode form, with the
    prefix space the tokenizer adds. For lossy ones: the text as the
    tokenizer's own normaliser and pre-tokenizer leave it.
    """
    rep = normalisation(tokenizer)
    if rep.lossless:
        if rep.unicode_form:
            text = unicodedata.normalize(rep.unicode_form, text)
        return rep.apply_prefix(text.encode("utf-8"))
    backend = backend_of(tokenizer)
    normed = backend.normalizer.normalize_str(text) if backend.normalizer else text
    pieces = [p for p, _ in backend.pre_tokenizer.pre_tokenize_str(normed)] if backend.pre_tokenizer else [normed]
    if rep.family is Family.WORDPIECE:
        return b"".join(b" " + p.encode("utf-8") for p in pieces)
    if rep.family is Family.BYTE_LEVEL:
        return b"".join(from_byte_level(p) for p in pieces)
    return "".join(pieces).replace(SPIECE_SPACE, " ").encode("utf-8")


def verify_surface_forms(tokenizer: Any, text: str) -> None:
    """Raise ``ValueError`` where the joined surface forms of ``text`` differ from
    :func:`expected_bytes`. Unknown tokens (lossy tokenizers) may stand for any span."""
    vocab = vocabulary(tokenizer)
    ids = encode_text(tokenizer, text)
    expected = expected_bytes(tokenizer, text)
    rep = normalisation(tokenizer)
    unk_ids = set()
    if rep.unknown_token:
        unk_ids = {i for i in set(ids) if vocab.kinds[i] in (TokenKind.SPECIAL, TokenKind.UNUSED)}
    if not unk_ids:
        got = b"".join(vocab.forms[i] for i in ids)
        if got != expected:
            at = next((k for k, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
            raise ValueError(
                f"surface forms of {len(ids)} tokens give {len(got)} bytes, expected {len(expected)}; "
                f"first difference at byte {at}: got {got[max(0, at - 12) : at + 12]!r}, "
                f"expected {expected[max(0, at - 12) : at + 12]!r}"
            )
        return
    # Lossy with unknown tokens: the known runs must appear, in order, in the expected bytes.
    pos = 0
    run: list[bytes] = []
    for i in ids + [-1]:
        if i == -1 or i in unk_ids:
            seg = b"".join(run)
            found = expected.find(seg, pos)
            if found < 0:
                raise ValueError(f"known span {seg[:40]!r} not found after byte {pos} of the normalised text")
            pos = found + len(seg)
            run = []
        else:
            run.append(vocab.forms[i])


__all__ = [
    "TokenKind",
    "Family",
    "Vocabulary",
    "Normalisation",
    "surface_forms",
    "token_kinds",
    "vocabulary",
    "normalisation",
    "family",
    "expected_bytes",
    "verify_surface_forms",
    "encode_text",
    "backend_of",
    "pipeline_json",
    "SPIECE_SPACE",
    "CHAR_TO_BYTE",
]
