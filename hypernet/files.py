"""Writing files and directories atomically: build in a temporary sibling, then swap it in with a rename."""

from __future__ import annotations

import os
import shutil
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


def write_text(out: Path, text: str) -> None:
    """Write ``text`` to the file ``out`` so that a reader (or a killed writer) sees the old or the new content."""
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
