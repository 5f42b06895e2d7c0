"""A pure byte-level tokenizer: ids 0-255 are the bytes, specials follow (SPEC §2a, §3.2)."""

from __future__ import annotations

from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from .byte_map import BYTE_TO_CHAR
from .specials import added_specials
from .surface import TokenKind, vocabulary

DEFAULT_SPECIAL = "<|endoftext|>"


def _base_specials(base: Any) -> tuple[list[str], dict[str, str | None]]:
    """Special token strings of ``base`` in id order, and its role → string map."""
    vocab = vocabulary(base)
    names = [
        vocab.forms[i].decode("utf-8") for i, k in enumerate(vocab.kinds) if k in (TokenKind.SPECIAL, TokenKind.UNUSED)
    ]
    roles = {r: getattr(base, f"{r}_token", None) for r in ("bos", "eos", "pad", "unk")}
    for token in roles.values():
        if token is not None and token not in names:
            names.append(token)
    return names, roles


def byte_tokenizer(specials_from: Any = None) -> PreTrainedTokenizerFast:
    """256 byte tokens plus the special tokens of ``specials_from``.

    It adds BOS/EOS like ``specials_from`` does and keeps its chat template.
    With no base it has ``<|endoftext|>`` as BOS, EOS and pad (and adds none).
    The result saves and loads with ``AutoTokenizer`` and round-trips any UTF-8 text.
    """
    vocab = {BYTE_TO_CHAR[b]: b for b in range(256)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], byte_fallback=False, ignore_merges=True))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tok = wrap_with_specials(backend, specials_from)
    tok.name_or_path = "byte"
    return tok


def wrap_with_specials(backend: Tokenizer, specials_from: Any = None) -> PreTrainedTokenizerFast:
    """``backend`` (normal pieces only) + the special tokens, BOS/EOS insertion and chat template of
    ``specials_from``, as a ``transformers`` fast tokenizer; ``<|endoftext|>`` as BOS/EOS/pad without a base."""
    if specials_from is None:
        names, roles = (
            [DEFAULT_SPECIAL],
            {"bos": DEFAULT_SPECIAL, "eos": DEFAULT_SPECIAL, "pad": DEFAULT_SPECIAL, "unk": None},
        )
        before, after = [], []
    else:
        names, roles = _base_specials(specials_from)
        before, after = ([specials_from.convert_ids_to_tokens(i) for i in ids] for ids in added_specials(specials_from))
    backend.add_special_tokens([AddedToken(n, special=True, normalized=False) for n in names])
    if before or after:
        single = before + ["$A"] + after
        pair = before + ["$A"] + after + before + ["$B"] + after
        backend.post_processor = processors.TemplateProcessing(
            single=single,
            pair=pair,
            special_tokens=[(n, backend.token_to_id(n)) for n in dict.fromkeys(before + after)],
        )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=roles["bos"],
        eos_token=roles["eos"],
        pad_token=roles["pad"],
        unk_token=roles["unk"],
        model_max_length=10**9,
        clean_up_tokenization_spaces=False,
    )
    if specials_from is not None and getattr(specials_from, "chat_template", None):
        tok.chat_template = specials_from.chat_template
    return tok


def is_byte_tokenizer(tokenizer: Any) -> bool:
    """True when ids 0-255 are exactly the 256 single bytes and no other normal token exists."""
    vocab = vocabulary(tokenizer)
    if len(vocab) < 256 or any(vocab.forms[b] != bytes([b]) for b in range(256)):
        return False
    return all(k is not TokenKind.NORMAL for k in vocab.kinds[256:])
