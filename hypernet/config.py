"""A hypernetwork's ``config.json``: its shape and the base model it belongs to, as one flat JSON object.

    {"model_type": "zett_hypernet", "hidden_size": 384, ..., "base_model": "org/name", "fingerprint": "..."}

Directories written before the flat format hold ``{"zett_hypernet": {...}}``; :func:`read_config` reads both.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

CONFIG_NAME = "config.json"
MODEL_TYPE = "zett_hypernet"  # also the key of the older nested format


@dataclass
class HypernetConfig:
    """Shape of a hypernetwork and the base model it belongs to (``base_*`` fields are filled by
    :meth:`Hypernet.for_base`)."""

    hidden_size: int = 384
    num_layers: int = 3
    num_heads: int = 6
    ffn_mult: int = 2
    max_subtokens: int = 8
    base_model: str = ""
    base_vocab_size: int = 0
    embedding_dim: int = 0
    tied: bool = True
    num_fallback: int = 0
    fingerprint: str = ""
    library_version: str = field(default="")
    # scripts of the training text's letters (hypernet.scripts); tokens of other scripts get FVT rows.
    # None: not recorded (networks saved before it was), every token gets the network's rows
    training_scripts: list[str] | None = None

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")

    @classmethod
    def from_dict(cls, data: dict) -> HypernetConfig:
        """The config from ``data``'s known keys (others, such as ``model_type``, are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict:
        """The flat ``config.json`` object."""
        return {"model_type": MODEL_TYPE, **asdict(self)}


def read_config(file: str | os.PathLike) -> HypernetConfig:
    """The :class:`HypernetConfig` in ``file`` (flat, or the older ``{"zett_hypernet": {...}}``); a missing,
    unreadable or foreign file is a one-line ValueError naming it."""
    file = Path(file)
    fix = "pass a directory written by Hypernet.save_pretrained, or download/export the hypernetwork again"
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"cannot read hypernetwork config {file} ({type(exc).__name__}: {_first_line(exc)}); {fix}"
        ) from exc
    if isinstance(raw, dict) and isinstance(raw.get(MODEL_TYPE), dict):
        data = raw[MODEL_TYPE]
    elif isinstance(raw, dict) and raw.get("model_type") == MODEL_TYPE:
        data = raw
    else:
        kind = f"model_type {raw.get('model_type')!r}" if isinstance(raw, dict) else f"a JSON {type(raw).__name__}"
        raise ValueError(
            f"{file} is not a zett hypernetwork config ({kind}, expected model_type {MODEL_TYPE!r}); {fix}"
        )
    try:
        return HypernetConfig.from_dict(data)
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"invalid hypernetwork config {file} ({_first_line(exc)}); {fix}") from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
