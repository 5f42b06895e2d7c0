"""``zett.ensemble``: average the next-token probabilities of models that share a tokenizer (SPEC §5.6).

The wrapper's ``logits`` are log of the weighted mean probability, so
``bits_per_byte`` scores the ensemble like any model and ``generate`` samples
from the mixture.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutputWithPast

from .evaluate.tasks import cache_of, with_cache


def _is_zero(keep: int | torch.Tensor) -> bool:
    return isinstance(keep, int) and keep == 0


class EnsembleCache:
    """The members' key/value caches of one :class:`Ensemble` forward, in member order."""

    def __init__(self, caches: Sequence[Any]):
        if any(c is None for c in caches):
            raise ValueError("an ensemble member returned no key/value cache; call it with use_cache=False")
        self.caches = list(caches)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Select (and repeat) batch rows of every member's cache, as ``Cache.reorder_cache`` does for one."""
        for cache in self.caches:
            cache.reorder_cache(beam_idx)


class Ensemble(nn.Module):
    """Mixture of causal LMs over one vocabulary: p(x) = Σ_k w_k p_k(x)."""

    def __init__(self, models: Sequence[nn.Module], weights: Sequence[float] | None = None):
        super().__init__()
        if len(models) < 1:
            raise ValueError("ensemble needs at least one model")
        sizes = {m.get_output_embeddings().weight.shape[0] for m in models}
        if len(sizes) != 1:
            raise ValueError(
                f"ensemble members have different vocabulary sizes {sorted(sizes)}; transfer them to "
                "one shared tokenizer first (zett.transfer)"
            )
        weights = list(weights) if weights is not None else [1.0] * len(models)
        if len(weights) != len(models) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"weights must be {len(models)} non-negative numbers with a positive sum, got {weights}")
        self.members = nn.ModuleList(models)
        self.register_buffer("log_weights", torch.log(torch.tensor(weights, dtype=torch.float32) / sum(weights)))
        self.config = models[0].config

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: EnsembleCache | None = None,
        use_cache: bool = False,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """Log of the weighted mean of the members' next-token probabilities. With ``use_cache`` the output holds
        an :class:`EnsembleCache` (one key/value cache per member), which a later call takes back as ``cache``
        (or ``past_key_values``), as a single model's cache."""
        cache = cache if cache is not None else kwargs.get("past_key_values")
        logps, caches = [], []
        for k, m in enumerate(self.members):
            extra: dict[str, Any] = {"logits_to_keep": logits_to_keep} if not _is_zero(logits_to_keep) else {}
            if position_ids is not None:
                extra["position_ids"] = position_ids
            if cache is not None:
                extra.update(with_cache(m, cache.caches[k]))
            out = m(input_ids=input_ids, attention_mask=attention_mask, use_cache=use_cache, **extra)
            logps.append(out.logits.float().log_softmax(-1))
            caches.append(cache_of(out) if use_cache else None)
        stacked = torch.stack(logps, 0) + self.log_weights.to(logps[0].device)[:, None, None, None]
        return CausalLMOutputWithPast(
            logits=torch.logsumexp(stacked, 0), cache=EnsembleCache(caches) if use_cache else None
        )

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        *,
        max_new_tokens: int = 20,
        do_sample: bool = False,
        temperature: float = 1.0,
        eos_token_id: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Greedy or sampled continuation of ``input_ids`` [B, L] (rows of equal length, no padding): the prompt
        runs once, then one token per step through the members' key/value caches."""
        out = input_ids
        done = torch.zeros(out.shape[0], dtype=torch.bool, device=out.device)
        step = self(out, use_cache=True, logits_to_keep=1)
        for i in range(max_new_tokens):
            logits = step.logits[:, -1]
            if do_sample:
                probs = (logits / max(temperature, 1e-6)).softmax(-1)
                nxt = torch.multinomial(probs, 1, generator=generator)[:, 0]
            else:
                nxt = logits.argmax(-1)
            if eos_token_id is not None:
                nxt = torch.where(done, torch.full_like(nxt, eos_token_id), nxt)
                done |= nxt == eos_token_id
            out = torch.cat([out, nxt[:, None]], dim=1)
            if i + 1 == max_new_tokens or (eos_token_id is not None and bool(done.all())):
                break
            positions = torch.full_like(nxt[:, None], out.shape[1] - 1)
            step = self(nxt[:, None], position_ids=positions, cache=cache_of(step), use_cache=True)
        return out


def ensemble(models: Sequence[nn.Module], weights: Sequence[float] | None = None) -> Ensemble:
    """Ensemble ``models`` (same vocabulary) with mixture ``weights`` (default: equal)."""
    return Ensemble(models, weights)


def best_weights(models: Sequence[nn.Module], tokenizer: Any, texts: Sequence[str], grid: int = 5) -> list[float]:
    """Mixture weights minimising bits per byte on ``texts`` (grid search over the simplex; 2-3 members). Each
    member runs once: the mixture of every candidate is formed from the members' token log-probabilities."""
    from .evaluate import token_logprobs

    if len(models) > 3:
        raise ValueError("best_weights searches a grid for at most 3 members")
    if len(models) == 1:
        return [1.0]
    steps = [i / grid for i in range(grid + 1)]
    if len(models) == 2:
        candidates = [[a, 1 - a] for a in steps]
    else:
        candidates = [[a, b, 1 - a - b] for a in steps for b in steps if a + b <= 1 + 1e-9]
    limits = [getattr(m.config, "max_position_embeddings", None) or 2048 for m in models]
    length = min([2048] + limits)  # one window layout for all members: their tokens line up
    members = torch.stack([token_logprobs(m, tokenizer, texts, max_length=length)[0].double() for m in models])
    bits = [
        -float(
            torch.logsumexp(members + torch.tensor(w, dtype=torch.float64).clamp(min=1e-300).log()[:, None], 0).sum()
        )
        for w in candidates
    ]
    return candidates[min(range(len(bits)), key=bits.__getitem__)]
