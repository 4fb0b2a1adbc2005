"""Where the framework keeps compiled models and other caches."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir(*parts: str) -> Path:
    """`$FRAMEWORK_CACHE_DIR` (or the user cache folder) joined with `parts`, created."""
    root = os.environ.get("FRAMEWORK_CACHE_DIR") or platformdirs.user_cache_dir("framework")
    path = Path(root).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
