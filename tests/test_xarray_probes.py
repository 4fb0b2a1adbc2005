"""xarray builds the posterior without importing dask or sparse, and still knows their arrays.

Each check runs in a fresh interpreter: whether a module is imported is a fact about
a process, and pytest's own process has imported dask long before.
"""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import pytest
from test_light_paths import _python as python_with_builtin_plugins

ROOT = Path(__file__).resolve().parents[1]
RAINFALL = ROOT / "specs" / "rainfall.yaml"
PROBED = ("dask", "sparse", "numba")  # dask.array imports sparse, which imports numba


def _python(code: str, *args: str) -> dict:
    done = python_with_builtin_plugins(code, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


RUN = """
import json, sys
from framework.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "imported": [m for m in %r if m in sys.modules]}))
"""


@pytest.mark.skipif(find_spec("dask") is None, reason="dask is not installed: nothing to probe")
def test_a_run_builds_and_writes_its_posterior_without_importing_dask(tmp_path):
    args = ["run", str(RAINFALL), "-o", str(tmp_path / "run"), "-q"]
    args += ["--set", "output.plots=false", "--set", "sampler.draws=100"]
    args += ["--set", "sampler.warmup=100"]
    result = _python(RUN % (PROBED,), *args)
    assert result == {"code": 0, "imported": []}
    assert (tmp_path / "run" / "posterior.nc").stat().st_size > 0


DASK_LATER = """
import json, sys
import numpy as np
from framework.backends.xarray_probes import import_xarray
xr = import_xarray()
plain = xr.Dataset({"x": ("a", np.arange(10.0))})  # asks "is this a dask array?": no import
before = "dask.array" in sys.modules
import dask.array as da
lazy = xr.Dataset({"y": ("a", da.arange(10.0, chunks=5))})
chunked = plain.chunk({"a": 4})
print(json.dumps({
    "before": before,
    "lazy_chunks": list(lazy.chunks["a"]),
    "lazy_is_dask": type(lazy["y"].data).__module__.startswith("dask"),
    "chunked": list(chunked.chunks["a"]),
    "sum": float((lazy["y"] + chunked["x"]).sum().compute()),
}))
"""


@pytest.mark.skipif(find_spec("dask") is None, reason="dask is not installed")
def test_xarray_still_knows_dask_arrays_once_dask_is_imported():
    result = _python(DASK_LATER)
    assert result["before"] is False
    assert result["lazy_chunks"] == [5, 5] and result["lazy_is_dask"]
    assert result["chunked"] == [4, 4, 2]
    assert result["sum"] == 90.0  # 2 * (0 + 1 + ... + 9): still lazy, computed by dask


SPARSE_LATER = """
import json
import numpy as np
from framework.backends.xarray_probes import import_xarray
xr = import_xarray()
xr.DataArray(np.zeros(3))
import sparse
from xarray.namedarray.pycompat import array_type
wrapped = xr.DataArray(sparse.COO.from_numpy(np.eye(3)), dims=("a", "b"))
print(json.dumps({
    "known": array_type("sparse") == (sparse.SparseArray,),
    "kept": isinstance(wrapped.data, sparse.COO),
    "dense": wrapped.data.todense().tolist(),
}))
"""


@pytest.mark.skipif(find_spec("sparse") is None, reason="sparse is not installed")
def test_xarray_still_knows_sparse_arrays_once_sparse_is_imported():
    result = _python(SPARSE_LATER)
    assert result == {"known": True, "kept": True, "dense": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}
