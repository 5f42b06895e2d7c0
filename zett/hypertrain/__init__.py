"""``zett.train_hypernet``: train a hypernetwork for a base model with ALM against the frozen base (SPEC §4.3).

    net = zett.train_hypernet({"base_model": "model.gguf", "run_dir": "runs/hn", "steps": 1000}).hypernet

Per step: draw a tokenizer, tokenize the batch with it and with the base tokenizer, predict the rows of the
batch's tokens (+ negatives; the softmax runs over that subset), run the frozen base body on the predicted
input embeddings (student) and compare with the base on its own tokenization (teacher, cached per text).
Only the hypernetwork trains. The run directory holds ``config.yaml``, ``metrics.jsonl``, ``curves.svg``,
an atomic ``checkpoint/`` (a second call resumes from it) and, at the end, ``hypernet/``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from hypernet import Hypernet, HypernetConfig
from hypernet.files import write_text
from tokenizers_zoo import load_tokenizer

from ..data import read_texts
from ..distill.data import split_micro
from ..distill.trainer import (Context, global_counts, load_checkpoint, log_metrics, make_accelerator, make_optimizer,
                               progress_bar, save_checkpoint, teacher_outputs)
from ..losses import boundary_mask, get_loss, token_stats
from ..paths import assets_dir
from .card import parent_card, this_machine
from .config import HypernetTrainConfig
from .data import HypernetBatches, text_spans
from .plot import write_curves

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    hypernet: Hypernet
    metrics: list[dict]
    steps: int


def train_hypernet(config: HypernetTrainConfig | dict | str | Path, *, base_model: Any = None,
                   base_tokenizer: Any = None, progress: bool = True, on_step: Any = None) -> TrainResult:
    """Train (or resume) a hypernetwork; ``config``: a config object, dict or YAML path.

    ``base_model``/``base_tokenizer``: already-loaded objects (else ``config.base_model`` is loaded).
    ``on_step(step, metrics)`` may return ``False`` to stop early, as a kill would.
    """
    cfg = _as_config(config)
    if not cfg.run_dir:
        raise ValueError("train_hypernet needs run_dir= (checkpoints, metrics and the result go there)")
    run = Path(cfg.run_dir).expanduser()
    if base_model is None:
        if not cfg.base_model:
            raise ValueError("set base_model (a model directory, .gguf or Hub id) or pass base_model=")
        from ..models import load_model

        spec = Path(cfg.base_model).expanduser()
        base_model, loaded_tok = load_model(spec if spec.exists() else cfg.base_model)
        base_tokenizer = base_tokenizer or loaded_tok
    if base_tokenizer is None:
        raise ValueError("pass base_tokenizer= with base_model=")
    base_tok = load_tokenizer(base_tokenizer)
    from accelerate.utils import DistributedDataParallelKwargs

    # the fallback table is unused when no drawn token holds a byte the base lacks
    acc = make_accelerator(cfg.mixed_precision,
                           kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    if acc.is_main_process:
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.yaml").write_text(cfg.to_yaml())
    torch.manual_seed(cfg.seed)
    base_model.requires_grad_(False)
    base_model.eval().to(acc.device)
    net = Hypernet.for_base(base_model, base_tok, HypernetConfig(**cfg.hypernet)).to(acc.device)  # buffers move too
    optimizer, scheduler = make_optimizer(net, cfg)
    first = load_checkpoint(run, net, optimizer, scheduler)
    if first:
        log.info("resuming %s at step %d", run, first)
    elif cfg.init_from:  # every process loads it; the main one records it
        init_weights(net, cfg.init_from, base_model, run if acc.is_main_process else None)
    texts, startup, evals = _texts(cfg, base_tok)
    real = {name: load_tokenizer(_tokenizer_spec(name), base=base_tok) for name in cfg.real_tokenizers}
    dataset = HypernetBatches(texts, startup, base_tok, cfg, real=real, first=first, last=cfg.steps,
                              rank=acc.process_index, world=acc.num_processes)
    model, optimizer = acc.prepare(net, optimizer)
    ctx = Context(acc, cfg, base_model, torch.zeros(1, dtype=torch.bool), boundary_mask(base_tok))
    metrics: list[dict] = []
    bar = progress_bar(acc, first, cfg.steps, progress, desc="train-hypernet")
    step, start, seen = first, time.perf_counter(), _tokens_seen(run, first)
    loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=cfg.num_workers)
    if cfg.init_from and not first and cfg.eval_every and acc.is_main_process:  # the starting point to beat
        log_metrics(run, {"step": 0, "eval_bpb": evaluate_hypernet(acc.unwrap_model(model), base_model, base_tok, cfg,
                                                                 evals)})
    for batch in loader:
        row = train_step(model, optimizer, scheduler, batch, ctx)
        step += 1
        seen += batch["student_tokens"]
        row.update(step=step, seconds=time.perf_counter() - start, source=batch["source"],
                   vocab=int(len(batch["copy_ids"])), student_tokens_seen=seen)
        if step == first + 1:  # each session's machine, for the card
            row["hardware"] = this_machine()
        if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps and acc.is_main_process:
            row["eval_bpb"] = evaluate_hypernet(acc.unwrap_model(model), base_model, base_tok, cfg, evals)
        metrics.append(row)
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.4f}", src=row["source"][:10])
        if acc.is_main_process:
            log_metrics(run, row)
        if on_step is not None and on_step(step, row) is False:
            bar.close()
            return TrainResult(acc.unwrap_model(model), metrics, step)
        if acc.is_main_process and (step % cfg.save_every == 0 or step == cfg.steps):
            save_checkpoint(run, acc.unwrap_model(model), optimizer, scheduler, step, cfg)
            write_curves(run / "metrics.jsonl", run / "curves.svg")
        acc.wait_for_everyone()
    bar.close()
    final = acc.unwrap_model(model)
    if acc.is_main_process:
        result = evaluate_hypernet(final, base_model, base_tok, cfg, evals)
        metrics.append({"step": step, "eval_bpb": result})
        log_metrics(run, metrics[-1])
        write_curves(run / "metrics.jsonl", run / "curves.svg")
        final.save_pretrained(run / "hypernet")
    return TrainResult(final, metrics, step)


def init_weights(net: Hypernet, spec: str, base_model: Any, run: Path | None) -> None:
    """Copy the weights of hypernetwork ``spec`` into ``net`` (same architecture, same base model) and record
    where they came from in ``run/init_from.json`` (its weights' sha256 and card) for this run's card."""
    import hashlib

    from hypernet.model import WEIGHTS_NAME, resolve

    path = resolve(spec)  # once: a Hub id downloads here
    parent = Hypernet.from_pretrained(path)
    parent.check_base(base_model)
    fields = ("hidden_size", "num_layers", "num_heads", "ffn_mult", "max_subtokens", "num_fallback")
    differ = {f: (getattr(parent.config, f), getattr(net.config, f)) for f in fields
              if getattr(parent.config, f) != getattr(net.config, f)}
    if differ:
        raise ValueError(f"init_from={spec!r} has another architecture than this run's hypernet: config "
                         + ", ".join(f"{k} {a} (init_from) vs {b}" for k, (a, b) in differ.items())
                         + "; set hypernet: to the init_from network's values")
    net.load_state_dict(parent.state_dict())
    if run is None:
        return
    record = {"spec": str(spec), "sha256": hashlib.sha256((path / WEIGHTS_NAME).read_bytes()).hexdigest(),
              "card": parent_card(path, parent.config.base_model), "base_model": parent.config.base_model}
    write_text(run / "init_from.json", json.dumps(record, indent=1))  # a killed run restarts from init_from
    log.info("initialised from %s", spec)


# -- one step ------------------------------------------------------------------------------------------------


def student_outputs(base_model: Any, mb: dict[str, Any], rows: torch.Tensor, tied: bool,
                    d: int) -> dict[str, torch.Tensor]:
    """Run the frozen base body on predicted rows; logits over the step's local vocabulary only."""
    device = rows.device
    e_in = rows[:, :d]
    e_out = e_in if tied else rows[:, d:]
    ids = mb["student_input_ids"].to(device)
    mask = mb["student_attention_mask"].to(device)
    embeds = e_in[ids]
    scale = getattr(base_model.get_input_embeddings(), "embed_scale", None)  # Gemma scales its embeddings
    if scale is not None:
        embeds = embeds * torch.as_tensor(scale, dtype=embeds.dtype, device=device)
    body = base_model.get_decoder()
    hidden = body(inputs_embeds=embeds.to(next(body.parameters()).dtype), attention_mask=mask).last_hidden_state
    logits = hidden.float() @ e_out.float().T
    cap = getattr(base_model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    logits = logits + mb["logit_offset"].to(device)  # sampled-softmax correction for uniform negatives
    return token_stats(logits, ids, mb["boundary"].to(device), mask)


def local_rows(model: Any, mb: dict[str, Any]) -> torch.Tensor:
    """[n, d x matrices]: copies from the base, the hypernetwork's prediction, or (others) FVT."""
    net = model.module if hasattr(model, "module") else model
    pieces = mb["pieces"]
    rows = net.fvt(pieces).detach()
    copy = mb["copy_ids"].to(rows.device)
    has_copy = copy >= 0
    rows = torch.where(has_copy[:, None], net.table[copy.clamp(min=0)], rows)
    where = mb["predict"].nonzero()[:, 0]
    if len(where):
        at = where.to(rows.device)
        predicted = model([pieces[i] for i in where.tolist()], fvt=rows[at])
        rows = rows.index_copy(0, at, predicted)
    return rows


def lexical_loss(net: Any, rows: torch.Tensor, mb: dict[str, Any]) -> torch.Tensor:
    """Σ‖pred − E[id]‖² / n / mean‖E‖ over predicted rows whose decomposition is one base id (SPEC §4.3)."""
    ids = mb["lexical_ids"].to(rows.device)
    use = (ids >= 0) & mb["predict"].to(rows.device)
    if not use.any():
        return rows.sum() * 0.0
    target = net.table[ids[use]]
    norm = net.table.norm(dim=1).mean()
    return (rows[use] - target).pow(2).sum() / use.sum() / norm


def train_step(model: Any, optimizer: Any, scheduler: Any, batch: dict[str, Any], ctx: Context) -> dict[str, float]:
    cfg, acc = ctx.config, ctx.acc
    net = acc.unwrap_model(model)
    counts = global_counts(ctx, batch)
    parts = {name: 0.0 for name in cfg.losses}
    micro = _split(batch, cfg.grad_accum)
    for mb in micro:
        t_out = teacher_outputs(ctx, mb)
        with acc.autocast():
            rows = local_rows(model, mb)
            s_out = student_outputs(ctx.teacher, mb, rows, net.config.tied, net.config.embedding_dim)
            dev_mb = {k: v.to(acc.device) if torch.is_tensor(v) else v for k, v in mb.items()}
            total = 0.0
            for name, weight in cfg.losses.items():
                if name == "lexical":  # a local mean: share it like the globally normalised losses
                    value = lexical_loss(net, rows, mb) / (len(micro) * acc.num_processes)
                else:
                    kwargs = dict(cfg.alm) if name == "alm" else {}
                    value = get_loss(name)(t_out, s_out, dev_mb, normalizer=counts[name], **kwargs)
                parts[name] += float(value.detach())
                total = total + weight * value
        if not torch.isfinite(total):
            raise RuntimeError(f"loss became {float(total)}; lower lr (now {cfg.lr}) or check the data; the last "
                               "checkpoint is intact")
        acc.backward(total * acc.num_processes)
    if cfg.grad_clip:
        acc.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    if acc.num_processes > 1:
        reduced = acc.reduce(torch.tensor(list(parts.values()), device=acc.device), reduction="mean")
        parts = dict(zip(parts, (v * acc.num_processes for v in reduced.tolist())))
    parts["loss"] = sum(cfg.losses[n] * parts[n] for n in cfg.losses)
    parts["lr"] = scheduler.get_last_lr()[0]
    return parts


def _split(batch: dict[str, Any], parts: int) -> list[dict[str, Any]]:
    """Micro-batches: tensors with a batch dimension are split; the local vocabulary is shared."""
    shared = {k: v for k, v in batch.items() if k in ("pieces", "copy_ids", "predict", "lexical_ids", "boundary",
                                                      "logit_offset", "source", "student_tokens")}
    rest = {k: v for k, v in batch.items() if k not in shared}
    return [dict(m, **shared) for m in split_micro(rest, parts)]


# -- evaluation ----------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate_hypernet(net: Hypernet | None, base_model: Any, base_tok: Any, cfg: HypernetTrainConfig,
                      evals: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """Zero-shot BPB of transfers to the fixed evaluation tokenizers, per language (``net=None``: FVT)."""
    from ..evaluate import bits_per_byte
    from ..transfer import transfer

    was_training = net.training if net is not None else False
    # accelerate's mixed precision wraps the instance's forward in autocast; evaluate what a user's transfer
    # gets (the class's full-precision forward), then put the wrapper back
    wrapped = net.__dict__.pop("forward", None) if net is not None else None
    if net is not None:
        net.eval()
    out: dict[str, dict[str, float]] = {}
    try:
        for name in cfg.eval_tokenizers:
            kwargs = {"hypernet": net} if net is not None else {"method": "fvt"}
            model, tok = transfer(base_model, _tokenizer_spec(name), base_tokenizer=base_tok, **kwargs)
            out[name] = {lang: bits_per_byte(model, tok, texts, progress=False) for lang, texts in evals.items()}
            del model
    finally:
        if wrapped is not None:
            net.forward = wrapped
        if net is not None:
            net.train(was_training)
    return out


# -- inputs --------------------------------------------------------------------------------------------------


def _tokens_seen(run: Path, step: int) -> int:
    """Student tokens seen up to ``step`` by an earlier (killed) run in ``run``, from its metrics."""
    path = run / "metrics.jsonl"
    if not step or not path.exists():
        return 0
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return next((r["student_tokens_seen"] for r in reversed(rows)
                 if r.get("step") == step and "student_tokens_seen" in r), 0)


def _as_config(config: Any) -> HypernetTrainConfig:
    if isinstance(config, HypernetTrainConfig):
        return config
    if isinstance(config, dict):
        return HypernetTrainConfig.from_dict(config)
    return HypernetTrainConfig.from_yaml(config)


def _tokenizer_spec(name: str) -> str:
    """Names of the assets' tokenizers resolve to their directory; anything else goes to load_tokenizer."""
    path = assets_dir() / "tokenizers" / name
    return str(path) if path.exists() else name


def _texts(cfg: HypernetTrainConfig, base_tok: Any) -> tuple[list[str], list[str], dict[str, list[str]]]:
    corpus = assets_dir() / "corpus"
    if cfg.data is None:
        files = sorted(corpus.glob("*.train.jsonl"))
        if not files:
            raise ValueError(f"no data= given and no corpus at {corpus}; set data: (a .jsonl/.txt file or list)")
        raw = [t for f in files for t in read_texts(f)]
    else:
        raw = read_texts(cfg.data)
    texts = text_spans(base_tok, raw, cfg.max_length)
    import numpy as np

    order = np.random.default_rng(cfg.seed).permutation(len(raw))[:cfg.startup_texts]
    startup = [raw[i][:2000] for i in order]
    return texts, startup, eval_texts(cfg)


def eval_texts(cfg: HypernetTrainConfig) -> dict[str, list[str]]:
    """The held-out texts of the periodic evaluation, per language."""
    if cfg.eval_data is not None:
        return {"all": [t[:cfg.eval_chars] for t in read_texts(cfg.eval_data, max_docs=cfg.eval_docs)]}
    return {f.name.split(".")[0]: [t[:cfg.eval_chars] for t in read_texts(f, max_docs=cfg.eval_docs)]
            for f in sorted((assets_dir() / "corpus").glob("*.valid.jsonl"))}


__all__ = ["HypernetTrainConfig", "TrainResult", "evaluate_hypernet", "train_hypernet"]
