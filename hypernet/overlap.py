"""Which target rows are copied exactly from the base (SPEC §2a "copy_overlap")."""

from __future__ import annotations

from typing import Any

import torch

from tokenizers_zoo import TokenKind, match_specials, vocabulary


def exact_matches(
    target_tokenizer: Any, base_tokenizer: Any, *, normal: bool = True, specials: bool = True, rows: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(target_ids, base_ids)`` of rows to copy bit for bit.

    ``normal``: target tokens whose surface bytes equal a base token's (byte
    fallback pieces count as their byte). ``specials``: target special tokens
    matched to the base's by text or role. ``rows``: the base's embedding
    rows; base ids at or past it have no row to copy and are left out (Gemma-3's
    published tokenizer has 262,145 ids for 262,144 rows).

    Where the base has a normal token and a byte fallback piece for the same
    byte, target tokens get the normal token's row, except a target byte
    fallback piece that its own tokenizer never emits (it has a normal token
    for that byte too): that one gets the base's fallback row, trained as
    rarely emitted, so the two do not share one logit (and a self-transfer
    copies every row to itself).
    """
    t_vocab, b_vocab = vocabulary(target_tokenizer), vocabulary(base_tokenizer)
    pairs: dict[int, int] = {}
    wordy = (TokenKind.NORMAL, TokenKind.BYTE_FALLBACK)
    if normal:
        base_by_bytes, base_fallback = _base_forms(b_vocab)
        target_normal = {f for f, k in zip(t_vocab.forms, t_vocab.kinds) if k is TokenKind.NORMAL and len(f) == 1}
        for i, (form, kind) in enumerate(zip(t_vocab.forms, t_vocab.kinds)):
            if kind not in wordy or form not in base_by_bytes:
                continue
            unused_fallback = kind is TokenKind.BYTE_FALLBACK and form in target_normal
            pairs[i] = base_fallback.get(form, base_by_bytes[form]) if unused_fallback else base_by_bytes[form]
    if specials:
        pairs.update(match_specials(target_tokenizer, base_tokenizer))
    if rows is not None:
        pairs = {t: b for t, b in pairs.items() if b < rows}
    t_ids = torch.tensor(sorted(pairs), dtype=torch.long)
    return t_ids, torch.tensor([pairs[i] for i in t_ids.tolist()], dtype=torch.long)


_BASE_FORMS: dict[int, tuple[Any, dict[bytes, int], dict[bytes, int]]] = {}


def _base_forms(b_vocab: Any) -> tuple[dict[bytes, int], dict[bytes, int]]:
    """(base id by surface bytes, byte-fallback id by byte) of a base vocabulary; kept for the last few
    vocabularies (a training run matches every step's tokenizer against the same base)."""
    cached = _BASE_FORMS.get(id(b_vocab))
    if cached is not None and cached[0] is b_vocab:
        return cached[1], cached[2]
    wordy = (TokenKind.NORMAL, TokenKind.BYTE_FALLBACK)
    base_by_bytes: dict[bytes, int] = {}
    base_fallback: dict[bytes, int] = {}
    for i, (form, kind) in enumerate(zip(b_vocab.forms, b_vocab.kinds)):
        if not form or kind not in wordy:
            continue
        if kind is TokenKind.BYTE_FALLBACK:
            base_fallback.setdefault(form, i)
        held = base_by_bytes.get(form)
        # a normal token beats a byte-fallback piece of the same byte: the fallback row is trained only for
        # characters the vocabulary lacks (Gemma's <0x61> vs "a"), whatever their id order
        if held is None or (kind is TokenKind.NORMAL and b_vocab.kinds[held] is not TokenKind.NORMAL):
            base_by_bytes[form] = i
    if len(_BASE_FORMS) >= 4:
        _BASE_FORMS.clear()
    _BASE_FORMS[id(b_vocab)] = (b_vocab, base_by_bytes, base_fallback)
    return base_by_bytes, base_fallback
