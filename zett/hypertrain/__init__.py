"""``zett.train_hypernet``: train a hypernetwork for a base model against the frozen base (SPEC §4.3).

    net = zett.train_hypernet({"base_model": "model.gguf", "data": "train.jsonl", "run_dir": "runs/hn"}).hypernet

Per step: draw a tokenizer, tokenize the batch with it and with the base tokenizer, predict the rows of the
batch's tokens (+ negatives; the softmax runs over that subset), run the frozen base body on the predicted
input embeddings (student) and score it with the configured losses (``losses``; by default ALM at τ = 5 and
next-token, balanced by gradient magnitude): next-token (``sft``) on the student alone, ``alm`` against the base
on its own tokenization (teacher, cached per text; run only for losses that read it). Only the hypernetwork
trains. The loop, checkpoints and logging are the shared training runtime's (:mod:`zett.training`). The run
directory holds ``config.yaml``, ``metrics.jsonl``, ``curves.svg``, an atomic ``checkpoint/`` (a second call
resumes from it) and, at the end, ``hypernet/``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypernet import Hypernet, HypernetConfig
from hypernet.files import write_text
from tokenizers_zoo import load_tokenizer

from ..distill.data import loader
from ..losses import boundary_mask
from ..training import Runtime, StepCallback, checkpoint_step
from .card import parent_card, this_machine
from .config import HypernetTrainConfig
from .data import HypernetBatches
from .inputs import eval_texts, evaluate_hypernet, tokens_seen, trained_scripts, training_texts
from .objective import HypernetObjective

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    hypernet: Hypernet
    metrics: list[dict]
    steps: int


def train_hypernet(
    config: HypernetTrainConfig | dict | str | Path,
    *,
    base_model: Any = None,
    base_tokenizer: Any = None,
    progress: bool = True,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Train (or resume) a hypernetwork; ``config``: a config object, dict or YAML path.

    ``base_model``/``base_tokenizer``: already-loaded objects (else ``config.base_model`` is loaded).
    ``on_step(step, metrics)`` may return ``False`` to stop early, as a kill would.
    """
    cfg = _as_config(config)
    if not cfg.run_dir:
        raise ValueError("train_hypernet needs run_dir= (checkpoints, metrics and the result go there)")
    if cfg.data is None:
        raise ValueError("set data: the training texts (a .jsonl/.txt file, a glob of them, or a list of texts)")
    run = Path(cfg.run_dir).expanduser()
    base_model, base_tok = _base(cfg, base_model, base_tokenizer)
    # find_unused_parameters: the fallback table is unused when no drawn token holds a byte the base lacks
    rt = Runtime(cfg, run, name="train-hypernet", ddp_kwargs={"find_unused_parameters": True})
    procs = rt.procs
    base_model.requires_grad_(False)
    base_model.eval().to(rt.device)
    net = Hypernet.for_base(base_model, base_tok, HypernetConfig(**cfg.hypernet)).to(rt.device)  # buffers move too
    if cfg.init_from and not checkpoint_step(run):  # every process loads it; the main one records it
        init_weights(net, cfg.init_from, base_model, run if procs.is_main_process else None)
    first = rt.attach(net)
    texts, startup, whole = training_texts(cfg, base_tok)
    net.config.training_scripts = trained_scripts(cfg, whole)  # saved with the network: predict's fallback
    del whole
    evals = eval_texts(cfg)
    real = {name: load_tokenizer(name, base=base_tok) for name in cfg.real_tokenizers}
    dataset = HypernetBatches(
        texts,
        startup,
        base_tok,
        cfg,
        real=real,
        first=first,
        last=cfg.steps,
        rank=procs.process_index,
        world=procs.num_processes,
        base_rows=net.config.base_vocab_size,
    )
    objective = HypernetObjective(cfg, net, base_model, boundary_mask(base_tok), rt.device)
    seen = tokens_seen(run, first)

    def evaluate() -> dict[str, dict[str, float]]:
        return evaluate_hypernet(net, base_model, base_tok, cfg, evals)

    def annotate(step: int, batch: dict, row: dict) -> None:
        nonlocal seen
        seen += batch["student_tokens"]
        row.update(source=batch["source"], vocab=int(len(batch["copy_ids"])), student_tokens_seen=seen)
        if step == first + 1:  # each session's machine, for the card
            row["hardware"] = this_machine()
        if evals and cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps and procs.is_main_process:
            row["eval_bpb"] = evaluate()

    try:
        if evals and cfg.init_from and not first and cfg.eval_every and procs.is_main_process:
            rt.log.write({"step": 0, "eval_bpb": evaluate()})  # the starting point to beat
        metrics, step, stopped = rt.fit(
            loader(dataset, cfg.num_workers),
            objective,
            on_step=on_step,
            progress=progress,
            annotate=annotate,
            postfix=lambda row: {"src": row["source"][:10]},
        )
        if not stopped and procs.is_main_process:
            if evals:
                metrics.append({"step": step, "eval_bpb": evaluate()})
                rt.write_final(metrics[-1])
            rt.log.plot()
            net.save_pretrained(run / "hypernet")
    finally:
        rt.close()
    return TrainResult(net, metrics, step)


def init_weights(net: Hypernet, spec: str, base_model: Any, run: Path | None) -> None:
    """Copy the weights of hypernetwork ``spec`` into ``net`` (same architecture, same base model) and record
    where they came from in ``run/init_from.json`` (its weights' sha256 and card) for this run's card."""
    import hashlib

    from hypernet.model import WEIGHTS_NAME, resolve

    path = resolve(spec)  # once: a Hub id downloads here
    parent = Hypernet.from_pretrained(path)
    parent.check_base(base_model)
    fields = ("hidden_size", "num_layers", "num_heads", "ffn_mult", "max_subtokens", "num_fallback")
    differ = {
        f: (getattr(parent.config, f), getattr(net.config, f))
        for f in fields
        if getattr(parent.config, f) != getattr(net.config, f)
    }
    if differ:
        raise ValueError(
            f"init_from={spec!r} has another architecture than this run's hypernet: config "
            + ", ".join(f"{k} {a} (init_from) vs {b}" for k, (a, b) in differ.items())
            + "; set hypernet: to the init_from network's values"
        )
    net.load_state_dict(parent.state_dict())
    if run is None:
        return
    record = {
        "spec": str(spec),
        "sha256": hashlib.sha256((path / WEIGHTS_NAME).read_bytes()).hexdigest(),
        "card": parent_card(path, parent.config.base_model),
        "base_model": parent.config.base_model,
    }
    write_text(run / "init_from.json", json.dumps(record, indent=1))  # a killed run restarts from init_from
    log.info("initialised from %s", spec)


def _base(cfg: HypernetTrainConfig, base_model: Any, base_tokenizer: Any) -> tuple[Any, Any]:
    """The base model and its tokenizer: the objects given, else loaded from ``cfg.base_model``."""
    if base_model is None:
        if not cfg.base_model:
            raise ValueError("set base_model (a model directory, .gguf or Hub id) or pass base_model=")
        from ..models import load_model

        spec = Path(cfg.base_model).expanduser()
        base_model, loaded_tok = load_model(spec if spec.exists() else cfg.base_model)
        base_tokenizer = base_tokenizer or loaded_tok
    if base_tokenizer is None:
        raise ValueError("pass base_tokenizer= with base_model=")
    return base_model, load_tokenizer(base_tokenizer)


def _as_config(config: Any) -> HypernetTrainConfig:
    if isinstance(config, HypernetTrainConfig):
        return config
    if isinstance(config, dict):
        return HypernetTrainConfig.from_dict(config)
    return HypernetTrainConfig.from_yaml(config)


__all__ = ["HypernetTrainConfig", "TrainResult", "eval_texts", "evaluate_hypernet", "train_hypernet"]
