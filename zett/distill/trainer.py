"""The distillation loop: setup, step, evaluate, save/resume (SPEC §5.3), on ``accelerate``.

Normalisation: every loss is divided by a **global** count (ALM and ULD: aligned
chunks, SFT: scored student tokens) summed over all micro-batches of the step
and all processes, so gradient accumulation and several processes give the
same update as one process with the same global batch.
"""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate import Accelerator
from torch import nn
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from hypernet.files import fresh_tmp, replace_dir

from ..losses import get_loss, token_stats
from ..losses.stats import hidden_token_stats
from ..losses.bld import ByteHead, ByteTrie, beam_byte_probs, path_byte_probs
from .config import DistillConfig, resolve_precision
from .data import NO_OFFSET, split_micro

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What a step needs besides the batch."""

    acc: Accelerator
    config: DistillConfig
    teacher: Any
    student_boundary: torch.Tensor
    teacher_boundary: torch.Tensor
    cache: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    heads: nn.ModuleDict = field(default_factory=nn.ModuleDict)  # trainable loss parts, never exported
    teacher_trie: ByteTrie | None = None  # BLD: the teacher's vocabulary sorted by bytes
    texts: Any = None  # BLD with method="beam": the texts by index

    @property
    def needs_hidden(self) -> bool:
        """The teacher's hidden states (the ALM hidden-state term)."""
        return self.config.teacher_hidden

    @property
    def needs_bytes(self) -> bool:
        return self.config.byte_targets > 0

    @property
    def student_hidden(self) -> bool:
        return self.needs_hidden or self.needs_bytes or bool(getattr(self.config, "balance", False))

    @property
    def needs_logits(self) -> bool:
        return "uld" in self.config.losses


# -- setup -----------------------------------------------------------------------------------------------------


def make_accelerator(mixed_precision: str, **kwargs: Any) -> Accelerator:
    """An ``Accelerator`` for one run at ``mixed_precision`` (``auto`` resolved). accelerate keeps its state per
    process and refuses a second precision; a later run in the same process (a benchmark, a notebook, fp32
    ALM after a bf16 hypernetwork run) gets its own, the process group kept."""
    from accelerate.state import AcceleratorState, GradientState

    precision = resolve_precision(mixed_precision)
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") != precision:
        AcceleratorState._reset_state()
        GradientState._reset_state()
    return Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available(), **kwargs)


def end_process_group() -> None:
    """Leave the process group of a multi-process launch (``accelerate launch``, ``torchrun``) at the end of a
    successful run: a process that exits with a gloo group still open can abort in its threads at interpreter
    exit ("terminate called without an active exception"), failing a run that finished. Not after an error:
    the other processes may still be in a collective, and destroying the group would hang them."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def prepare_trainable(model: Any, config: DistillConfig) -> Any:
    """Freeze what the trainable set excludes; wrap with LoRA for ``embeddings+lora``."""
    if config.trainable == "full":
        model.requires_grad_(True)
        return model
    if config.trainable == "embeddings+lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                          target_modules="all-linear", bias="none")
        model = get_peft_model(model, lora)
    else:
        model.requires_grad_(False)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.get_input_embeddings().weight.requires_grad_(True)
    if base.get_output_embeddings() is not None:
        base.get_output_embeddings().weight.requires_grad_(True)
    return model


def build_heads(student: Any, teacher: Any, config: DistillConfig) -> nn.ModuleDict:
    """The trainable parts the losses own: BLD's byte head, and a projection of the student's hidden states to
    the teacher's width when the ALM hidden-state term compares models of different widths."""
    heads = nn.ModuleDict()
    d_s, d_t = _width(student), _width(teacher)
    if config.byte_targets:
        heads["bld"] = ByteHead(d_s, hidden=int(config.bld.get("head_size", 256)), max_bytes=config.byte_targets)
    if config.teacher_hidden and d_s != d_t:
        heads["hidden_proj"] = nn.Linear(d_s, d_t, bias=False)
    return heads


def _width(model: Any) -> int:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return int(base.get_input_embeddings().weight.shape[1])


def make_optimizer(model: Any, config: DistillConfig, heads: nn.Module | None = None
                   ) -> tuple[torch.optim.Optimizer, Any]:
    decay, no_decay = [], []
    named = list(model.named_parameters()) + (list(heads.named_parameters()) if heads is not None else [])
    for name, p in named:
        if p.requires_grad:
            (no_decay if p.dim() < 2 or "norm" in name.lower() else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=config.lr, betas=(config.beta1, config.beta2), eps=1e-8)

    def schedule(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / (config.warmup_steps + 1)
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


# -- teacher and student outputs -----------------------------------------------------------------------------


def _forward(model: Any, ids: torch.Tensor, mask: torch.Tensor, boundary: torch.Tensor, *, hidden: bool,
             logits: bool) -> dict[str, torch.Tensor]:
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=hidden)
    stats = token_stats(out.logits, ids, boundary, mask)
    if hidden:
        stats["hidden"] = out.hidden_states[-1]
    if logits:
        stats["logits"] = out.logits
    return stats


def output_projection(model: Any):
    """hidden [n, d] -> logits [n, V] of a causal LM, including a final logit soft-cap (Gemma)."""
    head = model.get_output_embeddings()
    cap = getattr(getattr(model.config, "get_text_config", lambda: model.config)(), "final_logit_softcapping", None)

    def project(h: torch.Tensor) -> torch.Tensor:
        logits = head(h)
        return torch.tanh(logits / cap) * cap if cap else logits

    return project


def lm_token_stats(model: Any, ids: torch.Tensor, mask: torch.Tensor, boundary: torch.Tensor
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor, Any]:
    """(token/boundary log-probs, final hidden states, hidden -> logits) of a causal LM, without ever holding
    the logits of more than a block of positions (a 262k vocabulary in fp32 would be ~1 GB per 1k tokens)."""
    body = getattr(model, model.base_model_prefix)
    hidden = body(input_ids=ids, attention_mask=mask).last_hidden_state
    project = output_projection(model)
    return hidden_token_stats(hidden, project, ids, boundary, mask), hidden, project


def _teacher_forward(ctx: Context, ids: torch.Tensor, mask: torch.Tensor) -> tuple[dict, Any]:
    """Teacher statistics, and a function giving one row's logits by position block (for BLD). Only ULD keeps
    full-batch logits; otherwise the body runs once and logits exist a block of positions at a time."""
    if ctx.needs_logits:
        out = _forward(ctx.teacher, ids, mask, ctx.teacher_boundary, hidden=ctx.needs_hidden, logits=True)
        return out, lambda r: out["logits"][r]
    out, hidden, project = lm_token_stats(ctx.teacher, ids, mask, ctx.teacher_boundary)
    if ctx.needs_hidden:
        out["hidden"] = hidden
    return out, lambda r: (lambda start, stop: project(hidden[r, start:stop]))


def teacher_outputs(ctx: Context, mb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Teacher statistics for a micro-batch, from the cache where possible (the teacher's side of a text never
    changes: its tokenization is fixed). Per-token tensors are padded to the batch's teacher length; BLD's byte
    distributions (``byte_*``, indexed by text byte offset) to the longest text of the batch."""
    ids, mask = mb["teacher_input_ids"].to(ctx.acc.device), mb["teacher_attention_mask"].to(ctx.acc.device)
    keys = mb["text_index"].tolist()
    use_cache = ctx.config.cache_teacher and not ctx.needs_logits
    if use_cache and all(k in ctx.cache for k in keys):
        rows = [ctx.cache[k] for k in keys]
    else:
        rows = []
        with torch.no_grad():
            out, row_logits = _teacher_forward(ctx, ids, mask)
            for r, k in enumerate(keys):
                n = int(mask[r].sum())
                row = {name: v[r, :n].detach() for name, v in out.items()}
                if ctx.needs_bytes:
                    row.update(teacher_bytes(ctx, mb, r, k, row_logits(r), n))
                if use_cache:
                    row = ctx.cache[k] = {name: v.cpu() for name, v in row.items()}
                rows.append(row)
    padded = {}
    for name in rows[0]:
        width = max(len(r[name]) for r in rows) if name.startswith("byte_") else ids.shape[1]
        padded[name] = torch.zeros((len(rows), width) + rows[0][name].shape[1:], dtype=rows[0][name].dtype)
        for r, row in enumerate(rows):
            padded[name][r, :len(row[name])] = row[name]
        padded[name] = padded[name].to(ctx.acc.device)
    return padded


def teacher_bytes(ctx: Context, mb: dict[str, torch.Tensor], row: int, key: int, logits: Any,
                  n: int) -> dict[str, torch.Tensor]:
    """BLD's teacher side for one text (``n`` tokens; ``logits`` [n, V] or by position block): next-byte
    distributions at every text byte its tokens cover."""
    ids = mb["teacher_input_ids"][row, :n].tolist()
    offsets = mb["teacher_byte_offset"][row, :n].tolist()
    trie = ctx.teacher_trie
    ends = [o + len(trie.forms[i]) for o, i in zip(offsets, ids) if o != NO_OFFSET]
    n_bytes = max(ends, default=0)
    if ctx.config.bld.get("method", "path") == "path":
        probs, covered = path_byte_probs(logits, ids, offsets, trie, n_bytes)
    else:  # marginalise over tokenizations of the teacher's own byte stream (a prefix space included)
        shift = next((o for o in offsets if o != NO_OFFSET), 0)
        stream = ctx.texts[key].encode("utf-8")[:n_bytes]
        stream = b" " + stream if shift < 0 else stream
        beam = beam_byte_probs(ctx.teacher, ids[0], stream, trie, int(ctx.config.bld.get("beam", 4)))
        probs = beam[-shift:] if shift < 0 else beam
        covered = torch.ones(len(probs), dtype=torch.bool)
    return {"byte_probs": probs.half(), "byte_covered": covered}


# -- one optimizer step ----------------------------------------------------------------------------------------


def global_counts(ctx: Context, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    local = torch.tensor([float(batch["num_chunks"].sum()),
                          float(batch["student_attention_mask"][:, 1:].sum())], device=ctx.acc.device)
    total = ctx.acc.reduce(local, reduction="sum") if ctx.acc.num_processes > 1 else local
    return {"alm": total[0], "uld": total[0], "sft": total[1], "bld": total[1]}


def train_step(model: Any, optimizer: Any, scheduler: Any, batch: dict, ctx: Context) -> dict[str, float]:
    counts = global_counts(ctx, batch)
    parts: dict[str, float] = {name: 0.0 for name in ctx.config.losses}
    micro = split_micro(batch, ctx.config.grad_accum)
    for i, mb in enumerate(micro):
        t_out = teacher_outputs(ctx, mb)
        sync = ctx.acc.no_sync(model) if i < len(micro) - 1 and ctx.acc.num_processes > 1 else nullcontext()
        with sync, ctx.acc.autocast():
            ids = mb["student_input_ids"].to(ctx.acc.device)
            mask = mb["student_attention_mask"].to(ctx.acc.device)
            s_out = _forward(model, ids, mask, ctx.student_boundary, hidden=ctx.student_hidden,
                             logits=ctx.needs_logits)
            dev_mb = {k: v.to(ctx.acc.device) for k, v in mb.items()}
            values = {}
            for name in ctx.config.losses:
                values[name] = get_loss(name)(t_out, s_out, dev_mb, normalizer=counts[name], **loss_kwargs(ctx, name))
                parts[name] += float(values[name].detach()) * ctx.acc.num_processes
            weights = dict(ctx.config.losses)
            if ctx.config.balance and len(values) > 1:
                weights = balanced_weights(values, s_out["hidden"], weights)
                for name, w in weights.items():
                    parts[f"w_{name}"] = parts.get(f"w_{name}", 0.0) + w / len(micro)
            total = sum(weights[name] * values[name] for name in values)
        if not torch.isfinite(total):
            raise RuntimeError(f"loss became {float(total)} at this step; lower lr (now {ctx.config.lr}) or check "
                               "the data; the last checkpoint is intact")
        # DDP averages gradients over processes; the losses are already global means, so undo the average
        ctx.acc.backward(total * ctx.acc.num_processes)
    head_params = [p for p in ctx.heads.parameters() if p.grad is not None]
    if head_params and ctx.acc.num_processes > 1:  # heads are not DDP-wrapped: average their gradients here
        flat = ctx.acc.reduce(torch.cat([p.grad.reshape(-1) for p in head_params]), reduction="mean")
        for p, g in zip(head_params, flat.split([p.numel() for p in head_params])):
            p.grad.copy_(g.view_as(p.grad))
    if ctx.config.grad_clip:
        trainable = [p for p in model.parameters() if p.requires_grad] + list(ctx.heads.parameters())
        ctx.acc.clip_grad_norm_(trainable, ctx.config.grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    if ctx.acc.num_processes > 1:
        reduced = ctx.acc.reduce(torch.tensor(list(parts.values()), device=ctx.acc.device), reduction="mean")
        parts = dict(zip(parts, reduced.tolist()))
    parts["loss"] = sum(parts.get(f"w_{n}", ctx.config.losses[n]) * parts[n] for n in ctx.config.losses)
    parts["lr"] = scheduler.get_last_lr()[0]
    return parts


def balanced_weights(values: dict[str, torch.Tensor], shared: torch.Tensor,
                     weights: dict[str, float]) -> dict[str, float]:
    """SPEC §5.2.8 gradient-magnitude balancing: scale each loss by the inverse norm of its gradient at ``shared``
    (the student's final hidden states: defined whatever the trainable set), times the mean norm, so that
    weighted losses push with equal force; no gradient flows through the weights."""
    norms = {}
    for name, value in values.items():
        (grad,) = torch.autograd.grad(value, shared, retain_graph=True, allow_unused=True)
        norms[name] = float(grad.float().norm()) if grad is not None else 0.0
    live = [n for n in norms.values() if n > 0]
    mean = sum(live) / len(live) if live else 1.0
    return {name: weights[name] * (mean / n if n > 0 else 1.0) for name, n in norms.items()}


BLD_LOSS_KEYS = ("token_weight", "byte_weight", "kl_weight")


def loss_kwargs(ctx: Context, name: str) -> dict[str, Any]:
    """Keyword arguments of loss ``name``: its config section, plus the trainable head it owns."""
    if name == "alm":
        kwargs = dict(ctx.config.alm)
        if "hidden_proj" in ctx.heads:
            kwargs["hidden_proj"] = ctx.heads["hidden_proj"]
        return kwargs
    if name == "bld":
        return {k: v for k, v in ctx.config.bld.items() if k in BLD_LOSS_KEYS} | {"head": ctx.heads["bld"]}
    return {}


# -- checkpoints -----------------------------------------------------------------------------------------------


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(run_dir: Path, model: Any, optimizer: Any, scheduler: Any, step: int,
                    config: DistillConfig, heads: nn.Module | None = None) -> None:
    """Write ``run_dir/checkpoint`` atomically (a temporary directory renamed over the old one); the loss heads
    go to ``heads.safetensors`` (they belong to the run, not to the model)."""
    final = run_dir / "checkpoint"
    tmp = fresh_tmp(final)
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    if heads is not None and len(list(heads.parameters())):
        save_file(trainable_state(heads), str(tmp / "heads.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state()}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "time": time.time()}))
    (tmp / "config.yaml").write_text(config.to_yaml())
    replace_dir(tmp, final)


def load_checkpoint(run_dir: Path, model: Any, optimizer: Any, scheduler: Any,
                    heads: nn.Module | None = None) -> int:
    """Restore trainable weights, optimizer, schedule and RNG; returns the step to continue from (0 if none)."""
    ckpt = run_dir / "checkpoint"
    if not (ckpt / "state.json").exists():
        return 0
    state = load_file(str(ckpt / "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = [n for n in state if n not in params]
    if missing:
        raise ValueError(f"checkpoint in {ckpt} does not fit this model ({len(missing)} unknown tensors, e.g. "
                         f"{missing[0]}); use a fresh run directory")
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor)
    if heads is not None and len(list(heads.parameters())):
        if not (ckpt / "heads.safetensors").exists():
            raise ValueError(f"checkpoint in {ckpt} has no loss heads but this run's losses need them; use the "
                             "losses it was started with, or a fresh run directory")
        heads.load_state_dict(load_file(str(ckpt / "heads.safetensors")))
    extra = torch.load(ckpt / "optimizer.pt", weights_only=False)
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    torch.set_rng_state(extra["rng"])
    return int(json.loads((ckpt / "state.json").read_text())["step"])


def log_metrics(run_dir: Path | None, row: dict) -> None:
    if run_dir is None:
        return
    with (run_dir / "metrics.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def progress_bar(acc: Accelerator, first: int, total: int, enabled: bool, desc: str = "distill") -> Any:
    return tqdm(total=total, initial=first, desc=desc, disable=not (enabled and acc.is_main_process))


StepCallback = Callable[[int, dict], "bool | None"]
