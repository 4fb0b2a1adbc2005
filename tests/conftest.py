"""Session-wide settings: caches inside the project, so compiles happen once per machine."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"

# Set before any backend library is imported: httpstan and PyTensor read these at first use.
os.environ.setdefault("FRAMEWORK_CACHE_DIR", str(CACHE))
os.environ.setdefault("PYTENSOR_FLAGS", f"compiledir={CACHE / 'pytensor'}")
os.environ.setdefault("MPLBACKEND", "Agg")
