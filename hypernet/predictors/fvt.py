"""FVT (fast vocabulary transfer): each target token is the mean of its base pieces."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from tokenizers_zoo import vocabulary

from ..decompose import Decomposer
from ..embeddings import Embeddings, base_embeddings
from . import register_predictor


def bag_mean(
    matrix: torch.Tensor, pieces: list[list[int]], fill: torch.Tensor, known: int | None = None
) -> torch.Tensor:
    """Row i = mean of ``matrix[pieces[i]]`` over ids < len(matrix) and < ``known`` (the decomposer's first
    fallback id, past which ids stand for bytes the base lacks); ``fill`` when none is left.

    Computed in fp32 with one ``embedding_bag`` call (no [V, K, d] tensor).
    """
    size = matrix.shape[0] if known is None else min(matrix.shape[0], known)
    kept = [[j for j in ids if j < size] for ids in pieces]
    lengths = torch.tensor([len(k) for k in kept], dtype=torch.long)
    flat = torch.tensor([j for k in kept for j in k], dtype=torch.long)
    offsets = torch.zeros(len(kept), dtype=torch.long)
    offsets[1:] = torch.cumsum(lengths, 0)[:-1]
    out = F.embedding_bag(flat, matrix.float(), offsets, mode="mean")
    empty = lengths == 0
    if empty.any():
        out[empty] = fill.float()
    return out


@register_predictor("fvt")
class FVTPredictor:
    """Mean of the base embeddings of the token's decomposition (SPEC §4.1).

    Bytes the base lacks are skipped; a token made only of such bytes gets the
    mean base embedding.
    """

    def __init__(self, max_subtokens: int | None = None, seed: int = 0):
        self.max_subtokens = max_subtokens  # seed: deterministic, unused

    def predict(self, base_model: Any, base_tokenizer: Any, target_tokenizer: Any) -> Embeddings:
        decomposer = Decomposer(base_tokenizer)
        pieces = decomposer(vocabulary(target_tokenizer).forms, self.max_subtokens)
        mats = [
            bag_mean(m, pieces, m.float().mean(0), known=decomposer.size)
            for m in base_embeddings(base_model).matrices()
        ]
        return Embeddings(*mats)
