"""Make the packages named in FRAMEWORK_BLOCK_IMPORTS unimportable, as if they were not installed.

Put this folder on PYTHONPATH: Python imports `sitecustomize` at start-up.
tests/test_extras.py uses it to run the CLI without a backend's extra, and
benchmarks/latency.py --stan-only to time a run as `framework[stan]` alone installs it.
"""

import importlib.util
import os
import sys

BLOCKED = {n.strip() for n in os.environ.get("FRAMEWORK_BLOCK_IMPORTS", "").split(",") if n.strip()}


class BlockImports:
    """A meta path finder that refuses the blocked top-level packages and their submodules."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named '{fullname}'", name=fullname)
        return None


def _find_spec(name, package=None, _real=importlib.util.find_spec):
    """As importlib.util.find_spec, but None for a blocked package, as when it is not installed."""
    if name.partition(".")[0] in BLOCKED:
        return None
    return _real(name, package)


if BLOCKED:
    sys.meta_path.insert(0, BlockImports())
    importlib.util.find_spec = _find_spec
