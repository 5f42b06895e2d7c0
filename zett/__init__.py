"""zett: give any causal language model a new tokenizer.

>>> import zett
>>> model, tokenizer = zett.load_model("path/to/model")
>>> new_model, new_tokenizer = zett.transfer(model, "byte")
>>> zett.evaluate.bits_per_byte(new_model, new_tokenizer, ["some text"])
"""

__version__ = "0.1.0"

from hypernet import Embeddings, Hypernet, HypernetConfig, available_predictors, get_predictor, register_predictor  # noqa: E402

from . import evaluate, losses  # noqa: E402
from .data import read_texts  # noqa: E402
from .distill import DistillConfig, distill  # noqa: E402
from .ensemble import Ensemble, best_weights, ensemble  # noqa: E402
from .export import export, model_card  # noqa: E402
from .hypertrain import HypernetTrainConfig, train_hypernet  # noqa: E402
from .models import load_model  # noqa: E402
from .transfer import transfer  # noqa: E402

__all__ = [
    "DistillConfig",
    "Hypernet",
    "HypernetConfig",
    "HypernetTrainConfig",
    "train_hypernet",
    "Embeddings",
    "Ensemble",
    "best_weights",
    "distill",
    "ensemble",
    "__version__",
    "available_predictors",
    "evaluate",
    "export",
    "get_predictor",
    "load_model",
    "losses",
    "model_card",
    "read_texts",
    "register_predictor",
    "transfer",
]
