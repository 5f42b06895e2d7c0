"""Where shared assets and fetched models live (both overridable by environment variables)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def assets_dir() -> Path:
    """``$ZETT_ASSETS``, default ``../shared/assets`` beside the repository (SPEC §2a)."""
    return Path(os.environ.get("ZETT_ASSETS", REPO.parent / "shared" / "assets"))


def models_dir() -> Path:
    """``$ZETT_ASSETS_CACHE``, default ``~/.cache/zett-assets`` (where fetch_models.sh puts the GGUFs)."""
    return Path(os.environ.get("ZETT_ASSETS_CACHE", Path.home() / ".cache" / "zett-assets"))
