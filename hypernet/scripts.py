"""The writing systems a hypernetwork's training text holds, and the tokens of the others.

A hypernetwork learns its correction from the tokens of its training text. On tokens of a script that text
lacked (Hangul for a network trained without Korean) its rows are worse than FVT's, so prediction gives those
tokens FVT rows (:meth:`hypernet.Hypernet.predict`). A script is named by the first word of its letters' Unicode
names (``LATIN``, ``CYRILLIC``, ``GREEK``, ``HANGUL``, ``CJK``, ``HIRAGANA``, ``ARABIC``, ...); only letters
count, so digits, punctuation and symbols never decide.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from functools import cache

import numpy as np
import torch

log = logging.getLogger(__name__)

MIN_LETTERS = 1000  # letters of a script the training text must hold for the script to count as seen ...
MIN_SHARE = 0.001  # ... or this share of its letters, when that is fewer


@cache
def script_of(codepoint: int) -> str:
    """The script of a letter (first word of its Unicode name), ``""`` for anything that is not a letter."""
    char = chr(codepoint)
    if not unicodedata.category(char).startswith("L"):
        return ""
    return unicodedata.name(char, "").split(" ", 1)[0]


def text_scripts(texts: Iterable[str], min_letters: int = MIN_LETTERS, min_share: float = MIN_SHARE) -> list[str]:
    """The scripts of ``texts``' letters, sorted: those with ``min_letters`` letters or ``min_share`` of all letters
    (whichever is fewer: a few letters of another script in a large corpus are strays, in a small one they are
    part of the data)."""
    counts = np.zeros(0x110000, dtype=np.int64)
    chunk: list[str] = []
    size = 0

    def add() -> None:
        # surrogatepass: a lone surrogate in the data must not stop a training run
        codes = np.frombuffer("".join(chunk).encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
        counts[:] += np.bincount(codes, minlength=0x110000)[:0x110000]
        chunk.clear()

    for text in texts:
        chunk.append(text)
        size += len(text)
        if size > 1 << 22:
            add()
            size = 0
    add()
    letters: dict[str, int] = {}
    for cp in np.nonzero(counts[128:])[0] + 128:
        script = script_of(int(cp))
        if script:
            letters[script] = letters.get(script, 0) + int(counts[cp])
    ascii_letters = int(sum(counts[c] for c in range(128) if chr(c).isalpha()))
    if ascii_letters:
        letters["LATIN"] = letters.get("LATIN", 0) + ascii_letters
    need = min(min_letters, min_share * sum(letters.values()))
    return sorted(s for s, n in letters.items() if n >= need)


def unseen_script_tokens(forms: Sequence[bytes], scripts: Iterable[str]) -> torch.Tensor:
    """Bool per token: its surface form holds a letter of a script outside ``scripts`` (partial UTF-8 sequences,
    such as single bytes, hold no letter; ASCII tokens never count)."""
    known = set(scripts) | {""}
    return _tokens(forms, lambda found: bool(found - known))


def script_tokens(forms: Sequence[bytes], scripts: Iterable[str]) -> torch.Tensor:
    """Bool per token: its surface form holds a letter of one of ``scripts``."""
    wanted = set(scripts)
    return _tokens(forms, lambda found: bool(found & wanted))


def fallback_tokens(
    forms: Sequence[bytes], training_scripts: Iterable[str] | None, script_fallback: bool | Iterable[str] = True
) -> torch.Tensor:
    """Bool per token: it gets FVT rows rather than a hypernetwork's. ``True``: tokens holding a letter of a script
    outside ``training_scripts`` (none when those are not recorded, ``None``); ``False``: none; script names
    (``["HANGUL"]``, when you know your text's script): the tokens holding their letters only, whatever the
    training text held (the other scripts' tokens keep the network's rows)."""
    if script_fallback is True:
        if training_scripts is None:
            return torch.zeros(len(forms), dtype=torch.bool)
        return unseen_script_tokens(forms, training_scripts)
    if isinstance(script_fallback, str):
        raise TypeError(
            f"script_fallback takes True, False or a list of script names such as ['HANGUL'], not {script_fallback!r}"
        )
    names = [str(name).upper() for name in script_fallback or ()]
    out = script_tokens(forms, names)
    if names and not out.any():
        log.warning(
            "no token holds a letter of %s; script names are the first word of Unicode letter names (HANGUL, "
            "ARABIC, HIRAGANA, ...)",
            ", ".join(names),
        )
    return out


def _tokens(forms: Sequence[bytes], test: Callable[[set[str]], bool]) -> torch.Tensor:
    out = torch.zeros(len(forms), dtype=torch.bool)
    for i, form in enumerate(forms):
        if not form.isascii():
            out[i] = test({script_of(ord(c)) for c in form.decode("utf-8", errors="ignore") if ord(c) > 127})
    return out
