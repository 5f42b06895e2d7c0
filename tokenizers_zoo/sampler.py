"""``TokenizerSampler``: a fresh tokenizer for every training batch (SPEC §3.3).

Substring counts of recent text are kept in a window (a FIFO of per-batch
tables); each draw turns the window into a Unigram tokenizer whose pieces are
the best substrings under a noisy score, so some draws are near-optimal for
the text and others near-random. With some probability a draw is instead the
base tokenizer, one of the given real tokenizers, or the byte tokenizer.

Counting and the sampled tokenizers share one pre-tokenizer object (the regex
split, then byte-level mapping), so no piece is counted that the tokenizer
could never produce.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

from .byte_map import BYTE_TO_CHAR
from .byte_tokenizer import byte_tokenizer, wrap_with_specials
from .surface import normalisation

# GPT-2's split (contractions, letters, numbers, other symbols, whitespace runs)
SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
MAX_PIECE_BYTES = 15
WHITESPACE = (" ", "\n", "\t")
_WS_CHARS = {BYTE_TO_CHAR[ord(c)] for c in WHITESPACE}


def whitespace_pieces() -> list[str]:
    """The 135 whitespace-run pieces c2 + c1·i (c1, c2 ∈ {space, \\n, \\t}, i = 1..15), byte-level."""
    return [
        BYTE_TO_CHAR[ord(c2)] + BYTE_TO_CHAR[ord(c1)] * i
        for c2 in WHITESPACE
        for c1 in WHITESPACE
        for i in range(1, MAX_PIECE_BYTES + 1)
    ]


@dataclass
class Draw:
    """One sampled tokenizer and where it came from (``unigram``, ``base``, ``real:NAME`` or ``byte``)."""

    tokenizer: Any
    source: str
    vocab_size: int
    noise_std: float | None = None


class TokenizerSampler:
    """Draw tokenizers from substring counts of recent text (SPEC §3.3).

    ``base``: the base model's tokenizer (prefix-space rule and special tokens come from it).
    ``startup_texts``: texts that fill the initial window, in ``window`` groups.
    ``vocab_size``: ``(low, high)``: each draw's size is log-uniform in the range (inclusive).
    ``real``: ``{name: tokenizer}`` mixed in with probability ``p_real`` (uniformly among them);
    ``p_base``/``p_byte``: probability of the base tokenizer / the byte tokenizer.
    ``stride``: count only substrings starting at every k-th byte of a pretoken (speed; 1 = all).
    """

    def __init__(
        self,
        base: Any,
        startup_texts: Sequence[str] = (),
        *,
        vocab_size: tuple[int, int] = (8192, 32768),
        window: int = 16,
        stride: int = 1,
        real: dict[str, Any] | None = None,
        p_real: float = 0.0,
        p_base: float = 0.0,
        p_byte: float = 0.0,
        noise_log_mean: float = float(np.log(1e-5)),
        noise_log_std: float = 4.0,
    ):
        low, high = vocab_size
        if not 512 <= low <= high:
            raise ValueError(f"vocab_size range {vocab_size} must satisfy 512 <= low <= high")
        if p_real and not real:
            raise ValueError("p_real > 0 needs real={name: tokenizer, ...}")
        if p_real + p_base + p_byte > 1:
            raise ValueError(f"p_real + p_base + p_byte = {p_real + p_base + p_byte} > 1")
        self.base, self.vocab_size, self.window_size, self.stride = base, (low, high), window, stride
        self.real, self.p_real, self.p_base, self.p_byte = dict(real or {}), p_real, p_base, p_byte
        self.noise_log_mean, self.noise_log_std = noise_log_mean, noise_log_std
        prefix = normalisation(base).prefix_space in ("always", "if_missing")
        self.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=prefix, use_regex=False),
            ]
        )
        self.window: deque[Counter] = deque()
        self.totals: Counter = Counter()
        self._byte = None
        texts = list(startup_texts)
        if texts:
            groups = np.array_split(np.arange(len(texts)), min(window, len(texts)))
            for g in groups:
                self.observe([texts[i] for i in g])

    # -- counting --------------------------------------------------------------------------------------------

    def count(self, texts: Iterable[str]) -> Counter:
        """Substring table of ``texts``: each occurrence of a 2..15-byte substring of a pretoken, weighted by
        its length in bytes. Single bytes (always in the vocabulary) and substrings with two or more whitespace
        characters (the whitespace-run pieces cover those) are left out here already."""
        words: Counter = Counter()
        for text in texts:
            words.update(piece for piece, _ in self.pre_tokenizer.pre_tokenize_str(text))
        table: Counter = Counter()
        step = self.stride
        for word, freq in words.items():
            n = len(word)  # byte-level: one character per byte
            ws = [0]
            for c in word:
                ws.append(ws[-1] + (c in _WS_CHARS))
            for i in range(0, n - 1, step):
                for j in range(i + 2, min(n, i + MAX_PIECE_BYTES) + 1):
                    if ws[j] - ws[i] >= 2:
                        break
                    table[word[i:j]] += (j - i) * freq
        return table

    def observe(self, texts: Sequence[str]) -> None:
        """Add a batch's table to the window, dropping the oldest beyond ``window`` tables."""
        table = self.count(texts)
        self.window.append(table)
        self.totals.update(table)
        if len(self.window) > self.window_size:
            old = self.window.popleft()
            self.totals.subtract(old)
            for key in [k for k in old if self.totals[k] <= 0]:
                del self.totals[key]

    # -- drawing ---------------------------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator | int, extra_texts: Sequence[str] = ()) -> Draw:
        """A tokenizer drawn with ``rng`` (a Generator or a seed). ``extra_texts`` count for this draw only
        (a validation batch: counted, the window unchanged)."""
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        u = rng.random()
        if u < self.p_base:
            return Draw(self.base, "base", len(self.base))
        if u < self.p_base + self.p_real:
            names = sorted(self.real)
            name = names[rng.integers(len(names))]
            return Draw(self.real[name], f"real:{name}", len(self.real[name]))
        if u < self.p_base + self.p_real + self.p_byte:
            if self._byte is None:
                self._byte = byte_tokenizer(specials_from=self.base)
            return Draw(self._byte, "byte", len(self._byte))
        low, high = self.vocab_size
        size = int(round(np.exp(rng.uniform(np.log(low), np.log(high)))))
        std = float(np.exp(rng.normal(self.noise_log_mean, self.noise_log_std)))
        counts = self.totals
        if extra_texts:
            counts = self.totals.copy()
            counts.update(self.count(extra_texts))
        tok = self.build(counts, size, std, rng)
        return Draw(tok, "unigram", len(tok), std)

    def build(self, counts: Counter, size: int, noise_std: float, rng: np.random.Generator) -> Any:
        """A Unigram tokenizer of ``size`` pieces + the base's specials from a substring table (SPEC §3.3 step 4)."""
        keys = sorted(counts)  # by piece, not by insertion: a rebuilt window (a resumed run) draws the same pieces
        scores = np.fromiter((counts[k] for k in keys), dtype=np.float64, count=len(keys))
        p = scores / max(scores.sum(), 1e-300)
        noisy = p + rng.normal(0.0, noise_std, size=len(p)) if noise_std > 0 else p
        ws = whitespace_pieces()
        n_sub = max(0, size - 256 - len(ws))
        n_sub = min(n_sub, len(keys))
        top = np.argpartition(-noisy, n_sub - 1)[:n_sub] if 0 < n_sub < len(keys) else np.arange(len(keys))
        order = top[np.argsort(-noisy[top], kind="stable")][:n_sub]
        chosen = noisy[order]
        positive = chosen > 0
        log_p = np.where(positive, np.log(np.where(positive, chosen, 1.0)), 0.0)
        floor = float(log_p[positive].min()) if positive.any() else -20.0
        # non-positive noisy scores rank last, used only to fill the vocabulary
        log_p = np.where(positive, log_p, floor - 1.0)
        byte_score = float(min(floor, log_p.min(initial=floor)))
        pieces = [(BYTE_TO_CHAR[b], byte_score) for b in range(256)] + [(w, 0.0) for w in ws]
        pieces += [(keys[i], float(s)) for i, s in zip(order.tolist(), log_p.tolist())]
        backend = Tokenizer(models.Unigram(pieces, unk_id=None, byte_fallback=False))
        backend.pre_tokenizer = self.pre_tokenizer
        backend.decoder = decoders.ByteLevel()
        tok = wrap_with_specials(backend, self.base)
        tok.name_or_path = f"sampled-unigram-{len(pieces)}"
        return tok
