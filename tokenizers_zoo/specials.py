"""Special tokens by role (bos, eos, pad, unk, chat markers).

Transfer maps the target's special tokens onto the base's by role, and the
aligner (ALM) pairs them by role, so both read roles from here.
"""

from __future__ import annotations

from typing import Any

from .surface import TokenKind, backend_of, encode_text, vocabulary

# Chat markers that play the same part across model families.
CHAT_ROLES: dict[str, tuple[str, ...]] = {
    "turn_start": ("<|im_start|>", "<start_of_turn>", "<|start_header_id|>", "[INST]", "<|user|>"),
    "turn_end": ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "[/INST]", "<|end|>"),
}
ROLES = ("bos", "eos", "pad", "unk")


def special_roles(tokenizer: Any) -> dict[str, int]:
    """Role → token id for the roles this tokenizer has (``bos``, ``eos``, ``pad``,
    ``unk``, ``turn_start``, ``turn_end``)."""
    roles: dict[str, int] = {}
    for role in ROLES:
        idx = getattr(tokenizer, f"{role}_token_id", None)
        if idx is not None:
            roles[role] = int(idx)
    backend = backend_of(tokenizer)  # a lookup per marker, not the whole vocabulary as a dict
    for role, names in CHAT_ROLES.items():
        for name in names:
            idx = backend.token_to_id(name)
            if idx is not None:
                roles[role] = idx
                break
    return roles


def start_token_id(tokenizer: Any) -> int:
    """The token every scored text starts with: the tokenizer's BOS, else its EOS (context only, never scored).

    One rule for evaluation, distillation batches and generation prompts, so a model is scored and trained on
    the same kind of start. Raises ``ValueError`` naming the fix when the tokenizer has neither."""
    idx = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if idx is None:
        name = getattr(tokenizer, "name_or_path", "") or "tokenizer"
        raise ValueError(
            f"{name} has neither BOS nor EOS to start a text with; set one "
            "(tokenizer.add_special_tokens({'eos_token': ...}))"
        )
    return int(idx)


def added_specials(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special ids the tokenizer puts before and after a text when asked to add them."""
    plain = encode_text(tokenizer, "a")
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return list(full[:start]), list(full[start + len(plain) :])
    return [], []


def special_ids(tokenizer: Any) -> list[int]:
    """Ids flagged special or unused (never matched by bytes)."""
    kinds = vocabulary(tokenizer).kinds
    return [i for i, k in enumerate(kinds) if k in (TokenKind.SPECIAL, TokenKind.UNUSED)]


def match_specials(target: Any, base: Any) -> dict[int, int]:
    """Target special id → the base's equivalent special id.

    Same text first (``<|im_end|>`` ↔ ``<|im_end|>``), then the same role
    (target EOS ↔ base EOS, chat turn markers across families). Specials with
    no counterpart are left out.
    """
    t_vocab, b_vocab = vocabulary(target), vocabulary(base)
    b_specials = {b_vocab.forms[i]: i for i in special_ids(base)}
    out: dict[int, int] = {}
    for i in special_ids(target):
        if t_vocab.forms[i] in b_specials:
            out[i] = b_specials[t_vocab.forms[i]]
    b_roles = special_roles(base)
    for role, t_id in special_roles(target).items():
        if t_id not in out and role in b_roles and t_vocab.kinds[t_id] is not TokenKind.NORMAL:
            out[t_id] = b_roles[role]
    return out
