"""posterior.nc written by the direct h5netcdf writer: the file xarray's writer writes, read back the same.

Each check compares against xarray's own writer run on the same Datasets, at the
HDF5 level (dtypes, chunks, filters, fill values, attributes, values, order) and
as every reader sees it (xarray, `Posterior.from_netcdf`, arviz).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from cli_driver import leftovers, snapshot
from xarray.testing import assert_identical

import framework
from fake_backend import FakePlugin
from framework import Posterior, runner
from framework.backends import netcdf_writer
from framework.backends.netcdf_writer import write_netcdf, write_with_xarray
from framework.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
RAINFALL = ROOT / "specs" / "rainfall.yaml"


def groups() -> dict[str, xr.Dataset]:
    """Every kind of variable a posterior holds, and a few it might."""
    rng = np.random.default_rng(7)
    chains = {"chain": [0, 1], "draw": np.arange(6)}
    sd = np.abs(rng.normal(size=(2, 6)))
    sd[0, 2] = np.nan
    posterior = xr.Dataset(
        {
            "sigma": (("chain", "draw"), sd, {"units": "mm", "long_name": "residual sd"}),
            "beta": (("chain", "draw", "term"), rng.normal(size=(2, 6, 3)).astype(np.float32)),
            "coef": (("chain", "draw", "group", "term"), rng.normal(size=(2, 6, 4, 3))),
            "count": (("chain", "draw"), rng.integers(0, 9, (2, 6))),
            "flag": ((), np.uint16(3), {"note": "a scalar"}),
            "label": (("group",), np.array(["a", "bé", "", "d d"], dtype=object)),
            "loose": (("x",), np.arange(5.0), {"long_name": "a dimension with no coordinate"}),
        },
        coords={**chains, "term": ["Intercept", "year_numeric", "x:z"], "group": list("ABCD")},
        attrs={
            "created_at": "2026-12-01T00:00:00",
            "inference_library": "pystan",
            "seed": 1234,
            "sampling_seconds": 0.25,
            "chains_used": np.array([0, 1]),
            "warmups": [100, 200],
            "engines": ["pystan", "cmdstanpy"],
            "empty": "",
        },
    )
    sample_stats = xr.Dataset(
        {
            "diverging": (("chain", "draw"), rng.random((2, 6)) > 0.7),
            "tree_depth": (("chain", "draw"), rng.integers(1, 6, (2, 6))),
            "lp": (("chain", "draw"), rng.normal(size=(2, 6))),
        },
        coords=chains,
    )
    observed = xr.Dataset(coords={"group": np.array(["AL", "AK", "AZ"], dtype=object)})
    return {
        "posterior": posterior,
        "sample_stats": sample_stats,
        "observed_data": observed,  # coordinates only
        "constant_data": xr.Dataset(),  # nothing at all
    }


def hdf5_layout(path: Path) -> list:
    """Everything about a file a reader can see, in creation order (object references aside)."""

    def attrs(obj) -> dict:
        out = {}
        for key in obj.attrs:
            value = obj.attrs[key]
            if key in ("REFERENCE_LIST", "DIMENSION_LIST"):  # addresses inside the file
                value = len(value)
            out[key] = (type(value).__name__, getattr(value, "dtype", None), repr(value))
        return out

    def walk(group, name) -> list:
        items = [(name, attrs(group), list(group))]
        for key, obj in group.items():
            if isinstance(obj, h5py.Group):
                items += walk(obj, f"{name}/{key}")
            else:
                settings = (obj.dtype, h5py.check_string_dtype(obj.dtype), obj.shape, obj.chunks)
                filters = (obj.compression, obj.compression_opts, obj.shuffle, repr(obj.fillvalue))
                items.append((f"{name}/{key}", settings, filters, attrs(obj), repr(obj[()])))
        return items

    with h5py.File(path, "r") as f:
        return walk(f, "")


def read_back(path: Path, group: str) -> xr.Dataset:
    with xr.open_dataset(path, group=group, engine="h5netcdf") as ds:
        return ds.load()


@pytest.fixture
def fell_back(monkeypatch) -> list:
    """Records each time the direct writer hands a file to xarray's writer."""
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        return write_with_xarray(*args, **kwargs)

    monkeypatch.setattr(netcdf_writer, "write_with_xarray", spy)
    return calls


@pytest.mark.parametrize("compress", [True, False], ids=["compressed", "raw"])
def test_the_file_is_the_one_xarrays_writer_writes(tmp_path, compress, fell_back):
    written = groups()
    write_with_xarray(written, tmp_path / "xarray.nc", compress)
    write_netcdf(written, tmp_path / "direct.nc", compress)
    assert fell_back == []
    assert hdf5_layout(tmp_path / "direct.nc") == hdf5_layout(tmp_path / "xarray.nc")
    for name, ds in written.items():
        direct, reference = (
            read_back(tmp_path / "direct.nc", name),
            read_back(tmp_path / "xarray.nc", name),
        )
        assert_identical(direct, reference)
        assert_identical(direct, ds)
        assert {k: v.dtype for k, v in direct.variables.items()} == {
            k: v.dtype for k, v in reference.variables.items()
        }
        for key, var in ds.variables.items():  # strings come back as U or O, as from xarray's
            if var.dtype.kind not in "UO":
                assert direct[key].dtype == var.dtype, key
    with h5py.File(tmp_path / "direct.nc") as f:
        stored = f["sample_stats/diverging"]  # xarray's encoding of booleans, which it decodes
        assert stored.dtype == np.int8 and stored.attrs["dtype"] == "bool"
        assert (stored.compression == "gzip") is compress


def test_every_reader_gets_back_what_was_written(tmp_path):
    import arviz as az

    posterior = Posterior(**groups())
    posterior.to_netcdf(tmp_path / "posterior.nc")
    write_with_xarray(dict(posterior._groups), tmp_path / "xarray.nc", True)
    ours = Posterior.from_netcdf(tmp_path / "posterior.nc")
    theirs = az.from_netcdf(str(tmp_path / "posterior.nc"), engine="h5netcdf")
    assert ours.groups() == posterior.groups()
    for name in posterior.groups():
        assert_identical(ours[name], posterior[name])
    # arviz leaves out the groups without data variables, from xarray's file as from ours
    with_data = [g for g in posterior.groups() if posterior[g].data_vars]
    assert theirs.groups() == with_data == ["posterior", "sample_stats"]
    assert az.from_netcdf(str(tmp_path / "xarray.nc"), engine="h5netcdf").groups() == with_data
    for name in with_data:
        assert_identical(theirs[name], posterior[name])
    assert ours.sample_stats["diverging"].dtype == theirs.sample_stats["diverging"].dtype == bool
    assert theirs.sample_stats["tree_depth"].dtype == np.int64
    assert np.isnan(theirs.posterior["sigma"].values[0, 2])


@pytest.mark.parametrize("compress", [True, False], ids=["compressed", "raw"])
def test_a_posterior_read_back_is_written_again_as_xarray_would(tmp_path, compress, fell_back):
    # Read back, variables carry encodings; compressed, to_netcdf's `encoding` replaces those of
    # the numbers and the strings' own say nothing, so the direct writer takes it. Raw, the
    # numbers' encodings still ask for zlib: xarray's writer honours them, so it writes the file.
    Posterior(**groups()).to_netcdf(tmp_path / "first.nc")
    again = Posterior.from_netcdf(tmp_path / "first.nc")
    again.to_netcdf(tmp_path / "direct.nc", compress=compress)
    write_with_xarray(
        {name: again[name] for name in again.groups()},
        tmp_path / "xarray.nc",
        compress,
    )
    assert len(fell_back) == (0 if compress else 1)
    assert hdf5_layout(tmp_path / "direct.nc") == hdf5_layout(tmp_path / "xarray.nc")


def _with_dask(ds):
    pytest.importorskip("dask.array")
    return ds.assign(sigma=ds["sigma"].chunk({"chain": 1}))


# What the direct writer leaves to xarray's encoders, each made into a posterior group.
ONLY_XARRAY = {
    "datetime coordinate": lambda ds: ds.assign_coords(draw=np.arange(6).astype("M8[D]")),
    "objects that are not all str": lambda ds: ds.assign(
        label=("group", np.array(["a", None, "c", "d"], dtype=object))  # None is written ""
    ),
    "dask array": _with_dask,
    "non-dimension coordinate": lambda ds: ds.assign_coords(year=("draw", np.arange(6) + 2000)),
    "a _FillValue attribute": lambda ds: ds.assign(count=ds["count"].assign_attrs(_FillValue=-1)),
    "a CF encoding": lambda ds: _scaled(ds.copy()),
    "bytes": lambda ds: ds.assign(code=("group", np.array([b"a", b"b", b"c", b"d"]))),
}


def _scaled(ds):
    ds["packed"] = ds["sigma"].copy()
    ds["packed"].encoding = {"scale_factor": 0.5, "dtype": "int16", "_FillValue": -1}
    return ds


@pytest.mark.parametrize("case", list(ONLY_XARRAY))
def test_what_only_xarrays_encoders_know_is_written_by_them(tmp_path, case, fell_back):
    written = groups()
    written["posterior"] = ONLY_XARRAY[case](written["posterior"])
    posterior = Posterior(**written)
    posterior.to_netcdf(tmp_path / "posterior.nc", compress=False)
    write_with_xarray(written, tmp_path / "xarray.nc", compress=False)
    assert len(fell_back) == 1
    for name in written:
        assert_identical(
            read_back(tmp_path / "posterior.nc", name), read_back(tmp_path / "xarray.nc", name)
        )


REFUSED = {
    "objects of mixed types": (
        lambda ds: ds.assign(label=("group", np.array(["a", 2, "c", "d"], dtype=object))),
        "mixed native types",
    ),
    "a numpy bool attribute": (lambda ds: ds.assign_attrs(warm=np.bool_(True)), "Invalid value"),
    "a slash in a name": (lambda ds: ds.rename(sigma="a/b"), "Forward slashes"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_what_xarrays_writer_refuses_is_refused_with_its_message(tmp_path, case):
    change, message = REFUSED[case]
    written = groups()
    written["posterior"] = change(written["posterior"])
    with pytest.raises((ValueError, TypeError), match=message):
        Posterior(**written).to_netcdf(tmp_path / "posterior.nc")


IMPORTS = """
import json, sys
sys.path.insert(0, {tests!r})
from test_netcdf_writer import groups
from framework import Posterior
from framework.backends import netcdf_writer
posterior = Posterior(**groups())
before = set(sys.modules)
if sys.argv[2] == "xarray":
    netcdf_writer.write_with_xarray(dict(posterior._groups), sys.argv[1], True)
else:
    posterior.to_netcdf(sys.argv[1])
added = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("dask", "distributed"))
print(json.dumps({{"added": added, "loaded": [m for m in ("dask", "distributed") if m in sys.modules]}}))
"""


def test_writing_posterior_nc_imports_neither_dask_nor_distributed(tmp_path):
    def imported(writer: str) -> dict:
        code = IMPORTS.format(tests=str(Path(__file__).parent))
        done = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / f"{writer}.nc"), writer],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONWARNINGS": ""},
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    direct = imported("direct")
    assert direct["added"] == [] and "distributed" not in direct["loaded"], direct
    # The control: xarray's writer imports distributed (to look for a dask scheduler).
    assert "distributed" in imported("xarray")["added"]


RUN = """
import json, sys
from framework.backends import netcdf_writer
from framework.cli.main import main
fell_back, xarrays = [], netcdf_writer.write_with_xarray
netcdf_writer.write_with_xarray = lambda *args: fell_back.append(args) or xarrays(*args)
code = main(sys.argv[1:])
loaded = [m for m in ("dask", "distributed") if m in sys.modules]
print(json.dumps({"code": code, "fell_back": len(fell_back), "loaded": loaded}))
"""


def test_a_framework_run_writes_a_posterior_nc_arviz_reads(tmp_path):
    import arviz as az

    out = tmp_path / "run"
    settings = ["sampler.draws=100", "sampler.warmup=100", "sampler.chains=2", "output.plots=false"]
    args = ["run", str(RAINFALL), "-o", str(out), "-q"] + [
        a for s in settings for a in ("--set", s)
    ]
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "FRAMEWORK_LOAD_PLUGINS": "stan"},
    )
    assert done.returncode == 0, done.stderr
    ran = json.loads(done.stdout.splitlines()[-1])
    # the real sampler's posterior takes the direct path, and no run stage imports distributed
    assert ran["code"] == 0 and ran["fell_back"] == 0 and "distributed" not in ran["loaded"], ran
    idata = az.from_netcdf(str(out / "posterior.nc"), engine="h5netcdf")
    ours = Posterior.from_netcdf(out / "posterior.nc")
    assert idata.groups() == ours.groups()
    assert {"posterior", "sample_stats"} <= set(idata.groups())
    for name in ours.groups():
        assert_identical(idata[name], ours[name])
    # the file xarray's writer makes of the same posterior (a run this size is compressed)
    write_with_xarray({g: ours[g] for g in ours.groups()}, tmp_path / "xarray.nc", True)
    assert hdf5_layout(out / "posterior.nc") == hdf5_layout(tmp_path / "xarray.nc")
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 100
    assert idata.sample_stats["diverging"].dtype == bool
    assert list(idata.posterior["term"].values) == ["Intercept", "year_numeric"]


# ---------------------------------------------------------------- posterior.nc written in a thread

VALID = ROOT / "tests" / "bad_inputs" / "valid.yaml"
FAKE = ["backend.name=fake", "output.plots=false"]


@pytest.fixture
def earlier_run(tmp_path):
    """A finished run directory made with the fake backend (registered for the test), its snapshot."""
    framework.register_plugin(FakePlugin(), name="fake-netcdf")
    try:
        target = tmp_path / "runs" / "valid"
        framework.run(VALID, FAKE, output_dir=target)
        yield target, snapshot(target)
    finally:
        framework.unregister_plugin("fake-netcdf")


def _unchanged(target: Path, before: dict) -> bool:
    return snapshot(target) == before and leftovers(target) == []


@pytest.mark.parametrize(
    ("error", "expected", "message"),
    [
        (OSError(28, "No space left on device"), UserError, "cannot write the run directory"),
        (ValueError("cannot store this"), ValueError, "cannot store this"),
    ],
    ids=["disk-error", "other-error"],
)
def test_a_failed_background_write_fails_the_run_as_before(
    earlier_run, monkeypatch, error, expected, message
):
    writers = []

    def failing(self, path, compress=True):
        writers.append(threading.current_thread().name)
        Path(path).write_bytes(b"half a file")
        raise error

    monkeypatch.setattr(Posterior, "to_netcdf", failing)
    target, before = earlier_run
    with pytest.raises(expected, match=message) as raised:
        framework.run(VALID, [*FAKE, "sampler.seed=2"], output_dir=target)
    # the thread's exception, raised in the caller (a disk error made one line, as ever)
    assert type(raised.value) is expected and writers == ["posterior.nc"]
    assert _unchanged(target, before)


def test_a_failed_summary_removes_the_folder_only_after_the_background_write(
    earlier_run, monkeypatch
):
    to_netcdf, finished = Posterior.to_netcdf, []

    def slow(self, path, compress=True):
        time.sleep(0.5)  # still writing when the summary fails
        to_netcdf(self, path, compress)
        finished.append(Path(path).is_file())

    def failing_summary(prepared, idata):
        raise RuntimeError("summary failed")

    monkeypatch.setattr(Posterior, "to_netcdf", slow)
    monkeypatch.setattr(runner, "summarise", failing_summary)
    target, before = earlier_run
    with pytest.raises(RuntimeError, match="summary failed"):
        framework.run(VALID, [*FAKE, "sampler.seed=2"], output_dir=target)
    assert finished == [True]  # its folder was there until it was done
    assert _unchanged(target, before)


def test_a_second_ctrl_c_still_waits_for_the_background_write(earlier_run, monkeypatch):
    # The first Ctrl-C fails the summary; a second one lands while the run waits for the
    # writer: the folder must still outlive the write, then the interrupt goes on.
    to_netcdf, finished = Posterior.to_netcdf, []

    def slow(self, path, compress=True):
        time.sleep(0.5)
        to_netcdf(self, path, compress)
        finished.append(Path(path).is_file())

    def interrupted_summary(prepared, idata):
        raise KeyboardInterrupt

    join, calls = threading.Thread.join, []

    def join_interrupted_once(self, timeout=None):
        if self.name == "posterior.nc" and not calls:
            calls.append(self)
            raise KeyboardInterrupt  # the second Ctrl-C
        return join(self, timeout)

    monkeypatch.setattr(Posterior, "to_netcdf", slow)
    monkeypatch.setattr(runner, "summarise", interrupted_summary)
    monkeypatch.setattr(threading.Thread, "join", join_interrupted_once)
    target, before = earlier_run
    with pytest.raises(KeyboardInterrupt):
        framework.run(VALID, [*FAKE, "sampler.seed=2"], output_dir=target)
    assert calls and finished == [True]
    assert _unchanged(target, before)
