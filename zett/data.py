"""Reading text arguments: a JSONL file (``{"text": ...}``), a text file, a list of strings or a dataset."""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any


def read_texts(data: Any, *, max_docs: int | None = None, field: str = "text") -> list[str]:
    """Texts from a JSONL/text file path or glob pattern (files read in sorted order, e.g.
    ``corpus/*.train.jsonl`` for a mix of languages), a list of strings or a ``datasets`` dataset."""
    if isinstance(data, (str, Path)):
        path = Path(data).expanduser()
        files = [path] if path.exists() else sorted(path.parent.glob(path.name)) if glob.has_magic(str(path)) else []
        if not files:
            raise FileNotFoundError(f"text file {path} does not exist (or the pattern matches nothing); check "
                                    "the path")
        texts = [t for f in files for t in _read_file(f, field)]
    elif hasattr(data, "column_names"):
        if field not in data.column_names:
            raise ValueError(f"dataset has no {field!r} column (columns: {data.column_names})")
        texts = list(data[field] if max_docs is None else data.select(range(min(max_docs, len(data))))[field])
    elif isinstance(data, (list, tuple)):
        if not all(isinstance(t, str) for t in data):
            raise TypeError("a list of texts must hold only strings")
        texts = list(data)
    else:
        raise TypeError(f"cannot read texts from a {type(data).__name__}; pass a .jsonl/.txt path, "
                        "a list of strings or a datasets.Dataset")
    texts = [t for t in texts if t][:max_docs]
    if not texts:
        raise ValueError(f"no non-empty texts in {data if isinstance(data, (str, Path)) else type(data).__name__}")
    return texts


def _read_file(path: Path, field: str) -> list[str]:
    if path.suffix == ".jsonl":
        texts = []
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    texts.append(json.loads(line)[field])
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ValueError(f"{path}:{n} is not a JSON object with a {field!r} string ({exc})") from exc
        return texts
    return [p for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
