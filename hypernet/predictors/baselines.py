"""Baselines: every row the mean embedding, or random rows with the base's statistics."""

from __future__ import annotations

from typing import Any

import torch

from ..embeddings import Embeddings, base_embeddings
from . import register_predictor


@register_predictor("mean")
class MeanPredictor:
    """All rows equal the mean of the base embedding matrix."""

    def __init__(self, seed: int = 0):
        del seed  # deterministic

    def predict(self, base_model: Any, base_tokenizer: Any, target_tokenizer: Any) -> Embeddings:
        size = len(target_tokenizer)
        mats = [
            m.float().mean(0, keepdim=True).expand(size, -1).clone() for m in base_embeddings(base_model).matrices()
        ]
        return Embeddings(*mats)


@register_predictor("random")
class RandomPredictor:
    """Rows drawn from N(mean, std) of the base embeddings, per dimension."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def predict(self, base_model: Any, base_tokenizer: Any, target_tokenizer: Any) -> Embeddings:
        gen = torch.Generator().manual_seed(self.seed)
        size = len(target_tokenizer)
        mats = []
        for m in base_embeddings(base_model).matrices():
            m = m.float()
            noise = torch.randn(size, m.shape[1], generator=gen)
            mats.append(m.mean(0) + noise * m.std(0))
        return Embeddings(*mats)
