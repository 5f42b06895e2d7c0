"""A run's ``checkpoint/``, written atomically; nothing read back from it runs code.

trainable.safetensors   the trainable parameters of the model
heads.safetensors       the losses' trainable heads (they belong to the run, not to the model)
optimizer.pt            optimizer, schedule and RNG state: tensors and plain values only, read with
                        ``torch.load(weights_only=True)``
state.json              the step it was written at
config.yaml             the run's config at that step
"""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from hypernet.files import fresh_tmp, replace_dir

NAME = "checkpoint"


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def checkpoint_step(run: Path | None) -> int:
    """The step of the checkpoint in ``run`` (0: none)."""
    path = run / NAME / "state.json" if run is not None else None
    return int(json.loads(path.read_text())["step"]) if path is not None and path.exists() else 0


def save_checkpoint(
    run: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    step: int,
    config_yaml: str,
    heads: nn.Module | None = None,
) -> None:
    """Write ``run/checkpoint`` atomically (a temporary directory renamed over the old one)."""
    final = run / NAME
    tmp = fresh_tmp(final)
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    if heads is not None and len(list(heads.parameters())):
        save_file(trainable_state(heads), str(tmp / "heads.safetensors"))
    extra = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        extra["cuda_rng"] = torch.cuda.get_rng_state_all()
    torch.save(extra, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "time": time.time()}))
    (tmp / "config.yaml").write_text(config_yaml)
    replace_dir(tmp, final)


def load_checkpoint(
    run: Path | None, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, heads: nn.Module | None = None
) -> int:
    """Restore trainable weights, heads, optimizer, schedule and RNG; returns the step to continue from (0 if none)."""
    step = checkpoint_step(run)
    if not step:
        return 0
    ckpt = run / NAME
    state = load_file(str(ckpt / "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = [n for n in state if n not in params]
    if missing:
        raise ValueError(
            f"checkpoint in {ckpt} does not fit this model ({len(missing)} unknown tensors, e.g. "
            f"{missing[0]}); use a fresh run directory"
        )
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor)
    if heads is not None and len(list(heads.parameters())):
        if not (ckpt / "heads.safetensors").exists():
            raise ValueError(
                f"checkpoint in {ckpt} has no loss heads but this run's losses need them; use the "
                "losses it was started with, or a fresh run directory"
            )
        heads.load_state_dict(load_file(str(ckpt / "heads.safetensors")))
    try:
        extra = torch.load(ckpt / "optimizer.pt", weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{ckpt / 'optimizer.pt'} holds more than tensors and plain values, so it is not read "
            f"({str(err).splitlines()[0]}); use a fresh run directory"
        ) from None
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    torch.set_rng_state(extra["rng"])
    if "cuda_rng" in extra and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(extra["cuda_rng"])
    return step
