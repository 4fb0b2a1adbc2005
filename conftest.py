"""Session-wide settings for every test folder: caches inside the project, so compiles happen once."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"

# Set before any backend library is imported: httpstan and PyTensor read these at first use.
os.environ.setdefault("FRAMEWORK_CACHE_DIR", str(CACHE))
os.environ.setdefault("PYTENSOR_FLAGS", f"compiledir={CACHE / 'pytensor'}")
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_collection_modifyitems(config, items):
    """Run JAX-based tests (numpyro) last.

    pystan starts its sampler processes by forking; forking after JAX has started
    its thread pool can deadlock, so nothing that forks may run after JAX.
    """
    items.sort(key=lambda item: "numpyro" in item.nodeid.lower())
