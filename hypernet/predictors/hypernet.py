"""The ``hypernet`` predictor: a trained :class:`~hypernet.model.Hypernet` behind the predictor protocol."""

from __future__ import annotations

from typing import Any

from ..embeddings import Embeddings
from ..overlap import exact_matches
from . import register_predictor


@register_predictor("hypernet")
class HypernetPredictor:
    """``hypernet``: a :class:`~hypernet.model.Hypernet` object, a directory, a shipped name or a Hub id.

    ``copy_overlap``: rows the transfer copies from the base anyway are not run through the network.
    ``matches``: the transfer's ``exact_matches(target, base, normal=copy_overlap)``, so it runs once per transfer.
    ``script_fallback``: which tokens get FVT rows (:func:`hypernet.scripts.fallback_tokens`).
    """

    def __init__(
        self,
        hypernet: Any = None,
        copy_overlap: bool = True,
        seed: int = 0,
        matches: Any = None,
        script_fallback: Any = True,
    ):
        if hypernet is None:
            raise ValueError(
                "method='hypernet' needs hypernet= (a path, a shipped name such as 'smollm2-135m', "
                "a Hub id, or a Hypernet object)"
            )
        self.hypernet, self.copy_overlap, self.matches = hypernet, copy_overlap, matches
        self.script_fallback = script_fallback

    def predict(self, base_model: Any, base_tokenizer: Any, target_tokenizer: Any) -> Embeddings:
        import torch

        from ..model import Hypernet

        net = self.hypernet
        if not isinstance(net, Hypernet):
            net = Hypernet.from_pretrained(net)
        if not net.is_bound:
            net.bind(base_model, base_tokenizer)
        else:
            net.check_base(base_model)
        skip = None
        if self.copy_overlap:
            t_ids = self.matches[0] if self.matches is not None else exact_matches(target_tokenizer, base_tokenizer)[0]
            skip = torch.zeros(len(target_tokenizer), dtype=torch.bool)
            skip[t_ids] = True
        net.eval()
        out = net.predict(target_tokenizer, skip=skip, matches=self.matches, script_fallback=self.script_fallback)
        self.fallback_rows = net.fallback_rows  # rows left to FVT (scripts the network did not train on)
        return out
