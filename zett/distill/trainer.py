"""What distillation brings to the shared training runtime (:mod:`zett.training`): the trainable set, the losses'
heads, and the objective (teacher statistics, the student's forward pass, the weighted losses) (SPEC §5.3)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..losses import TEACHER_FREE, balanced_weights, get_loss
from ..losses.bld import ByteHead, ByteTrie, beam_byte_probs, path_byte_probs
from ..training import StepInfo
from ..training.teacher import Teacher, forward_stats
from .config import DistillConfig
from .data import NO_OFFSET, split_micro

BLD_LOSS_KEYS = ("token_weight", "byte_weight", "kl_weight")


def untie_embeddings(model: Any) -> Any:
    """Give a model whose output layer shares the input embedding matrix an output matrix of its own (a copy), and
    record it in its config (``tie_word_embeddings: false``) so that saving and loading keep the two apart."""
    out, inp = model.get_output_embeddings(), model.get_input_embeddings()
    if out is None or out.weight.data_ptr() != inp.weight.data_ptr():
        return model
    out.weight = nn.Parameter(inp.weight.detach().clone(), requires_grad=inp.weight.requires_grad)
    for cfg in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
        cfg.tie_word_embeddings = False
    return model


def prepare_trainable(model: Any, config: DistillConfig) -> Any:
    """Untie the embeddings if asked; freeze what the trainable set excludes; wrap with LoRA for
    ``embeddings+lora``."""
    if config.untie_embeddings:
        untie_embeddings(model)
    if config.trainable == "full":
        model.requires_grad_(True)
        return model
    if config.trainable == "embeddings+lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules="all-linear", bias="none"
        )
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


class DistillObjective:
    """Distillation's part of a step (:class:`zett.training.Objective`): micro-batches of ``grad_accum``, the
    teacher's statistics as targets, and the configured losses of the student against them."""

    def __init__(
        self,
        config: DistillConfig,
        teacher: Any,
        student_boundary: torch.Tensor,
        teacher_boundary: torch.Tensor,
        device: torch.device,
        *,
        heads: nn.ModuleDict | None = None,
        teacher_trie: ByteTrie | None = None,
        texts: Any = None,
    ):
        """``teacher_trie``: the teacher's vocabulary by bytes (BLD); ``texts``: the texts by index (BLD's
        ``beam`` method)."""
        self.config, self.device, self.boundary = config, device, student_boundary
        self.heads = heads if heads is not None else nn.ModuleDict()
        self.weights = dict(config.losses)
        self.trie, self.texts = teacher_trie, texts
        self.logits = "uld" in config.losses
        self.hidden = config.teacher_hidden or bool(config.byte_targets) or config.balance
        self.teacher = Teacher(
            teacher,
            teacher_boundary,
            device,
            cache=config.cache_teacher,
            hidden=config.teacher_hidden,
            logits=self.logits,
            extra=self.teacher_bytes if config.byte_targets else None,
            unpadded=config.unpadded,
        )
        self.needs_teacher = not config.lazy_teacher or any(n not in TEACHER_FREE for n in self.weights)

    def split(self, batch: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return split_micro(batch, self.config.grad_accum)

    def targets(self, mb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.teacher.outputs(mb) if self.needs_teacher else {}

    def loss(
        self, model: nn.Module, mb: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], info: StepInfo
    ) -> tuple[torch.Tensor, dict[str, float]]:
        ids = mb["student_input_ids"].to(self.device)
        mask = mb["student_attention_mask"].to(self.device)
        # one forward call per step under DDP (its reducer expects that); several rows alone otherwise
        unpadded = self.config.unpadded and not isinstance(model, nn.parallel.DistributedDataParallel)
        s_out = forward_stats(
            model, ids, mask, self.boundary, hidden=self.hidden, logits=self.logits, unpadded=unpadded
        )
        dev_mb = {k: v.to(self.device) for k, v in mb.items()}
        values = {
            name: get_loss(name)(targets, s_out, dev_mb, normalizer=info.counts[name], **self.loss_kwargs(name))
            for name in self.weights
        }
        logged = {name: float(v.detach()) for name, v in values.items()}
        weights = self.weights
        if self.config.balance and len(values) > 1:
            weights = balanced_weights(values, s_out["hidden"], weights)
            logged.update({f"w_{name}": w / info.micro_batches for name, w in weights.items()})
        return sum(weights[name] * values[name] for name in values), logged

    def loss_kwargs(self, name: str) -> dict[str, Any]:
        """Keyword arguments of loss ``name``: its config section, plus the trainable head it owns."""
        if name == "alm":
            kwargs = dict(self.config.alm)
            if "hidden_proj" in self.heads:
                kwargs["hidden_proj"] = self.heads["hidden_proj"]
            return kwargs
        if name == "bld":
            return {k: v for k, v in self.config.bld.items() if k in BLD_LOSS_KEYS} | {"head": self.heads["bld"]}
        return {}

    def teacher_bytes(
        self, mb: dict[str, torch.Tensor], row: int, key: int, logits: Any, n: int
    ) -> dict[str, torch.Tensor]:
        """BLD's teacher side for one text (``n`` tokens; ``logits`` [n, V] or by position block): next-byte
        distributions at every text byte its tokens cover."""
        ids = mb["teacher_input_ids"][row, :n].tolist()
        offsets = mb["teacher_byte_offset"][row, :n].tolist()
        trie = self.trie
        ends = [o + len(trie.forms[i]) for o, i in zip(offsets, ids) if o != NO_OFFSET]
        n_bytes = max(ends, default=0)
        if self.config.bld.get("method", "path") == "path":
            probs, covered = path_byte_probs(logits, ids, offsets, trie, n_bytes)
        else:  # marginalise over tokenizations of the teacher's own byte stream (a prefix space included)
            shift = next((o for o in offsets if o != NO_OFFSET), 0)
            stream = self.texts[key].encode("utf-8")[:n_bytes]
            stream = b" " + stream if shift < 0 else stream
            beam = beam_byte_probs(self.teacher.model, ids[0], stream, trie, int(self.config.bld.get("beam", 4)))
            probs = beam[-shift:] if shift < 0 else beam
            covered = torch.ones(len(probs), dtype=torch.bool)
        return {"byte_probs": probs.half(), "byte_covered": covered}
