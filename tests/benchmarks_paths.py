"""Where the shared assets and the real models fetched by ../shared/assets/fetch_models.sh live."""

import os
from pathlib import Path

from zett.paths import REPO, models_dir

__all__ = ["assets_dir", "models_dir", "smollm2_gguf"]


def assets_dir() -> Path:
    """``$ZETT_ASSETS``, default ``../shared/assets`` beside the repository (SPEC §2a)."""
    return Path(os.environ.get("ZETT_ASSETS", REPO.parent / "shared" / "assets"))


def smollm2_gguf() -> Path | None:
    path = models_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None
