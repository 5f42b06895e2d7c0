"""hypernet: predicting embeddings for any vocabulary (SPEC §4).

Heuristic predictors (``fvt``, ``mean``, ``random``) live here beside the
hypernetwork. Imports ``tokenizers_zoo``, never ``zett``.
"""

from .decompose import Decomposer
from .embeddings import Embeddings, base_embeddings, is_tied
from .overlap import exact_matches
from .predictors import Predictor, available_predictors, get_predictor, register_predictor

__all__ = ["Decomposer", "Embeddings", "Predictor", "available_predictors", "base_embeddings",
           "exact_matches", "get_predictor", "is_tied", "register_predictor"]
