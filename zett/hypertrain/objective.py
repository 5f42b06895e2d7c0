"""Hypernetwork training's part of a step (SPEC §4.3): rows for the step's local vocabulary (copied, predicted or
FVT), the frozen base body run on them (the student), and the configured losses against the base on its own
tokenization (the teacher)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..distill.data import split_micro
from ..losses import TEACHER_FREE, balanced_loss, get_loss, token_stats
from ..training import StepInfo
from ..training.teacher import Teacher, logit_softcap, per_row, softcap

SHARED = ("pieces", "copy_ids", "predict", "lexical_ids", "boundary", "logit_offset", "source", "student_tokens")


def input_embeds(base_model: Any, rows: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """What the base's input embedding module makes of ``ids`` when its rows are ``rows``: the rows, times the
    module's ``embed_scale`` (Gemma scales by sqrt(width)) taken in the module weights' dtype, as Gemma does."""
    embeds = rows[ids]
    table = base_model.get_input_embeddings()
    scale = getattr(table, "embed_scale", None)
    if scale is not None:
        embeds = embeds * torch.as_tensor(scale, dtype=table.weight.dtype, device=rows.device).to(embeds.dtype)
    return embeds


def student_outputs(
    base_model: Any, mb: dict[str, Any], rows: torch.Tensor, tied: bool, d: int, unpadded: bool = False
) -> dict[str, torch.Tensor]:
    """Run the frozen base body on predicted rows; logits over the step's local vocabulary only.
    ``unpadded``: the body runs on each text's own tokens (:func:`~zett.training.teacher.per_row`)."""
    device = rows.device
    e_in = rows[:, :d]
    e_out = e_in if tied else rows[:, d:]
    ids = mb["student_input_ids"].to(device)
    mask = mb["student_attention_mask"].to(device)
    embeds = input_embeds(base_model, e_in, ids)
    body = base_model.get_decoder()

    def run(**kw: Any) -> dict[str, torch.Tensor]:
        return {"hidden": body(**kw).last_hidden_state}

    hidden = per_row(run, mask, unpadded, inputs_embeds=embeds.to(next(body.parameters()).dtype))["hidden"]
    logits = softcap(hidden.float() @ e_out.float().T, logit_softcap(base_model))
    logits = logits + mb["logit_offset"].to(device)  # sampled-softmax correction for uniform negatives
    return token_stats(logits, ids, mb["boundary"].to(device), mask)


def local_rows(model: nn.Module, mb: dict[str, Any]) -> torch.Tensor:
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
        rows = rows.index_copy(0, at, predicted.to(rows.dtype))  # bf16 under autocast
    return rows


class HypernetObjective:
    """:class:`zett.training.Objective` of hypernetwork training; ``net`` is the hypernetwork (unwrapped)."""

    def __init__(self, config: Any, net: nn.Module, base_model: Any, base_boundary: torch.Tensor, device: torch.device):
        self.config, self.net, self.base, self.device = config, net, base_model, device
        self.weights = dict(config.losses)
        self.teacher = Teacher(
            base_model,
            base_boundary,
            device,
            cache=config.cache_teacher,
            hidden=config.teacher_hidden,
            unpadded=config.unpadded,
        )
        # sft and lexical read only the student's side: no teacher forward pass unless lazy_teacher is off
        self.needs_teacher = not config.lazy_teacher or any(n not in TEACHER_FREE for n in self.weights)

    def split(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """Micro-batches: tensors with a batch dimension are split; the local vocabulary is shared."""
        shared = {k: v for k, v in batch.items() if k in SHARED}
        rest = {k: v for k, v in batch.items() if k not in shared}
        return [dict(m, **shared) for m in split_micro(rest, self.config.grad_accum)]

    def targets(self, mb: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.teacher.outputs(mb) if self.needs_teacher else {}

    def loss(
        self, model: nn.Module, mb: dict[str, Any], targets: dict[str, torch.Tensor], info: StepInfo
    ) -> tuple[torch.Tensor, dict[str, float]]:
        net = self.net
        rows = local_rows(model, mb)
        s_out = student_outputs(
            self.base, mb, rows, net.config.tied, net.config.embedding_dim, unpadded=self.config.unpadded
        )
        s_out.update(rows=rows, table=net.table)
        dev_mb = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in mb.items()}
        values = {}
        for name in self.weights:
            if name == "lexical":  # a local mean: share it like the globally normalised losses
                values[name] = get_loss(name)(targets, s_out, dev_mb) / (info.micro_batches * info.processes)
            else:
                kwargs = dict(self.config.alm) if name == "alm" else {}
                values[name] = get_loss(name)(targets, s_out, dev_mb, normalizer=info.counts[name], **kwargs)
        logged = {name: float(v.detach()) for name, v in values.items()}
        if self.config.balance and len(values) > 1 and rows.requires_grad:
            # every loss reaches the hypernetwork through the local rows alone
            total, weights = balanced_loss(values, rows, self.weights)
            logged.update({f"w_{name}": w / info.micro_batches for name, w in weights.items()})
            return total, logged
        return sum(self.weights[name] * values[name] for name in values), logged
