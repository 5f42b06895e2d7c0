"""The texts of a hypernetwork training run and its zero-shot evaluation."""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hypernet import Hypernet

from ..data import read_texts
from .config import HypernetTrainConfig
from .data import text_spans


def training_texts(cfg: HypernetTrainConfig, base_tok: Any) -> tuple[list[str], list[str], list[str]]:
    """(the training texts cut to ``max_length`` base tokens, the texts that fill the sampler's first window,
    the training texts whole)."""
    raw = read_texts(cfg.data)
    order = np.random.default_rng(cfg.seed).permutation(len(raw))[: cfg.startup_texts]
    return text_spans(base_tok, raw, cfg.max_length), [raw[i][:2000] for i in order], raw


def trained_scripts(cfg: HypernetTrainConfig, texts: list[str] | None = None) -> list[str]:
    """The scripts of the training data (:func:`hypernet.scripts.text_scripts`; ``texts``: the data when the caller
    has read it already) and of ``init_from``'s training text when its config records them: what the network has
    been trained on, leg after leg."""
    from hypernet.config import read_config
    from hypernet.hub import resolve
    from hypernet.model import CONFIG_NAME
    from hypernet.scripts import text_scripts

    scripts = set(text_scripts(read_texts(cfg.data) if texts is None else texts))
    if cfg.init_from:
        scripts |= set(read_config(resolve(cfg.init_from) / CONFIG_NAME).training_scripts or ())
    return sorted(scripts)


def eval_texts(cfg: HypernetTrainConfig) -> dict[str, list[str]]:
    """The held-out texts of the evaluations by group (e.g. language), ``eval_docs`` each; {} without
    ``eval_data``. A glob makes a group per file, named by the file name up to its first dot."""
    spec = cfg.eval_data
    if spec is None:
        return {}
    if isinstance(spec, dict):
        groups = dict(spec)
    elif isinstance(spec, (str, Path)) and glob.has_magic(str(spec)) and not Path(spec).expanduser().exists():
        pattern = Path(spec).expanduser()
        files = sorted(pattern.parent.glob(pattern.name))
        if not files:
            raise FileNotFoundError(f"eval_data {spec!r} matches no file; check the pattern")
        groups = {f.name.split(".")[0]: f for f in files}
    else:
        groups = {"all": spec}
    return {
        name: [t[: cfg.eval_chars] for t in read_texts(source, max_docs=cfg.eval_docs)]
        for name, source in groups.items()
    }


@torch.no_grad()
def evaluate_hypernet(
    net: Hypernet | None, base_model: Any, base_tok: Any, cfg: HypernetTrainConfig, evals: dict[str, list[str]]
) -> dict[str, dict[str, float]]:
    """Zero-shot BPB of transfers to the fixed evaluation tokenizers, per group of texts (``net=None``: FVT)."""
    from ..evaluate import bits_per_byte
    from ..transfer import transfer

    was_training = net.training if net is not None else False
    if net is not None:
        net.eval()
    out: dict[str, dict[str, float]] = {}
    try:
        for name in cfg.eval_tokenizers:
            kwargs = {"hypernet": net} if net is not None else {"method": "fvt"}
            model, tok = transfer(base_model, name, base_tokenizer=base_tok, **kwargs)
            out[name] = {lang: bits_per_byte(model, tok, texts, progress=False) for lang, texts in evals.items()}
            del model
    finally:
        if net is not None:
            net.train(was_training)
    return out


def tokens_seen(run: Path, step: int) -> int:
    """Student tokens seen up to ``step`` by an earlier (killed) run in ``run``, from its metrics."""
    path = run / "metrics.jsonl"
    if not step or not path.exists():
        return 0
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return next(
        (r["student_tokens_seen"] for r in reversed(rows) if r.get("step") == step and "student_tokens_seen" in r), 0
    )
