"""xarray without its 0.9 s probe of dask and sparse when no array is one of theirs.

Of every array it wraps, xarray asks `isinstance(data, dask.array.Array)` (and
of some, `sparse.SparseArray`), importing the library to get the class the
first time it asks. With the `all` extras installed, dask.array imports sparse,
which imports numba and scipy: 0.8 s of a 5 s rainfall run that holds no dask
or sparse array anywhere. An object of a class can exist only once the class's
module has been imported, so while `dask.array` (or `sparse`) is not in
sys.modules the answer is "not one of those". `import_xarray` hands xarray a
record per library that answers from sys.modules, and defers to xarray's own
record (importing the library as xarray would) as soon as the library is loaded
or xarray asks for its version.
"""

from __future__ import annotations

import sys

# xarray's name for the library -> the module that defines its array class
ARRAY_MODULES = {"dask": "dask.array", "sparse": "sparse"}


def import_xarray():
    """The xarray module, its dask and sparse probes answered without importing them."""
    import xarray

    try:
        from xarray.namedarray import pycompat

        cache = pycompat._cached_duck_array_modules
        real = pycompat.DuckArrayModule
    except (ImportError, AttributeError):  # another xarray layout: it probes as it always did
        return xarray
    for name, module in ARRAY_MODULES.items():
        if name not in cache and module not in sys.modules:
            cache[name] = _DeferredArrayModule(name, module, real)
    _defer_dask_collection_check()
    return xarray


def _defer_dask_collection_check() -> None:
    # xarray also asks dask.base whether each array is a dask collection (dask and jinja2:
    # 0.14 s); none is one while dask itself was never imported.
    from xarray.namedarray import utils

    asks_dask = getattr(utils, "is_dask_collection", None)
    if asks_dask is None or getattr(asks_dask, "deferred", False):
        return

    def is_dask_collection(x) -> bool:
        return "dask" in sys.modules and asks_dask(x)

    is_dask_collection.deferred = True
    utils.is_dask_collection = is_dask_collection


class _DeferredArrayModule:
    """xarray's DuckArrayModule for `name`, built only once its array module is loaded."""

    def __init__(self, name: str, module: str, real):
        self._name, self._module, self._real_class = name, module, real
        self._real = None

    def _loaded(self):
        if self._real is None:
            self._real = self._real_class(self._name)
        return self._real

    @property
    def type(self) -> tuple:
        if self._real is None and self._module not in sys.modules:
            return ()  # nothing can be an instance of a class that was never imported
        return self._loaded().type

    @property
    def module(self):
        return self._loaded().module

    @property
    def version(self):
        return self._loaded().version

    @property
    def available(self) -> bool:
        return self._loaded().available

    def __getattr__(self, name: str):  # whatever a later xarray adds to its record
        return getattr(self._loaded(), name)
