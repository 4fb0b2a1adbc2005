"""Keep nutpie's C callbacks across processes (its PyTensor functions: model_cache).

nutpie compiles a PyMC model in two layers: PyTensor's Numba functions for
the log density and its gradient (cached on disk by PyTensor, keyed by the
graph, its constants included), and two small C callbacks around them that
nutpie builds with `numba.cfunc`. Numba can cache those callbacks
(`cache=True`), but keys them by a pickle of their closure, which holds
freshly generated functions and so differs in every process: they were
compiled again every time, ~6 s even for a tiny model. Here they are keyed
by what they compute instead: their own bytecode and closure values, with
the PyTensor functions they call standing for PyTensor's own cache key, and
the library versions. The entries live in cache_dir("numba").
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import sys
import tempfile
import types
from importlib.metadata import version

from framework import cache_dir

# nutpie's callbacks, by module and qualified name (see nutpie.compile_pymc)
CALLBACKS = {
    "_make_c_logp_func.<locals>.logp_numba",
    "_make_c_expand_func.<locals>.expand_numba",
}
_installed = False


def use_framework_cache() -> None:
    """Put PyTensor's compile caches (C modules, Numba functions) in cache_dir("pytensor").

    Effective only before PyTensor is first imported, and only when the user has not
    chosen a compile directory already (PYTENSOR_FLAGS with compiledir or base_compiledir).
    """
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "pytensor" in sys.modules or "compiledir" in flags:
        return
    folder = f"base_compiledir={cache_dir('pytensor')}"
    os.environ["PYTENSOR_FLAGS"] = f"{flags},{folder}" if flags else folder


def install() -> bool:
    """Teach Numba (once per process) where and under which key nutpie's callbacks are cached.

    False when this Numba lacks the internals used: then nothing is cached (nor written).
    """
    global _installed
    if _installed:
        return True
    try:
        from numba.core.caching import Cache, CacheImpl, _CacheLocator
    except ImportError:
        return False

    class Locator(_CacheLocator):
        """Puts a nutpie callback in cache_dir("numba") under a key naming what it computes."""

        def __init__(self, py_func, py_file, key: str | None):
            self._py_func, self._py_file, self.key = py_func, py_file, key
            self._path = str(cache_dir("numba")) if key else _scratch()

        def ensure_cache_path(self):
            pass

        def get_cache_path(self):
            return self._path

        def get_source_stamp(self):
            return self.key or ""

        def get_disambiguator(self):
            return (self.key or "uncached")[:32]

        @classmethod
        def from_function(cls, py_func, py_file):
            if not _is_callback(py_func):
                return None
            return cls(py_func, py_file, callback_key(py_func))

    index_key = Cache._index_key

    def keyed_index(self, sig, codegen):
        locator = getattr(self._impl, "_locator", None)
        if isinstance(locator, Locator):
            # what the callback computes, not a pickle of this process's closure
            return (sig, codegen.magic_tuple(), locator.key or id(self))
        return index_key(self, sig, codegen)

    CacheImpl._locator_classes.insert(0, Locator)
    Cache._index_key = keyed_index
    _installed = True
    return True


def was_hit(compiled) -> bool:
    """Whether both of a nutpie CompiledPyMCModel's callbacks were loaded from the cache."""
    callbacks = [
        getattr(compiled, name, None) for name in ("compiled_logp_func", "compiled_expand_func")
    ]
    return all(getattr(f, "_cache_hits", 0) > 0 for f in callbacks)


def callback_key(func) -> str | None:
    """A sha256 of everything `func` compiles to, or None when part of it cannot be named."""
    parts = [version(name) for name in ("nutpie", "numba", "pytensor")]
    described = _describe(func, depth=0)
    if described is None:
        return None
    return hashlib.sha256(repr((parts, described)).encode()).hexdigest()


def _describe(obj, depth: int):
    """A stable text for a closure value; None for anything not known to be stable."""
    if depth > 6:
        return None
    if obj is None or obj is Ellipsis or isinstance(obj, bool | int | float | str | bytes):
        return repr(obj)
    if isinstance(obj, tuple | list | frozenset):
        items = [_describe(item, depth + 1) for item in obj]
        return None if None in items else f"({', '.join(items)})"
    import numpy as np

    if isinstance(obj, np.dtype):
        return f"dtype({obj.str!r}, {obj.descr!r})"
    if isinstance(obj, np.generic):  # e.g. nutpie's n_dim, an np.int64
        return f"{type(obj).__name__}({obj!r})"
    if isinstance(obj, types.ModuleType):  # e.g. `numba` itself, versioned above
        return f"module {obj.__name__}"
    py_func = getattr(obj, "py_func", None)  # a Numba dispatcher: what it wraps
    if py_func is not None and callable(py_func):
        return _describe(py_func, depth + 1)
    code = getattr(obj, "__code__", None)
    if code is None:
        return None
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    if obj in CACHED_SRC_FUNCTIONS:  # PyTensor's key covers the graph and its constants
        return f"pytensor:{CACHED_SRC_FUNCTIONS[obj]}"
    cells = [_describe(cell.cell_contents, depth + 1) for cell in obj.__closure__ or ()]
    consts = [_describe(c, depth + 1) for c in code.co_consts if not hasattr(c, "co_code")]
    # Globals are compiled in as constants too: each must be named (e.g. a module), or no key.
    scope = getattr(obj, "__globals__", {})
    names = [(n, _describe(scope[n], depth + 1)) for n in code.co_names if n in scope]
    if None in cells or None in consts or any(d is None for _, d in names):
        return None
    digest = hashlib.sha256(code.co_code).hexdigest()
    return f"{obj.__module__}.{obj.__qualname__}:{digest}:{cells}:{consts}:{names}"


def _is_callback(func) -> bool:
    return getattr(func, "__module__", "") == "nutpie.compile_pymc" and (
        getattr(func, "__qualname__", "") in CALLBACKS
    )


_scratch_dir: str | None = None


def _scratch() -> str:
    """A folder removed at exit: where callbacks that cannot be keyed are written, never reused."""
    global _scratch_dir
    if _scratch_dir is None:
        _scratch_dir = tempfile.mkdtemp(prefix="framework_numba_")
        atexit.register(shutil.rmtree, _scratch_dir, True)
    return _scratch_dir
