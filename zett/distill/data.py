"""Batches for distillation: texts → both tokenizations → chunk alignment, in data loader workers.

The texts of step k are a pure function of (seed, k), so a resumed run sees
exactly the batches the uninterrupted one would have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tokenizers_zoo import Aligner, TokenKind, encode_text, start_token_id, vocabulary

from .chat import conversation_ids

NO_OFFSET = -(10**9)  # text byte offset of a token that has no bytes in the text (start token, specials)


def step_indices(n_texts: int, batch_size: int, step: int, seed: int, stream: int = 0) -> list[int]:
    """Text indices of optimizer step ``step``: epochs of seeded permutations, consumed in order. ``stream`` > 0
    draws an independent order (another pool of texts under the same seed)."""
    start = step * batch_size
    out: list[int] = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n_texts)
        perm = np.random.default_rng([seed, epoch, stream] if stream else [seed, epoch]).permutation(n_texts)
        out.extend(perm[offset : offset + batch_size - len(out)].tolist())
    return out


class StepBatches(Dataset):
    """Item k = the collated batch of this process's share of step ``first + k``."""

    def __init__(
        self,
        texts: Sequence[str],
        student_tok: Any,
        teacher_tok: Any,
        *,
        batch_size: int,
        max_length: int,
        teacher_max_length: int,
        seed: int,
        first: int,
        last: int,
        rank: int = 0,
        world: int = 1,
        byte_targets: int = 0,
        align: bool = True,
        chats: Sequence[tuple[str, str, bool]] = (),
        chats_per_step: int = 0,
    ):
        """``byte_targets`` > 0 adds what BLD needs: ``student_bytes`` [B, Ls, byte_targets] (each token's bytes,
        -1 padded) and ``student_byte_offset`` / ``teacher_byte_offset`` (text byte offset of each token's first
        byte, NO_OFFSET where it has none). ``align=False``: no chunk alignment (chunk ids -1, no chunks), for
        losses that do not read it. ``chats``: (prompt, answer, complete) conversations, ``chats_per_step`` of
        them in every step's batch (in their own seeded order), each side tokenizing them through its chat
        template; their ``text_index`` is ``len(texts) + j``."""
        if chats_per_step and (not chats or byte_targets):
            raise ValueError("chats_per_step needs conversations, and does not work with byte targets (BLD)")
        self.texts, self.student_tok, self.teacher_tok = texts, student_tok, teacher_tok
        self.chats, self.chats_per_step = chats, chats_per_step
        self.byte_targets, self.align = byte_targets, align
        self.batch_size, self.max_length, self.teacher_max_length = batch_size, max_length, teacher_max_length
        self.seed, self.first, self.last, self.rank, self.world = seed, first, last, rank, world
        self._aligner: Aligner | None = None

    def __len__(self) -> int:
        return self.last - self.first

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        step = self.first + k
        idx = step_indices(len(self.texts), self.batch_size - self.chats_per_step, step, self.seed)
        if self.chats_per_step:
            chats = step_indices(len(self.chats), self.chats_per_step, step, self.seed, stream=1)
            idx += [len(self.texts) + j for j in chats]
        share = idx[self.rank :: self.world]
        return self.collate(share)

    def collate(self, indices: list[int]) -> dict[str, torch.Tensor]:
        if self._aligner is None and self.align:  # built lazily: once per worker process
            self._aligner = Aligner(self.teacher_tok, self.student_tok)
        s_start, t_start = start_token_id(self.student_tok), start_token_id(self.teacher_tok)
        s_rows, t_rows = [], []
        for i in indices:
            if i < len(self.texts):
                s_ids = [s_start] + encode_text(self.student_tok, self.texts[i])
                t_ids = [t_start] + encode_text(self.teacher_tok, self.texts[i])
            else:
                chat = self.chats[i - len(self.texts)]
                s_ids, t_ids = conversation_ids(self.student_tok, *chat), conversation_ids(self.teacher_tok, *chat)
            s_rows.append(s_ids[: self.max_length])
            t_rows.append(t_ids[: self.teacher_max_length])
        if self.align:
            aligned = self._aligner.batch(list(zip(t_rows, s_rows)), self.teacher_max_length, self.max_length)
        else:
            aligned = {
                "teacher_chunk_id": torch.full((len(indices), self.teacher_max_length), -1, dtype=torch.long),
                "student_chunk_id": torch.full((len(indices), self.max_length), -1, dtype=torch.long),
                "num_chunks": torch.zeros(len(indices), dtype=torch.long),
            }
        batch = {"text_index": torch.tensor(indices, dtype=torch.long)}
        for name, rows, pad in (("student", s_rows, s_start), ("teacher", t_rows, t_start)):
            batch[f"{name}_input_ids"], batch[f"{name}_attention_mask"] = pad_rows(rows, pad)
        batch["teacher_chunk_id"] = aligned["teacher_chunk_id"][:, : batch["teacher_input_ids"].shape[1]]
        batch["student_chunk_id"] = aligned["student_chunk_id"][:, : batch["student_input_ids"].shape[1]]
        batch["num_chunks"] = aligned["num_chunks"]
        if self.byte_targets:
            texts = [self.texts[i].encode("utf-8") for i in indices]
            width = batch["student_input_ids"].shape[1]
            batch["student_bytes"] = token_bytes(self.student_tok, s_rows, width, self.byte_targets)
            batch["student_byte_offset"] = byte_offsets(self.student_tok, s_rows, texts, width)
            batch["teacher_byte_offset"] = byte_offsets(
                self.teacher_tok, t_rows, texts, batch["teacher_input_ids"].shape[1]
            )
        return batch


def _text_forms(tokenizer: Any) -> list[bytes]:
    """Surface bytes per id, empty for specials (they carry no text bytes); cached per tokenizer."""
    cached = _FORMS.get(id(tokenizer))
    if cached is None or cached[0] is not tokenizer:
        vocab = vocabulary(tokenizer)
        forms = [b"" if k in (TokenKind.SPECIAL, TokenKind.UNUSED) else f for f, k in zip(vocab.forms, vocab.kinds)]
        cached = _FORMS[id(tokenizer)] = (tokenizer, forms)
    return cached[1]


_FORMS: dict[int, tuple[Any, list[bytes]]] = {}


def token_bytes(tokenizer: Any, rows: list[list[int]], width: int, max_bytes: int) -> torch.Tensor:
    """[B, width, max_bytes]: the bytes of every token (-1 padded; longer tokens cut)."""
    forms = _text_forms(tokenizer)
    out = torch.full((len(rows), width, max_bytes), -1, dtype=torch.int16)
    for r, row in enumerate(rows):
        for t, i in enumerate(row[1:], start=1):  # position 0 is the start token
            form = forms[i][:max_bytes]
            if form:
                out[r, t, : len(form)] = torch.tensor(list(form), dtype=torch.int16)
    return out


def byte_offsets(tokenizer: Any, rows: list[list[int]], texts: list[bytes], width: int) -> torch.Tensor:
    """[B, width]: offset in the text's UTF-8 bytes of each token's first byte. A tokenizer that adds a prefix
    space gets offset -1 for it; a row whose joined tokens are not the text (lossy normalisation) gets
    NO_OFFSET everywhere, so no byte of it is compared."""
    forms = _text_forms(tokenizer)
    out = torch.full((len(rows), width), NO_OFFSET, dtype=torch.long)
    for r, (row, text) in enumerate(zip(rows, texts)):
        lengths = [len(forms[i]) for i in row[1:]]
        stream = b"".join(forms[i] for i in row[1:])
        if stream == text[: len(stream)]:
            shift = 0
        elif stream[:1] == b" " and stream[1:] == text[: len(stream) - 1]:
            shift = 1
        else:
            continue
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) - shift if lengths else []
        for t, (start, n) in enumerate(zip(starts, lengths), start=1):
            if n:
                out[r, t] = int(start)
    return out


def pad_rows(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` [B, max len] and ``attention_mask`` for a list of id rows."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[r, : len(row)] = 1
    return ids, mask


def loader(dataset: StepBatches, num_workers: int) -> DataLoader:
    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers, persistent_workers=False)


def split_micro(batch: dict[str, torch.Tensor], parts: int) -> list[dict[str, torch.Tensor]]:
    """Split a collated batch into ``parts`` micro-batches along the batch dimension."""
    size = batch["student_input_ids"].shape[0]
    bounds = np.linspace(0, size, parts + 1).astype(int)
    return [{k: v[a:b] for k, v in batch.items()} for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def default_teacher_length(student_tok: Any, teacher_tok: Any, texts: Sequence[str], max_length: int) -> int:
    """Teacher length that covers the bytes of ``max_length`` student tokens (measured on a few texts)."""
    sample = [t for t in texts[:32] if t] or ["x"]
    s = sum(len(encode_text(student_tok, t)) for t in sample)
    t = sum(len(encode_text(teacher_tok, t)) for t in sample)
    return max(8, int(max_length * t / max(s, 1) * 1.1) + 2)
