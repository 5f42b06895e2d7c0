"""Embedding predictors: one protocol, registered by name (SPEC §2a, §5.1).

A predictor maps (base model, base tokenizer, target tokenizer) to
:class:`~hypernet.embeddings.Embeddings` for every target id. Rows that the
transfer copies exactly (shared tokens, specials) may be anything here: the
caller overwrites them. Every predictor's constructor takes ``seed`` (ignored by
deterministic ones), so callers can pass it uniformly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..embeddings import Embeddings


class Predictor(Protocol):
    def predict(self, base_model: Any, base_tokenizer: Any, target_tokenizer: Any) -> Embeddings: ...


_REGISTRY: dict[str, Callable[..., Predictor]] = {}


def register_predictor(name: str) -> Callable[[type], type]:
    """Class decorator: ``@register_predictor("fvt")``."""

    def wrap(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"a predictor named {name!r} is already registered")
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return wrap


def get_predictor(name: str, **kwargs: Any) -> Predictor:
    """Instantiate the predictor registered as ``name`` with ``kwargs``."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**kwargs)


def available_predictors() -> list[str]:
    return sorted(_REGISTRY)


from . import baselines, fvt, hypernet  # noqa: E402,F401  (register the built-in predictors)

__all__ = ["Predictor", "register_predictor", "get_predictor", "available_predictors"]
