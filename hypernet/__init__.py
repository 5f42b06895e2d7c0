"""hypernet: predicting embeddings for any vocabulary (SPEC §4).

Heuristic predictors (``fvt``, ``mean``, ``random``) live here beside the
hypernetwork. Imports ``tokenizers_zoo``, never ``zett``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zett")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"

from .decompose import Decomposer  # noqa: E402
from .embeddings import Embeddings, base_embeddings, is_tied  # noqa: E402
from .model import Hypernet, HypernetConfig, fingerprint  # noqa: E402
from .overlap import exact_matches  # noqa: E402
from .predictors import Predictor, available_predictors, get_predictor, register_predictor  # noqa: E402

__all__ = [
    "Decomposer",
    "Embeddings",
    "Hypernet",
    "HypernetConfig",
    "fingerprint",
    "Predictor",
    "available_predictors",
    "base_embeddings",
    "exact_matches",
    "get_predictor",
    "is_tied",
    "register_predictor",
]
