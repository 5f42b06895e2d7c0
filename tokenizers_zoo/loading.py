"""``load_tokenizer``: one entry point for every way a tokenizer is written down.

Accepted specs, tried in this order:

* a tokenizer object (returned as is; a bare ``tokenizers.Tokenizer`` is wrapped);
* ``"byte"``: the byte tokenizer (specials from ``base`` when given);
* an existing path: a directory (``AutoTokenizer``; a directory holding one
  ``.gguf`` loads that), a ``tokenizer.json``, a SentencePiece ``.model``, a
  tiktoken BPE file (``.tiktoken`` or base64 ranks), a ``.gguf`` file;
* a name shipped with the package (:data:`SHIPPED`);
* a Hugging Face Hub id.
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, PreTrainedTokenizerFast

from .byte_tokenizer import byte_tokenizer

log = logging.getLogger(__name__)
DATA = Path(__file__).parent / "data"
SHIPPED = {"gpt2": "gpt2.tokenizer.json.gz", "mistral-v3": "mistral-v3.tokenizer.json.gz"}
_SHIPPED_CONFIG = {
    "gpt2": dict(bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"),
    "mistral-v3": dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>"),
}


def load_tokenizer(spec: Any, *, base: Any = None, pattern: str | None = None) -> PreTrainedTokenizerFast:
    """Load a tokenizer from any spec listed in this module's docstring.

    ``base`` gives the byte tokenizer its special tokens; ``pattern`` is the
    pre-tokenization regex of a bare tiktoken file (default: Llama-3's).
    """
    if not isinstance(spec, (str, Path)):
        return _from_object(spec)
    text = str(spec)
    if text == "byte":
        return byte_tokenizer(specials_from=base)
    path = Path(text).expanduser()
    if path.exists():
        tok = _from_path(path, pattern)
    elif text in SHIPPED:
        tok = _shipped(text)
    elif text.startswith((".", "/", "~")) or text.endswith((".json", ".model", ".gguf", ".tiktoken")):
        raise FileNotFoundError(f"tokenizer path {text!r} does not exist; check the path")
    else:
        tok = _from_hub(text)
    if not hasattr(tok, "backend_tokenizer"):
        raise TypeError(f"{text!r} loaded as a slow tokenizer ({type(tok).__name__}); zett needs a fast one")
    return tok


def _from_object(obj: Any) -> PreTrainedTokenizerFast:
    if hasattr(obj, "backend_tokenizer"):
        return obj
    if hasattr(obj, "encode_batch") and hasattr(obj, "to_str"):
        return PreTrainedTokenizerFast(tokenizer_object=obj)
    raise TypeError(
        f"cannot use a {type(obj).__name__} as a tokenizer; pass a transformers fast tokenizer, "
        "a tokenizers.Tokenizer, a path, a Hub id or 'byte'"
    )


def _from_path(path: Path, pattern: str | None) -> PreTrainedTokenizerFast:
    """Pick the reader for ``path``, run it, and turn whatever the reader raises into one line naming the file."""
    kind, read = _reader(path, pattern)
    try:
        return read()
    except Exception as exc:  # tokenizers, json, protobuf and transformers each raise their own kinds
        raise ValueError(_unreadable(path, kind, exc)) from exc


def _reader(path: Path, pattern: str | None) -> tuple[str, Callable[[], PreTrainedTokenizerFast]]:
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        has_hf = any((path / n).exists() for n in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model"))
        if not has_hf and len(ggufs) == 1:
            return "GGUF file", lambda: _from_gguf(ggufs[0])
        if not has_hf:
            raise ValueError(f"{path} holds no tokenizer (no tokenizer.json, tokenizer.model or single .gguf)")
        return "tokenizer directory", lambda: AutoTokenizer.from_pretrained(str(path))
    suffix = path.suffix.lower()
    if suffix == ".gguf":
        return "GGUF file", lambda: _from_gguf(path)
    if suffix == ".json":
        if (path.parent / "tokenizer_config.json").exists() and path.name == "tokenizer.json":
            return "tokenizer directory", lambda: AutoTokenizer.from_pretrained(str(path.parent))
        return "tokenizer.json", lambda: PreTrainedTokenizerFast(tokenizer_file=str(path))
    if suffix == ".model":
        return "SentencePiece model", lambda: _from_sentencepiece(path)
    if suffix == ".tiktoken" or _looks_like_tiktoken(path):
        return "tiktoken file", lambda: _from_tiktoken(path, pattern)
    raise ValueError(
        f"don't know how to read {path.name!r} as a tokenizer; give a directory, tokenizer.json, "
        "SentencePiece .model, tiktoken file or .gguf"
    )


_JSON_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")


def _unreadable(path: Path, kind: str, exc: Exception) -> str:
    """One line for a tokenizer that failed to load: the broken JSON file when one is (truncated files are the
    usual cause), else the reader's own first line."""
    folder = path if path.is_dir() else path.parent
    candidates = [folder / n for n in _JSON_FILES] if kind == "tokenizer directory" else [path]
    for candidate in candidates:
        if candidate.suffix != ".json" or not candidate.is_file():
            continue
        try:
            json.loads(candidate.read_bytes().decode("utf-8"))
        except ValueError as bad:  # JSONDecodeError and UnicodeDecodeError
            return (
                f"{candidate} is not valid JSON ({bad}); the file may be truncated or damaged: "
                "save or download it again"
            )
    detail = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    where = folder if kind == "tokenizer directory" else path
    return f"cannot read {where} as a {kind}: {detail}; check that it is complete and really a {kind}"


def _from_gguf(path: Path) -> PreTrainedTokenizerFast:
    log.info("reading the tokenizer inside %s", path)
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def _from_sentencepiece(path: Path) -> PreTrainedTokenizerFast:
    from sentencepiece import sentencepiece_model_pb2
    from tokenizers import pre_tokenizers

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(path.read_bytes())
    if not proto.pieces:  # an empty or foreign file can parse as an empty message
        raise ValueError("it holds no vocabulary pieces")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(path, Path(tmp) / "tokenizer.model")
        tok = AutoTokenizer.from_pretrained(tmp)
    # The generic conversion drops SentencePiece's dummy prefix; restore what the proto says.
    scheme = "first" if proto.normalizer_spec.add_dummy_prefix else "never"
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="\u2581", prepend_scheme=scheme, split=False
    )
    tok.name_or_path = str(path)
    return tok


def _looks_like_tiktoken(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            first = fh.readline().split()
    except OSError:
        return False
    return len(first) == 2 and first[1].isdigit()


def _from_tiktoken(path: Path, pattern: str | None) -> PreTrainedTokenizerFast:
    from transformers.convert_slow_tokenizer import TikTokenConverter

    kwargs = {"pattern": pattern} if pattern else {}
    backend = TikTokenConverter(vocab_file=str(path), **kwargs).converted()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend)
    tok.name_or_path = str(path)
    return tok


def _shipped(name: str) -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(gzip.decompress((DATA / SHIPPED[name]).read_bytes()).decode("utf-8"))
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, **_SHIPPED_CONFIG[name])
    tok.name_or_path = name
    return tok


def _from_hub(name: str) -> PreTrainedTokenizerFast:
    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"unknown tokenizer {name!r}: not an existing path, not a shipped name ({', '.join(SHIPPED)}), "
            f"not 'byte', and the Hub could not provide it ({type(exc).__name__}). "
            "Fix: pass a local directory, tokenizer.json, .model, tiktoken or .gguf file"
        ) from exc
