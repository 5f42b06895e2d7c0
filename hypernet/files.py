"""Writing files and directories atomically: build in a temporary sibling, then swap it in with a rename.

:func:`atomic_dir` is how zett writes a directory (hypernetworks, exported models, the GGUF cache; checkpoints use its
two halves, :func:`fresh_tmp` and :func:`replace_dir`): a reader sees the old directory or the new one, and a failed
write leaves no temporary directory behind.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished directory ``tmp`` to ``out``; an existing ``out`` is swapped out, then deleted, so a
    reader sees the old or the new directory, never a half-written one."""
    if out.exists():
        backup = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, backup)
        os.replace(tmp, out)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(tmp, out)


def fresh_tmp(out: Path) -> Path:
    """An empty temporary directory beside ``out`` (same file system, so the final rename is atomic)."""
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


@contextmanager
def atomic_dir(out: str | os.PathLike) -> Iterator[Path]:
    """``with atomic_dir(out) as tmp:`` write the files into ``tmp``; on leaving the block without an error,
    ``tmp`` replaces ``out`` (:func:`replace_dir`); on an error ``out`` is untouched and ``tmp`` is deleted."""
    out = Path(out)
    tmp = fresh_tmp(out)
    try:
        yield tmp
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(out: Path, text: str) -> None:
    """Write ``text`` to the file ``out`` so that a reader (or a killed writer) sees the old or the new content."""
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
