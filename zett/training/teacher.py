"""A causal LM's per-token statistics for the losses, and the frozen teacher's side of a batch (cached per text:
the teacher's tokenization of a text never changes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


def right_padded_lengths(mask: torch.Tensor) -> list[int] | None:
    """Each row's length when every row of ``mask`` [B, L] is ones then zeros (right padding); else None."""
    lengths = mask.sum(1)
    positions = torch.arange(mask.shape[1], device=mask.device)
    if not torch.equal(mask.bool(), positions[None, :] < lengths[:, None]):
        return None
    return lengths.tolist()


CALL_COST = 48
"""A forward call's fixed cost counted in positions: :func:`per_row` runs a row alone only where that saves more."""


def length_groups(lengths: list[int], call_cost: int | None = None) -> list[list[int]]:
    """Row indices in groups, each group one forward call as wide as its longest row, chosen so that the sum over
    groups of ``call_cost`` + width x rows is smallest (groups are runs of the rows sorted longest first)."""
    cost = CALL_COST if call_cost is None else call_cost
    order = sorted(range(len(lengths)), key=lambda r: -lengths[r])
    best, cut = [0] + [None] * len(order), [0] * (len(order) + 1)
    for i in range(1, len(order) + 1):
        for j in range(i):
            total = best[j] + cost + lengths[order[j]] * (i - j)
            if best[i] is None or total < best[i]:
                best[i], cut[i] = total, j
    groups, i = [], len(order)
    while i:
        groups.append(order[cut[i] : i])
        i = cut[i]
    return groups[::-1]


def per_row(
    run: Callable[..., dict[str, torch.Tensor]],
    mask: torch.Tensor,
    unpadded: bool = True,
    call_cost: int | None = None,
    **inputs: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """``run(attention_mask=..., **inputs)`` -> {name: [B, L, ...]}; with ``unpadded``, rows of right-padded
    ``mask`` run in groups of similar length (:func:`length_groups`), each only as wide as its longest row and
    without a mask when its rows are of one length, and the outputs are padded back with zeros: little or no
    compute on padding. A causal model's real positions never see the padding after them, so they get the same
    values to float tolerance; positions past a group's width hold zeros (within it, values computed on padding,
    as before). A mask that is not right padding: one call on the whole batch."""
    lengths = right_padded_lengths(mask) if unpadded else None
    if lengths is None or min(lengths) == 0:
        return run(attention_mask=mask, **inputs)
    groups = length_groups(lengths, call_cost)
    width = mask.shape[1]
    if len(groups) == 1 and max(lengths) == width:
        return run(attention_mask=None if min(lengths) == width else mask, **inputs)
    outs, order = [], []
    for group in groups:
        n = max(lengths[r] for r in group)
        idx = torch.tensor(group, device=mask.device)
        sub = {k: v.index_select(0, idx)[:, :n] for k, v in inputs.items()}
        same = all(lengths[r] == n for r in group)
        outs.append(run(attention_mask=None if same else mask.index_select(0, idx)[:, :n], **sub))
        order += group
    back = torch.argsort(torch.tensor(order, device=mask.device))
    return {name: torch.cat([_pad_positions(o[name], width) for o in outs]).index_select(0, back) for name in outs[0]}


def _pad_positions(x: torch.Tensor, width: int) -> torch.Tensor:
    """[b, n, ...] -> [b, width, ...] with zeros after position n."""
    return torch.nn.functional.pad(x, (0, 0) * (x.dim() - 2) + (0, width - x.shape[1]))


def lm_token_stats(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, boundary: torch.Tensor, *, unpadded: bool = False
) -> tuple[dict[str, torch.Tensor], torch.Tensor, Any]:
    """(token/boundary log-probs, final hidden states, hidden -> logits) of a causal LM, without ever holding
    the logits of more than a block of positions (a 262k vocabulary in fp32 would be ~1 GB per 1k tokens).
    ``unpadded``: the body runs on each row's own tokens (:func:`per_row`)."""
    body = getattr(model, model.base_model_prefix)

    def run(**kw: Any) -> dict[str, torch.Tensor]:
        return {"hidden": body(**kw).last_hidden_state}

    hidden = per_row(run, mask, unpadded, input_ids=ids)["hidden"]
    project = output_projection(model)
    return hidden_token_stats(hidden, project, ids, boundary, mask), hidden, project


def forward_stats(
    model: Any,
    ids: torch.Tensor,
    mask: torch.Tensor,
    boundary: torch.Tensor,
    *,
    hidden: bool,
    logits: bool,
    unpadded: bool = False,
) -> dict[str, torch.Tensor]:
    """Token/boundary log-probs of a full forward pass, plus the final hidden states and the logits if asked;
    outputs in fp32 (under bf16 autocast the model computes in bf16). ``unpadded``: each row's own tokens
    alone (:func:`per_row`)."""

    def run(**kw: Any) -> dict[str, torch.Tensor]:
        out = model(**kw, output_hidden_states=hidden)
        return {"logits": out.logits, **({"hidden": out.hidden_states[-1]} if hidden else {})}

    out = per_row(run, mask, unpadded, input_ids=ids)
    full = out["logits"].float()
    stats = token_stats(full, ids, boundary, mask)
    if hidden:
        stats["hidden"] = out["hidden"].float()
    if logits:
        stats["logits"] = full
    return stats


class Teacher:
    """The teacher's statistics for micro-batches (``teacher_input_ids``, ``teacher_attention_mask``,
    ``text_index``), from the cache where possible. Only ULD (``logits``) needs full-batch logits and is never
    cached; otherwise the body runs once and logits exist a block of positions at a time."""

    def __init__(
        self,
        model: Any,
        boundary: torch.Tensor,
        device: torch.device,
        *,
        cache: bool = True,
        hidden: bool = False,
        logits: bool = False,
        extra: RowExtra | None = None,
        unpadded: bool = False,
    ):
        self.model, self.boundary, self.device = model, boundary, device
        self.hidden, self.logits, self.extra, self.unpadded = hidden, logits, extra, unpadded
        self.use_cache = cache and not logits
        self.cache: dict[int, dict[str, torch.Tensor]] = {}

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[dict, Callable[[int], Any]]:
        """Statistics, and a function giving one row's logits (a tensor, or a function of a position block)."""
        if self.logits:
            out = forward_stats(
                self.model, ids, mask, self.boundary, hidden=self.hidden, logits=True, unpadded=self.unpadded
            )
            return out, lambda r: out["logits"][r]
        out, hidden, project = lm_token_stats(self.model, ids, mask, self.boundary, unpadded=self.unpadded)
        if self.hidden:
            out["hidden"] = hidden
        return out, lambda r: lambda start, stop: project(hidden[r, start:stop])

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
                padded[name][r, : len(row[name])] = row[name]
            padded[name] = padded[name].to(self.device)
        return padded
