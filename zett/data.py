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
            raise FileNotFoundError(f"text file {path} does not exist (or the pattern matches nothing); check the path")
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
        raise TypeError(
            f"cannot read texts from a {type(data).__name__}; pass a .jsonl/.txt path, "
            "a list of strings or a datasets.Dataset"
        )
    texts = [t for t in texts if t][:max_docs]
    if not texts:
        raise ValueError(f"no non-empty texts in {data if isinstance(data, (str, Path)) else type(data).__name__}")
    return texts


def _read_file(path: Path, field: str) -> list[str]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(
            f"{path}:{line} is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8"
        ) from exc
    if path.suffix != ".jsonl":
        return [p for p in text.split("\n\n") if p.strip()]
    texts = []
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip():
            texts.append(_jsonl_text(line, field, f"{path}:{n}"))
    return texts


_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def _jsonl_text(line: str, field: str, where: str) -> str:
    """The ``field`` string of one JSONL line; ``where`` (file:line) names it in the error."""
    fix = f'each line must be a JSON object like {{"{field}": "..."}}'
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not JSON ({exc.msg} at column {exc.colno}); {fix}") from exc
    if not isinstance(record, dict):
        raise ValueError(f"{where} is a JSON {_JSON_TYPES.get(type(record), 'value')}, not an object; {fix}")
    if field not in record:
        raise ValueError(f"{where} has no {field!r} field (it has {', '.join(map(repr, record)) or 'none'}); {fix}")
    if not isinstance(record[field], str):
        raise ValueError(f"{where} has a non-string {field!r} ({json.dumps(record[field])[:40]}); {fix}")
    return record[field]
