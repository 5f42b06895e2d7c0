"""``load_model``: a causal LM and its tokenizer from a Hub id, a local directory or a GGUF file.

GGUF files are dequantised by ``transformers`` (about 30 s for SmolLM2-135M on
2 cores); the result is cached as safetensors under ``$ZETT_CACHE``
(default ``~/.cache/zett``) so a second load takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hypernet.files import atomic_dir
from tokenizers_zoo import load_tokenizer

log = logging.getLogger(__name__)
SOURCE_FILE = "zett_source.json"


def cache_dir() -> Path:
    return Path(os.environ.get("ZETT_CACHE", Path.home() / ".cache" / "zett"))


def load_model(
    spec: str | os.PathLike,
    *,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a Hub id, a local directory or a ``.gguf`` file.

    ``dtype``: default ``"auto"`` (the checkpoint's). ``kwargs`` go to ``AutoModelForCausalLM.from_pretrained``
    for every kind of spec (``device_map``, ``revision``, ``token``, ``trust_remote_code``, ``cache_dir``, ...;
    for a GGUF file, to the load of its cached conversion); for a Hub id, its Hub arguments (``revision``,
    ``token``, ...) load the tokenizer too.
    """
    if device is not None and kwargs.get("device_map") is not None:
        raise ValueError("pass device= or device_map=, not both")
    path = Path(str(spec)).expanduser()
    if path.suffix.lower() == ".gguf" or (path.is_dir() and _single_gguf(path)):
        gguf = path if path.suffix.lower() == ".gguf" else _single_gguf(path)
        if not gguf.exists():
            raise FileNotFoundError(f"GGUF file {gguf} does not exist; check the path")
        path = _cached_gguf(gguf)
    elif not path.exists() and str(spec).startswith((".", "/", "~")):
        raise FileNotFoundError(f"model path {spec} does not exist; check the path")
    target = str(path) if path.exists() else str(spec)
    try:
        model = AutoModelForCausalLM.from_pretrained(target, dtype=dtype if dtype is not None else "auto", **kwargs)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"cannot load a causal LM from {spec!r} ({type(exc).__name__}: {str(exc)[:200]}); "
            "pass a local model directory, a .gguf file or a reachable Hub id"
        ) from exc
    if device is not None:
        model.to(device)
    model.eval()
    hub = {k: v for k, v in kwargs.items() if k in _TOKENIZER_HUB_ARGS and v is not None}
    if hub and not path.exists():  # the tokenizer of the same revision, with the same credentials
        return model, load_tokenizer(AutoTokenizer.from_pretrained(target, **hub))
    return model, load_tokenizer(target)


_TOKENIZER_HUB_ARGS = (
    "revision",
    "token",
    "cache_dir",
    "local_files_only",
    "force_download",
    "subfolder",
    "trust_remote_code",
)


def model_source(model: Any) -> str:
    """What the model was loaded from, as cards record it: the GGUF file's name (not its local path) for a cached
    conversion, else its name_or_path."""
    name = str(getattr(model, "name_or_path", "") or getattr(model.config, "_name_or_path", ""))
    record = Path(name) / SOURCE_FILE if name else None
    if record is not None and record.exists():
        return Path(json.loads(record.read_text())["source"]).name
    return name


def _single_gguf(directory: Path) -> Path | None:
    if (directory / "config.json").exists():
        return None
    found = sorted(directory.glob("*.gguf"))
    return found[0] if len(found) == 1 else None


def _cached_gguf(gguf: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    out = cache_dir() / "gguf" / f"{gguf.stem}-{key}"
    if (out / "config.json").exists() and (out / SOURCE_FILE).exists():
        return out
    log.info("dequantising %s (one time; cached in %s)", gguf.name, out)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = load_tokenizer(gguf)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(json.dumps({"source": str(gguf.resolve())}))
    return out
