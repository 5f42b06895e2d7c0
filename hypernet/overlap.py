"""Which target rows are copied exactly from the base (SPEC §2a "copy_overlap")."""

from __future__ import annotations

from typing import Any

import torch

from tokenizers_zoo import TokenKind, match_specials, vocabulary


def exact_matches(target_tokenizer: Any, base_tokenizer: Any, *, normal: bool = True,
                  specials: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(target_ids, base_ids)`` of rows to copy bit for bit.

    ``normal``: target tokens whose surface bytes equal a base token's (byte
    fallback pieces count as their byte). ``specials``: target special tokens
    matched to the base's by text or role.
    """
    t_vocab, b_vocab = vocabulary(target_tokenizer), vocabulary(base_tokenizer)
    pairs: dict[int, int] = {}
    if normal:
        wordy = (TokenKind.NORMAL, TokenKind.BYTE_FALLBACK)
        base_by_bytes: dict[bytes, int] = {}
        for i, (form, kind) in enumerate(zip(b_vocab.forms, b_vocab.kinds)):
            if not form or kind not in wordy:
                continue
            held = base_by_bytes.get(form)
            # a normal token beats a byte-fallback piece of the same byte: the fallback row is trained only for
            # characters the vocabulary lacks (Gemma's <0x61> vs "a"), whatever their id order
            if held is None or (kind is TokenKind.NORMAL and b_vocab.kinds[held] is not TokenKind.NORMAL):
                base_by_bytes[form] = i
        for i, (form, kind) in enumerate(zip(t_vocab.forms, t_vocab.kinds)):
            if kind in wordy and form in base_by_bytes:
                pairs[i] = base_by_bytes[form]
    if specials:
        pairs.update(match_specials(target_tokenizer, base_tokenizer))
    t_ids = torch.tensor(sorted(pairs), dtype=torch.long)
    return t_ids, torch.tensor([pairs[i] for i in t_ids.tolist()], dtype=torch.long)
