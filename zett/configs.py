"""YAML in and out for the config dataclasses (``DistillConfig``, ``HypernetTrainConfig``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml


def option(default: Any, help: str) -> Any:
    """A dataclass field with its help text (shown by the CLI and in the guides)."""
    return dataclasses.field(default=default, metadata={"help": help})


# the fields both training configs share, with one help text each
TRACKERS_HELP = (
    "accelerate experiment trackers besides metrics.jsonl (tensorboard, wandb, ...; installed ones), "
    "files under run_dir/logs"
)
FUSED_ADAMW_HELP = (
    "AdamW's fused kernel (one pass over all parameters; the same update to float tolerance); false: a "
    "loop over the parameter tensors"
)
UNPADDED_HELP = (
    "run the models on each text's own tokens (no compute on padding; the same losses to float "
    "tolerance); false: one padded batch"
)
LAZY_TEACHER_HELP = (
    "run the teacher and align chunks only when a loss reads them (alm, not sft or lexical); false: every step"
)


class YamlConfig:
    """Mixin for dataclasses: ``from_dict`` (unknown fields are an error naming them), ``from_yaml``,
    ``to_dict``, ``to_yaml``. Values that YAML cannot hold (lists of texts, datasets) are summarised."""

    @classmethod
    def from_dict(cls, data: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}; known: {sorted(names)}")
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path):
        path = Path(path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"config file {path} does not exist")
        return cls.from_dict(yaml.safe_load(path.read_text()) or {})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        data = self.to_dict()
        for key, value in data.items():
            if isinstance(value, (list, tuple)) and len(value) > 32:
                data[key] = f"<{len(value)} items>"
            elif not isinstance(value, (str, int, float, bool, list, tuple, dict, type(None))):
                data[key] = f"<{type(value).__name__}>"
        return yaml.safe_dump(data, sort_keys=False)

    def validate_training_fields(self) -> None:
        """Checks shared by the training configs (``mixed_precision``, positive sizes, accumulation, ``log_with``)."""
        if self.mixed_precision not in ("no", "bf16", "auto"):
            raise ValueError(f"mixed_precision={self.mixed_precision!r}; choose 'no', 'bf16' or 'auto'")
        for name in ("steps", "batch_size", "grad_accum", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of grad_accum ({self.grad_accum})")
        from .training.logs import tracker_names

        tracker_names(self.log_with)  # names only: whether a tracker is installed is checked when a run starts

    # what the configured losses need (the training configs have ``losses`` and ``alm``; distillation's ``bld``)
    @property
    def teacher_hidden(self) -> bool:
        """The ALM hidden-state term is on (the teacher's hidden states are needed)."""
        return "alm" in self.losses and bool(self.alm.get("hidden_weight", 0.0))

    @property
    def byte_targets(self) -> int:
        """Bytes per position BLD predicts; 0 when BLD is off."""
        return int(self.bld.get("max_bytes", 16)) if "bld" in self.losses else 0
