"""Where the repository is and where fetched models are cached (``$ZETT_ASSETS_CACHE`` overrides the cache)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    """``$ZETT_ASSETS_CACHE``, default ``~/.cache/zett-assets`` (where fetch_models.sh puts the GGUFs)."""
    return Path(os.environ.get("ZETT_ASSETS_CACHE", Path.home() / ".cache" / "zett-assets"))
