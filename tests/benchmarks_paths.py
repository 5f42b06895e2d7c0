"""Where the real models fetched by ../shared/assets/fetch_models.sh live (None when not fetched)."""

from pathlib import Path

from zett.paths import models_dir

__all__ = ["models_dir", "smollm2_gguf"]


def smollm2_gguf() -> Path | None:
    path = models_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None
