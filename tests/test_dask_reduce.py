"""`data.engine: dask`: the reduction on a real LocalCluster (2 worker processes) agrees with the local one.

Statistics, group order, category levels, draws and bad-value messages are
compared with the local arrow reader on a partitioned dataset; a worker is
killed mid-reduction; an unreachable scheduler and a missing Dask extra go
through the real CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import framework
from fake_backend import FakePlugin
from framework.data import sources
from framework.data.load import read_file
from framework.errors import DataError
from framework.runner import run

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

TESTS = Path(__file__).resolve().parent
FORMULA = "y ~ x + c + (1 + x | g)"
# The CLI with the fake backend registered; `{block}` may hide modules before anything imports.
CLI = (
    "import sys; {block}sys.path.insert(0, {tests!r}); import framework; "
    "from fake_backend import FakePlugin; framework.register_plugin(FakePlugin(), name='fake'); "
    "from framework.cli import main; sys.exit(main(sys.argv[1:]))"
)
# Statistics are sums in another order (a tree of merges instead of a fold): equal up to
# rounding, far below 1e-9 relative for sums of 3,000 values of size ~100.
RTOL = 1e-9


@pytest.fixture(scope="module")
def cluster():
    """One cluster of 2 worker processes for the module (starting one costs seconds)."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},  # not 8787: other clusters may run
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """4 Parquet files (row groups of 500) and the same rows as 4 CSV files.

    Groups first appear in later files too, and the level 'z' of `c` only in the last file.
    """
    root = tmp_path_factory.mktemp("parts")
    (root / "parquet").mkdir()
    rng = np.random.default_rng(7)
    for i in range(4):
        n = 3000
        g = rng.integers(0, 20 + 10 * i, n)
        frame = pd.DataFrame(
            {
                "y": rng.normal(size=n) + 0.1 * g,
                "x": rng.normal(size=n) + 100.0,  # an offset: centred moments must keep precision
                "g": [f"g{v:02d}" for v in g],
                "c": rng.choice(["a", "b", "z"] if i == 3 else ["a", "b"], n),
            }
        )
        frame.to_parquet(root / "parquet" / f"part-{i}.parquet", row_group_size=500)
        frame.to_csv(root / f"part-{i}.csv", index=False)
    return root


def _same(local, remote):
    (m1, d1), (m2, d2) = local, remote
    assert d2.labels == d1.labels and d2.n_rows == d1.n_rows
    assert m2.columns == m1.columns
    np.testing.assert_array_equal(d2.stats.n, d1.stats.n)
    np.testing.assert_allclose(d2.stats.mean, d1.stats.mean, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(d2.stats.cross, d1.stats.cross, rtol=RTOL, atol=1e-9)


@pytest.mark.parametrize("pattern", ["parquet", "parquet/*.parquet", "*.csv"])
def test_dask_statistics_equal_the_local_ones(cluster, data, monkeypatch, pattern):
    # Small partitions: the Parquet files split into row-group ranges (several tasks per file).
    monkeypatch.setattr(sources, "PARTITION_ROWS", 1000)
    files = sources.data_files(data / pattern)
    assert len(files) == 4 and len(sources.partitions(files)) == (12 if "parquet" in pattern else 4)
    local = read_file(data / pattern, FORMULA, keep_rows=False)
    remote = read_file(data / pattern, FORMULA, engine="dask", dask={"client": cluster})
    _same(local, remote)
    assert len(local[1].labels) == 50  # groups g20..g49 appear only in later files


def test_a_level_seen_only_in_the_last_partition_is_in_the_design(cluster, data):
    model, dataset = read_file(data / "parquet", FORMULA, engine="dask", dask={"client": cluster})
    assert model.columns["c"].levels == ("a", "b", "z")
    z = model.term_names.index("c[z]")  # its column of the design W = [X, y]
    assert dataset.stats.mean[:, z].max() > 0  # rows with c = z were reduced


def test_both_engines_give_identical_draws_for_the_same_seed(cluster, data, tmp_path):
    framework.register_plugin(FakePlugin(), name="fake")
    try:
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            f"name: parts\ndata:\n  path: {data}/parquet/*.parquet\n"
            f"model:\n  formula: '{FORMULA}'\nbackend: {{name: fake}}\n"
            "sampler: {chains: 2, draws: 100, seed: 11}\noutput: {plots: false}\n"
        )
        arrow = run(spec, write=False)
        address = cluster.scheduler.address
        dask = run(spec, ["data.engine=dask", f"data.dask.address={address}"], write=False)
    finally:
        framework.unregister_plugin("fake")
    assert dask.dataset.labels == arrow.dataset.labels
    a, b = arrow.idata.posterior, dask.idata.posterior
    np.testing.assert_array_equal(b["beta"].values, a["beta"].values)  # from the seed alone
    # coef draws are drawn given the statistics: equal up to their rounding (see RTOL).
    np.testing.assert_allclose(b["coef"].values, a["coef"].values, rtol=1e-8, atol=1e-10)
    pd.testing.assert_frame_equal(dask.estimates, arrow.estimates, rtol=1e-8)


def _bad_files(root: Path) -> Path:
    rng = np.random.default_rng(3)
    for i in range(3):
        frame = pd.DataFrame(
            {
                "y": rng.normal(size=40),
                "x": rng.normal(size=40),
                "g": [f"g{k % 5}" for k in range(40)],
                "c": rng.choice(["a", "b"], 40),
            }  # fmt: skip
        ).astype({"y": object, "x": object})
        if i >= 1:
            frame.loc[[2, 30], "y"] = None  # missing values in two files
        frame.to_csv(root / f"bad-{i}.csv", index=False)
    return root / "bad-*.csv"


def _message(cluster, path, **kw) -> str:
    with pytest.raises(DataError) as local:
        read_file(path, FORMULA, **kw)
    with pytest.raises(DataError) as remote:
        read_file(path, FORMULA, engine="dask", dask={"client": cluster}, **kw)
    assert str(remote.value) == str(local.value)
    return str(local.value)


def test_bad_values_get_the_same_messages(cluster, tmp_path):
    path = _bad_files(tmp_path)
    text = _message(cluster, path)
    assert text.startswith(f"{tmp_path / 'bad-1.csv'}:4: 4 row(s) have a missing")
    assert "in bad-1.csv: line(s) 4, 32; in bad-2.csv: line(s) 4, 32" in text
    dropped = [read_file(path, FORMULA, missing="drop", keep_rows=False)[1],
               read_file(path, FORMULA, missing="drop", engine="dask", dask={"client": cluster})[1]]  # fmt: skip
    assert (
        dropped[0].warnings == dropped[1].warnings and "dropped 4 row(s)" in dropped[0].warnings[0]
    )
    frame = pd.read_csv(tmp_path / "bad-2.csv", dtype=str)
    frame.loc[7, "x"] = "oops"
    frame.to_csv(tmp_path / "bad-2.csv", index=False)
    text = _message(cluster, path)
    assert text.startswith(f"{tmp_path / 'bad-2.csv'}:9: column 'x'") and "'oops'" in text


def test_rows_of_a_split_parquet_file_are_named_by_their_row_in_the_file(
    cluster, tmp_path, monkeypatch
):
    monkeypatch.setattr(sources, "PARTITION_ROWS", 10)  # row groups of 10: 6 partitions
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "y": rng.normal(size=60),
            "x": rng.normal(size=60),
            "g": [f"g{k % 4}" for k in range(60)],
            "c": ["a", "b"] * 30,
        }  # fmt: skip
    )
    frame.loc[[25, 47], "y"] = np.nan
    frame.to_parquet(tmp_path / "one.parquet", row_group_size=10)
    text = _message(cluster, tmp_path / "one.parquet")  # the local reader reads it whole
    assert "row(s) 26, 48" in text


def test_a_worker_killed_mid_reduction_gives_the_same_result(cluster, data, tmp_path):
    from distributed.diagnostics.plugin import WorkerPlugin

    marker = str(tmp_path / "killed")

    class KillOnce(WorkerPlugin):  # defined here: pickled by value to the workers
        name = "framework-test-kill-once"

        def transition(self, key, start, finish, **kwargs):
            # The first reading task to start kills its worker process outright (no cleanup).
            if (
                finish == "executing"
                and "framework-read" in str(key)
                and not os.path.exists(marker)
            ):
                Path(marker).write_text(str(os.getpid()))
                os._exit(1)

    cluster.register_plugin(KillOnce())
    try:
        remote = read_file(data / "parquet", FORMULA, engine="dask", dask={"client": cluster})
    finally:
        cluster.unregister_worker_plugin(KillOnce.name)
    assert Path(marker).exists()  # a worker did die in the middle of the reduction
    _same(read_file(data / "parquet", FORMULA, keep_rows=False), remote)


def _cli(args: list[str], block: str = "", cwd: Path | None = None):
    code = CLI.format(block=block, tests=str(TESTS))
    env = {**os.environ, "FRAMEWORK_LOAD_PLUGINS": ""}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=cwd)  # fmt: skip


def _spec(tmp_path: Path, data: Path, dask: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"name: parts\ndata:\n  path: {data}/*.csv\n  engine: dask\n{dask}"
        f"model:\n  formula: '{FORMULA}'\nbackend: {{name: fake}}\n"
        "sampler: {chains: 1, draws: 10}\noutput: {plots: false}\n"
    )
    return spec


def test_an_unreachable_scheduler_is_a_clear_error_within_seconds(data, tmp_path):
    spec = _spec(tmp_path, data, "  dask: {address: 'tcp://127.0.0.1:9'}\n")  # port 9: nothing
    start = time.monotonic()
    done = _cli(["run", str(spec), "-o", str(tmp_path / "out")])
    seconds = time.monotonic() - start
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after the progress lines
    assert last.startswith(f"{spec}:5: data.dask.address: cannot reach the Dask scheduler")
    assert "tcp://127.0.0.1:9" in last and "Traceback" not in done.stderr
    assert seconds < 60  # CONNECT_SECONDS is 5; the rest is interpreter start-up on a busy box


def test_engine_dask_without_dask_installed_says_how_to_install_it(data, tmp_path):
    spec = _spec(tmp_path, data, "")
    block = "sys.modules['dask'] = None; sys.modules['distributed'] = None; "  # as if not installed
    done = _cli(["run", str(spec), "-o", str(tmp_path / "out")], block=block)
    assert done.returncode == 2, done.stderr
    assert "pip install 'framework[dask]'" in done.stderr
    assert "spec.yaml:4: data.engine:" in done.stderr and "Traceback" not in done.stderr
