"""Reading and describing a model's embedding matrices."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Embeddings:
    """Predicted embedding matrices for a target vocabulary of size V.

    ``input``: Tensor[V, d]; ``output``: Tensor[V, d] or ``None`` when the
    model ties its input and output embeddings.
    """

    input: torch.Tensor
    output: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.input.dim() != 2:
            raise ValueError(f"input embeddings must be [V, d], got shape {tuple(self.input.shape)}")
        if self.output is not None and self.output.shape != self.input.shape:
            raise ValueError(
                f"output embeddings {tuple(self.output.shape)} differ from input {tuple(self.input.shape)}"
            )

    def matrices(self) -> list[torch.Tensor]:
        return [self.input] if self.output is None else [self.input, self.output]


def is_tied(model: nn.Module) -> bool:
    out = model.get_output_embeddings()
    if out is None:
        return True
    return out.weight is model.get_input_embeddings().weight or (
        out.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    )


def base_embeddings(model: nn.Module) -> Embeddings:
    """The model's own embedding matrices (views, not copies)."""
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if emb is None or not isinstance(getattr(emb, "weight", None), torch.Tensor):
        raise ValueError(
            f"{type(model).__name__} has no input embedding matrix (get_input_embeddings() returned "
            f"{type(emb).__name__}); zett needs a causal LM with token embeddings"
        )
    if is_tied(model):
        return Embeddings(emb.weight.detach())
    return Embeddings(emb.weight.detach(), model.get_output_embeddings().weight.detach())
