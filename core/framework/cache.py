"""Where the framework keeps compiled models and other caches."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import platformdirs


def cache_dir(*parts: str) -> Path:
    """`$FRAMEWORK_CACHE_DIR` (or the user cache folder) joined with `parts`, created."""
    root = os.environ.get("FRAMEWORK_CACHE_DIR") or platformdirs.user_cache_dir("framework")
    path = Path(root).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(**parts) -> str:
    """A sha256 naming a cache entry from everything it depends on (text, numbers, lists)."""
    # sorted keys: the same parts give the same key whatever order the caller names them in
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
