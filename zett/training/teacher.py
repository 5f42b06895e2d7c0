"""A causal LM's per-token statistics for the losses, and the frozen teacher's side of a batch (cached per text:
the teacher's tokenization of a text never changes)."""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..losses import token_stats
from ..losses.stats import hidden_token_stats

RowExtra = Callable[[dict[str, Any], int, int, Any, int], dict[str, torch.Tensor]]
"""``extra(mb, row, text_index, logits, n)``: more per-text teacher values (``logits``: [n, V], or a function of a
position block ``(start, stop)``), e.g. BLD's byte distributions."""


def logit_softcap(model: Any) -> float | None:
    """The final logit soft-cap of a causal LM (Gemma), read from its text config; None when it has none."""
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "final_logit_softcapping", None)


def softcap(logits: torch.Tensor, cap: float | None) -> torch.Tensor:
    return torch.tanh(logits / cap) * cap if cap else logits


def output_projection(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """hidden [n, d] -> logits [n, V] of a causal LM, including a final logit soft-cap (Gemma)."""
    head, cap = model.get_output_embeddings(), logit_softcap(model)
    return lambda h: softcap(head(h), cap)


def lm_token_stats(model: Any, ids: torch.Tensor, mask: torch.Tensor, boundary: torch.Tensor
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor, Any]:
    """(token/boundary log-probs, final hidden states, hidden -> logits) of a causal LM, without ever holding
    the logits of more than a block of positions (a 262k vocabulary in fp32 would be ~1 GB per 1k tokens)."""
    body = getattr(model, model.base_model_prefix)
    hidden = body(input_ids=ids, attention_mask=mask).last_hidden_state
    project = output_projection(model)
    return hidden_token_stats(hidden, project, ids, boundary, mask), hidden, project


def forward_stats(model: Any, ids: torch.Tensor, mask: torch.Tensor, boundary: torch.Tensor, *, hidden: bool,
                  logits: bool) -> dict[str, torch.Tensor]:
    """Token/boundary log-probs of a full forward pass, plus the final hidden states and the logits if asked;
    outputs in fp32 (under bf16 autocast the model computes in bf16)."""
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=hidden)
    full = out.logits.float()
    stats = token_stats(full, ids, boundary, mask)
    if hidden:
        stats["hidden"] = out.hidden_states[-1].float()
    if logits:
        stats["logits"] = full
    return stats


class Teacher:
    """The teacher's statistics for micro-batches (``teacher_input_ids``, ``teacher_attention_mask``,
    ``text_index``), from the cache where possible. Only ULD (``logits``) needs full-batch logits and is never
    cached; otherwise the body runs once and logits exist a block of positions at a time."""

    def __init__(self, model: Any, boundary: torch.Tensor, device: torch.device, *, cache: bool = True,
                 hidden: bool = False, logits: bool = False, extra: RowExtra | None = None):
        self.model, self.boundary, self.device = model, boundary, device
        self.hidden, self.logits, self.extra = hidden, logits, extra
        self.use_cache = cache and not logits
        self.cache: dict[int, dict[str, torch.Tensor]] = {}

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[dict, Callable[[int], Any]]:
        """Statistics, and a function giving one row's logits (a tensor, or a function of a position block)."""
        if self.logits:
            out = forward_stats(self.model, ids, mask, self.boundary, hidden=self.hidden, logits=True)
            return out, lambda r: out["logits"][r]
        out, hidden, project = lm_token_stats(self.model, ids, mask, self.boundary)
        if self.hidden:
            out["hidden"] = hidden
        return out, lambda r: (lambda start, stop: project(hidden[r, start:stop]))

    def outputs(self, mb: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Per-token tensors padded to the micro-batch's teacher length; ``byte_*`` tensors (indexed by text byte
        offset) to the longest of the micro-batch."""
        ids, mask = mb["teacher_input_ids"].to(self.device), mb["teacher_attention_mask"].to(self.device)
        keys = mb["text_index"].tolist()
        if self.use_cache and all(k in self.cache for k in keys):
            rows = [self.cache[k] for k in keys]
        else:
            rows = []
            with torch.no_grad():
                out, row_logits = self.forward(ids, mask)
                for r, k in enumerate(keys):
                    n = int(mask[r].sum())
                    row = {name: v[r, :n].detach() for name, v in out.items()}
                    if self.extra is not None:
                        row.update(self.extra(mb, r, k, row_logits(r), n))
                    if self.use_cache:
                        row = self.cache[k] = {name: v.cpu() for name, v in row.items()}
                    rows.append(row)
        padded = {}
        for name in rows[0]:
            width = max(len(r[name]) for r in rows) if name.startswith("byte_") else ids.shape[1]
            padded[name] = torch.zeros((len(rows), width) + rows[0][name].shape[1:], dtype=rows[0][name].dtype)
            for r, row in enumerate(rows):
                padded[name][r, :len(row[name])] = row[name]
            padded[name] = padded[name].to(self.device)
        return padded
