"""Chunk alignment of two tokenizations of the same text (SPEC §3.4).

A **chunk** is a minimal byte span [a, b) at whose ends both tokenizations
have a token boundary. Boundaries are found with sorted cumulative byte
offsets (an O(n log n) numpy intersection, equivalent to the two-pointer
scan), so alignment runs far above a million tokens per second.

Rules that decide correctness:

* special tokens are paired **by role** in order of appearance: a role both
  sides have forms one chunk; a special on one side only is masked (-1);
* leading spaces of each text run are normalised (one side may add a prefix
  space the other lacks): the side with more leading spaces treats the extra
  ones as belonging to its first chunk;
* the bytes of a chunk must be identical on both sides; mismatching chunks
  (lossy normalisation) are dropped and counted in ``dropped``;
* each side is truncated independently to its max length; a chunk cut by
  truncation on either side, or holding an unscored token (position 0, which
  no logit predicts), is dropped.

Output per sequence pair: token → chunk id on each side (-1 = in no chunk),
ids ascending left to right and contiguous from 0, and the chunk count.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .specials import CHAT_ROLES, ROLES
from .surface import TokenKind, normalisation, vocabulary

log = logging.getLogger(__name__)


@dataclass
class PairAlignment:
    teacher_chunks: np.ndarray  # int64 [n_teacher], -1 = none
    student_chunks: np.ndarray  # int64 [n_student]
    num_chunks: int
    dropped: int  # chunks dropped because their bytes differ


class _Side:
    """Per-tokenizer tables: byte length of every id, and the role of every special id."""

    def __init__(self, tokenizer: Any):
        vocab = vocabulary(tokenizer)
        self.forms = vocab.forms
        self.lengths = np.array([len(f) for f in vocab.forms], dtype=np.int64)
        self.lead = [len(f) - len(f.lstrip(b" ")) for f in vocab.forms]  # leading spaces per token
        rep = normalisation(tokenizer)
        self.exact = rep.lossless and rep.unicode_form is None  # joined forms == the text, always
        self.special = np.array([k in (TokenKind.SPECIAL, TokenKind.UNUSED) for k in vocab.kinds], dtype=bool)
        self.role: dict[int, str] = {}
        for role in ROLES:
            idx = getattr(tokenizer, f"{role}_token_id", None)
            if idx is not None:
                self.role.setdefault(int(idx), role)
        names = {f: i for i, f in enumerate(vocab.forms) if self.special[i]}
        for role, markers in CHAT_ROLES.items():
            for marker in markers:
                if marker.encode() in names:
                    self.role[names[marker.encode()]] = role
        for i in np.flatnonzero(self.special):  # unnamed specials pair only with the same text
            self.role.setdefault(int(i), "text:" + vocab.forms[i].decode("utf-8", "replace"))

    def leading_spaces(self, ids: np.ndarray) -> int:
        total = 0
        for i in ids:
            total += self.lead[i]
            if self.lead[i] < self.lengths[i]:
                break
        return total

    def segments(self, ids: np.ndarray) -> list[tuple[str, int, int]]:
        """Split into ("text", start, end) runs and ("special", i, i+1) tokens."""
        flags = self.special[ids]
        out = []
        start = 0
        for i in np.flatnonzero(flags):
            if i > start:
                out.append(("text", start, int(i)))
            out.append(("special", int(i), int(i) + 1))
            start = int(i) + 1
        if start < len(ids):
            out.append(("text", start, len(ids)))
        return out


class Aligner:
    """Aligns tokenizations by a teacher and a student tokenizer; build once, call per pair."""

    def __init__(self, teacher_tokenizer: Any, student_tokenizer: Any, *, check: bool | None = None):
        """``check``: compare the bytes of every text run on both sides (dropping chunks that differ). Default:
        only where a tokenizer is lossy or normalises Unicode; for two exact tokenizers the bytes agree by
        construction (both reproduce the same text)."""
        self.teacher = _Side(teacher_tokenizer)
        self.student = _Side(student_tokenizer)
        self.check = check if check is not None else not (self.teacher.exact and self.student.exact)

    def __call__(
        self,
        teacher_ids: Sequence[int],
        student_ids: Sequence[int],
        *,
        max_teacher: int | None = None,
        max_student: int | None = None,
    ) -> PairAlignment:
        t_ids = np.asarray(teacher_ids, dtype=np.int64)
        s_ids = np.asarray(student_ids, dtype=np.int64)
        t_chunk = np.full(len(t_ids), -1, dtype=np.int64)
        s_chunk = np.full(len(s_ids), -1, dtype=np.int64)
        t_segs, s_segs = self.teacher.segments(t_ids), self.student.segments(s_ids)
        next_chunk, dropped = 0, 0
        ti = si = 0
        while ti < len(t_segs) and si < len(s_segs):
            (tk, ta, tb), (sk, sa, sb) = t_segs[ti], s_segs[si]
            if tk == "special" and sk == "special":
                t_role, s_role = self.teacher.role[int(t_ids[ta])], self.student.role[int(s_ids[sa])]
                if t_role == s_role:
                    t_chunk[ta] = s_chunk[sa] = next_chunk
                    next_chunk += 1
                    ti, si = ti + 1, si + 1
                elif _later_role(t_segs, ti, t_ids, self.teacher, s_role):
                    ti += 1  # the teacher has a special the student lacks here: masked
                else:
                    si += 1
            elif tk == "special":
                ti += 1
            elif sk == "special":
                si += 1
            else:
                n, d = self._text(t_ids[ta:tb], s_ids[sa:sb], t_chunk[ta:tb], s_chunk[sa:sb], next_chunk)
                next_chunk, dropped = n, dropped + d
                ti, si = ti + 1, si + 1
        self._invalidate(t_chunk, s_chunk, max_teacher, max_student)
        num = _renumber(t_chunk, s_chunk)
        if dropped:
            log.debug("dropped %d chunks whose bytes differ between the tokenizations", dropped)
        return PairAlignment(t_chunk, s_chunk, num, dropped)

    def _text(self, t_ids, s_ids, t_out, s_out, first: int) -> tuple[int, int]:
        """Chunk one text run in place; returns (next free chunk id, chunks dropped)."""
        t_len, s_len = self.teacher.lengths[t_ids], self.student.lengths[s_ids]
        t_lead, s_lead = self.teacher.leading_spaces(t_ids), self.student.leading_spaces(s_ids)
        shift = min(t_lead, s_lead)
        t_end = np.cumsum(t_len) - (t_lead - shift)  # extra leading spaces sit before offset 0
        s_end = np.cumsum(s_len) - (s_lead - shift)
        common = np.intersect1d(t_end[t_end > 0], s_end[s_end > 0], assume_unique=False)
        if len(common) == 0:
            return first, 0
        t_c = np.searchsorted(common, t_end, side="left")
        s_c = np.searchsorted(common, s_end, side="left")
        t_c[t_c >= len(common)] = -1 - first  # after the last common boundary: incomplete
        s_c[s_c >= len(common)] = -1 - first
        t_out[:] = t_c + first
        s_out[:] = s_c + first
        dropped = 0
        if self.check:
            t_bytes = b"".join(self.teacher.forms[i] for i in t_ids)[t_lead - shift :]
            s_bytes = b"".join(self.student.forms[i] for i in s_ids)[s_lead - shift :]
            if t_bytes != s_bytes:
                dropped = self._drop_mismatches(t_bytes, s_bytes, common, t_out, s_out, first)
        return first + len(common), dropped

    @staticmethod
    def _drop_mismatches(t_bytes, s_bytes, common, t_out, s_out, first) -> int:
        starts = np.concatenate([[0], common[:-1]])
        bad = [k for k, (a, b) in enumerate(zip(starts, common)) if t_bytes[a:b] != s_bytes[a:b]]
        for k in bad:
            t_out[t_out == first + k] = -1
            s_out[s_out == first + k] = -1
        return len(bad)

    @staticmethod
    def _invalidate(t_chunk, s_chunk, max_t, max_s) -> None:
        """Drop chunks cut by truncation or holding the unscored position 0."""
        bad = set()
        for chunks, limit in ((t_chunk, max_t), (s_chunk, max_s)):
            if len(chunks) and chunks[0] >= 0:
                bad.add(int(chunks[0]))
            if limit is not None and len(chunks) > limit:
                cut = chunks[limit:]
                cut = cut[cut >= 0]
                if len(cut):
                    bad.update(range(int(cut.min()), int(max(t_chunk.max(initial=-1), s_chunk.max(initial=-1))) + 1))
                chunks[limit:] = -1
        if bad:
            bad_arr = np.fromiter(bad, dtype=np.int64)
            t_chunk[np.isin(t_chunk, bad_arr)] = -1
            s_chunk[np.isin(s_chunk, bad_arr)] = -1
        # a chunk must exist on both sides
        both = np.intersect1d(t_chunk[t_chunk >= 0], s_chunk[s_chunk >= 0])
        t_chunk[~np.isin(t_chunk, both)] = -1
        s_chunk[~np.isin(s_chunk, both)] = -1

    def batch(
        self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], max_teacher: int, max_student: int
    ) -> dict[str, torch.Tensor]:
        """Align and pad a batch: ``teacher_chunk_id`` [B, Lt], ``student_chunk_id`` [B, Ls], ``num_chunks`` [B]."""
        out_t = torch.full((len(pairs), max_teacher), -1, dtype=torch.long)
        out_s = torch.full((len(pairs), max_student), -1, dtype=torch.long)
        nums = torch.zeros(len(pairs), dtype=torch.long)
        dropped = 0
        for row, (t_ids, s_ids) in enumerate(pairs):
            al = self(t_ids, s_ids, max_teacher=max_teacher, max_student=max_student)
            out_t[row, : min(len(t_ids), max_teacher)] = torch.from_numpy(al.teacher_chunks[:max_teacher])
            out_s[row, : min(len(s_ids), max_student)] = torch.from_numpy(al.student_chunks[:max_student])
            nums[row] = al.num_chunks
            dropped += al.dropped
        if dropped:
            log.warning("alignment dropped %d chunks whose bytes differ between the two tokenizations", dropped)
        return {
            "teacher_chunk_id": out_t,
            "student_chunk_id": out_s,
            "num_chunks": nums,
            "dropped_chunks": torch.tensor(dropped),
        }


def _later_role(segs, start, ids, side: _Side, role: str) -> bool:
    """Does ``role`` appear among this side's specials from segment ``start`` on?"""
    return any(k == "special" and side.role[int(ids[a])] == role for k, a, _ in segs[start:])


def _renumber(t_chunk: np.ndarray, s_chunk: np.ndarray) -> int:
    """Make the surviving chunk ids contiguous from 0 (they stay ascending)."""
    kept = np.unique(t_chunk[t_chunk >= 0])
    if len(kept) == 0:
        return 0
    lookup = np.full(int(kept.max()) + 1, -1, dtype=np.int64)
    lookup[kept] = np.arange(len(kept))
    for chunks in (t_chunk, s_chunk):
        mask = chunks >= 0
        chunks[mask] = lookup[chunks[mask]]
    return len(kept)


def align(
    teacher_ids: Sequence[int],
    student_ids: Sequence[int],
    teacher_tokenizer: Any,
    student_tokenizer: Any,
    **kwargs: Any,
) -> PairAlignment:
    """One-off alignment of a pair (build an :class:`Aligner` to align many)."""
    return Aligner(teacher_tokenizer, student_tokenizer)(teacher_ids, student_ids, **kwargs)
