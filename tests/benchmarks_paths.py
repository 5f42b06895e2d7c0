"""Where the real models fetched by ../shared/assets/fetch_models.sh live (None when not fetched)."""

import os
from pathlib import Path


def models_dir() -> Path:
    return Path(os.environ.get("ZETT_ASSETS_CACHE", Path.home() / ".cache" / "zett-assets"))


def smollm2_gguf() -> Path | None:
    path = models_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None
