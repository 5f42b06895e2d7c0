"""Batches for hypernetwork training (SPEC §3.3, §4.3), built in data loader workers.

Step k's batch is a pure function of (seed, k): its texts come from
:func:`~zett.distill.data.step_indices`, the sampler's window holds the tables
of the startup texts and of the texts of steps k-window+1..k (replayed after a
resume), and the draw uses a generator seeded with (seed, k). A resumed run
therefore sees exactly the tokenizers and texts the uninterrupted one would.

Each text is cut once to the span covered by its first ``max_length`` base
tokens; the sampled tokenizer tokenizes that same span, so the teacher's side
of a text never changes (and is cached) and the two sides align to the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hypernet import Decomposer, exact_matches
from hypernet.model import network_rows
from tokenizers_zoo import (
    Aligner,
    TokenizerSampler,
    TokenKind,
    encode_text,
    is_byte_tokenizer,
    start_token_id,
    vocabulary,
)

from ..distill.data import pad_rows, step_indices
from ..losses import ALIGNED, boundary_mask


def text_spans(base_tokenizer: Any, texts: Sequence[str], max_length: int) -> list[str]:
    """Each text cut after its ``max_length - 1``-th base token (the start token takes one place)."""
    # tokens average far fewer than 16 characters, so the first 16 x max_length characters hold max_length
    # tokens: tokenizing only that head is enough (and much faster on long documents)
    head = [t[: max(64, 16 * max_length)] for t in texts]
    enc = base_tokenizer(head, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for text, offsets in zip(head, enc["offset_mapping"]):
        keep = offsets[: max_length - 1]
        out.append(text[: keep[-1][1]] if keep else text)
    return [t for t in out if t]


class HypernetBatches(Dataset):
    """Item k = the batch of step ``first + k`` (this process's share)."""

    def __init__(
        self,
        texts: Sequence[str],
        startup: Sequence[str],
        base_tokenizer: Any,
        config: Any,
        *,
        real: dict[str, Any],
        first: int,
        last: int,
        rank: int = 0,
        world: int = 1,
        base_rows: int | None = None,
    ):
        self.texts, self.startup, self.base, self.cfg = texts, startup, base_tokenizer, config
        self.base_rows = base_rows  # the base's embedding rows (a tokenizer may have more ids than rows)
        self.real, self.first, self.last, self.rank, self.world = real, first, last, rank, world
        self._sampler: TokenizerSampler | None = None
        self._fed = -1  # last step whose texts are in the window
        self._decomposer: Decomposer | None = None
        self._aligners: dict[int, Aligner] = {}
        # chunk alignment only for the losses that read it (unless lazy_teacher is off)
        self.align = not config.lazy_teacher or any(name in ALIGNED for name in config.losses)

    def __len__(self) -> int:
        return self.last - self.first

    # -- the sampler's window, replayed --------------------------------------------------------------------

    def sampler_at(self, step: int) -> TokenizerSampler:
        cfg = self.cfg
        if self._sampler is None or self._fed >= step or self._fed < step - cfg.window:
            self._sampler = TokenizerSampler(
                self.base,
                self.startup,
                vocab_size=tuple(cfg.vocab_size),
                window=cfg.window,
                stride=cfg.stride,
                real=self.real,
                p_real=cfg.p_real if self.real else 0.0,
                p_base=cfg.p_base,
                p_byte=cfg.p_byte,
            )
            self._fed = -1
        for s in range(max(self._fed + 1, step - cfg.window + 1, 0), step + 1):
            self._sampler.observe([self.texts[i] for i in step_indices(len(self.texts), cfg.batch_size, s, cfg.seed)])
        self._fed = step
        return self._sampler

    # -- one step ------------------------------------------------------------------------------------------

    def __getitem__(self, k: int) -> dict[str, Any]:
        step = self.first + k
        cfg = self.cfg
        draw = self.sampler_at(step).sample(np.random.default_rng([cfg.seed, step, 1]))
        idx = step_indices(len(self.texts), cfg.batch_size, step, cfg.seed)[self.rank :: self.world]
        batch = self.collate(draw.tokenizer, idx, step)
        batch["source"] = draw.source
        return batch

    def collate(self, tok: Any, indices: list[int], step: int) -> dict[str, Any]:
        if self._decomposer is None:
            self._decomposer = Decomposer(self.base)
        s_rows = [[start_token_id(tok)] + encode_text(tok, self.texts[i]) for i in indices]
        t_rows = [[start_token_id(self.base)] + encode_text(self.base, self.texts[i]) for i in indices]
        s_len, t_len = max(map(len, s_rows)), max(map(len, t_rows))
        if self.align:
            aligned = self._aligner(tok).batch(list(zip(t_rows, s_rows)), t_len, s_len)
        else:  # no loss reads chunks: none
            aligned = {
                "teacher_chunk_id": torch.full((len(indices), t_len), -1, dtype=torch.long),
                "student_chunk_id": torch.full((len(indices), s_len), -1, dtype=torch.long),
                "num_chunks": torch.zeros(len(indices), dtype=torch.long),
            }
        local, offset = self.local_vocabulary(tok, s_rows, step)
        remap = np.full(len(tok), -1, dtype=np.int64)
        remap[local] = np.arange(len(local))
        batch: dict[str, Any] = {"text_index": torch.tensor(indices, dtype=torch.long)}
        batch["student_input_ids"], batch["student_attention_mask"] = pad_rows([remap[r].tolist() for r in s_rows], 0)
        batch["teacher_input_ids"], batch["teacher_attention_mask"] = pad_rows(t_rows, start_token_id(self.base))
        batch.update(
            teacher_chunk_id=aligned["teacher_chunk_id"],
            student_chunk_id=aligned["student_chunk_id"],
            num_chunks=aligned["num_chunks"],
        )
        batch.update(self.rows(tok, local))
        batch["logit_offset"] = torch.from_numpy(offset)
        batch["student_tokens"] = sum(map(len, s_rows))
        return batch

    def _aligner(self, tok: Any) -> Aligner:
        key = id(tok)
        if key not in self._aligners:  # real/byte tokenizers recur; sampled ones are new every step
            if len(self._aligners) > 16:
                self._aligners.clear()
            self._aligners[key] = Aligner(self.base, tok)
        return self._aligners[key]

    def local_vocabulary(self, tok: Any, rows: list[list[int]], step: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids whose rows this step predicts, and a logit offset per id.

        The batch's tokens and the specials, plus ``negatives`` ids drawn uniformly from the rest of the
        vocabulary; a negative's logit is offset by log(|rest| / negatives), so the softmax over this subset
        estimates the full partition function (sampled softmax) instead of overstating every probability.
        All ids (no offsets) when the vocabulary is not larger than that.
        """
        vocab = vocabulary(tok)
        ids = {i for r in rows for i in r}
        ids.update(i for i, k in enumerate(vocab.kinds) if k is TokenKind.SPECIAL)
        m = self.cfg.negatives
        if not m or len(ids) + m >= len(tok):
            return np.arange(len(tok)), np.zeros(len(tok), dtype=np.float32)
        inside = np.zeros(len(tok), dtype=bool)
        inside[list(ids)] = True
        rest = np.flatnonzero(~inside)
        rng = np.random.default_rng([self.cfg.seed, step, 2])
        negatives = rng.choice(rest, size=m, replace=False)
        local = np.concatenate([np.flatnonzero(inside), negatives])
        offset = np.concatenate([np.zeros(int(inside.sum())), np.full(m, np.log(len(rest) / m))])
        order = np.argsort(local)
        return local[order], offset[order].astype(np.float32)

    def rows(self, tok: Any, local: np.ndarray) -> dict[str, Any]:
        """Per local row: its decomposition, the base row it copies (-1 = predicted; specials always copy when
        the base has a match), its base id for the lexical loss (-1 = none) and whether it is a boundary."""
        vocab = vocabulary(tok)
        forms = [vocab.forms[i] for i in local]
        pieces = self._decomposer(forms)
        normal = self.cfg.copy_overlap and (self.cfg.copy_bytes or not is_byte_tokenizer(tok))
        t_ids, b_ids = exact_matches(tok, self.base, normal=normal, rows=self.base_rows)
        copy = np.full(len(tok), -1, dtype=np.int64)
        copy[t_ids.numpy()] = b_ids.numpy()
        copy = copy[local]
        size = self._decomposer.size
        lexical = [p[0] if len(p) == 1 and p[0] < size else -1 for p in pieces]
        return {
            "pieces": pieces,
            "copy_ids": torch.from_numpy(copy),
            "predict": network_rows(vocab, local.tolist()) & torch.from_numpy(copy < 0),
            "lexical_ids": torch.tensor(lexical, dtype=torch.long),
            "boundary": boundary_mask(tok)[torch.from_numpy(local)],
        }
