"""Reading in batches: the same Dataset whatever the batch size, and memory that grows with groups."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import framework
from framework import DataError
from framework.data import table_files
from framework.data.dataset import Dataset
from framework.data.load import read_file
from framework.model.statistics import GroupStats

ROOT = Path(__file__).resolve().parents[1]
RAINFALL = ROOT / "specs" / "rainfall.yaml"


def _rows(n=200, groups=13, seed=3):
    """Rows whose labels keep appearing late (so later batches add groups) and some gaps."""
    rng = np.random.default_rng(seed)
    g = np.array([f"g{int(k)}" for k in np.minimum(rng.integers(0, groups, n), np.arange(n) // 10)])
    x = rng.normal(1e6, 3, n)  # a large offset: the merged centred sums must stay exact
    y = 2.0 + 0.5 * (x - 1e6) + rng.normal(size=n)
    return g, x, y


def _write(tmp_path, kind, g, x, y, text_y=None):
    if kind == "parquet":
        path = tmp_path / "d.parquet"
        pq.write_table(pa.table({"g": g, "x": x, "y": y}), path)
        return path
    path = tmp_path / "d.csv"
    ys = text_y if text_y is not None else [repr(float(v)) if np.isfinite(v) else "" for v in y]
    lines = [f"{a},{b!r},{c}" for a, b, c in zip(g, x.tolist(), ys, strict=True)]
    path.write_text("g,x,y\n" + "\n".join(lines) + "\n")
    return path


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of a few rows, so a 200-row file is read in dozens of them."""
    monkeypatch.setattr(table_files, "BATCH_ROWS", 7)
    monkeypatch.setattr(table_files, "CSV_BLOCK_BYTES", 300)


def _whole(path, **kw):
    return read_file(path, "y ~ x + (x || g)", **kw)[1]


def _direct(ds):
    """The statistics of a Dataset's rows reduced in one piece."""
    return GroupStats.from_rows(ds.codes, np.column_stack([ds.X, ds.y]), ds.n_groups)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_many_batches_give_the_dataset_one_batch_gives(tmp_path, kind, monkeypatch):
    g, x, y = _rows()
    y[[5, 120, 121]] = np.nan  # dropped rows in several batches; g0 only appears in a dropped row
    g[5] = "only_in_a_dropped_row"
    path = _write(tmp_path, kind, g, x, y)
    one = _whole(path, missing="drop")
    assert one.n_rows == 197 and "only_in_a_dropped_row" not in one.labels
    monkeypatch.setattr(table_files, "BATCH_ROWS", 7)
    monkeypatch.setattr(table_files, "CSV_BLOCK_BYTES", 300)
    many = _whole(path, missing="drop")
    assert many.labels == one.labels
    np.testing.assert_array_equal(many.codes, one.codes)
    assert many.digest() == one.digest()
    assert many.warnings == one.warnings and "dropped 3 row(s)" in many.warnings[0]
    # The merged statistics equal a direct reduction of the kept rows, to rounding.
    for name, value in _direct(one).as_dict().items():
        np.testing.assert_allclose(getattr(many.stats, name), value, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_statistics_only_read_matches_the_rows(tmp_path, kind, small_batches):
    path = _write(tmp_path, kind, *_rows())
    rows, stats_only = _whole(path), _whole(path, keep_rows=False)
    assert rows.has_rows and not stats_only.has_rows
    assert stats_only.y is None and stats_only.n_rows == rows.n_rows == 200
    assert stats_only.labels == rows.labels and stats_only.digest() == rows.digest()
    for name, value in rows.stats.as_dict().items():
        np.testing.assert_array_equal(getattr(stats_only.stats, name), value)
    # A limit keeps the rows only when the file has at most that many.
    assert _whole(path, keep_rows=200).has_rows and not _whole(path, keep_rows=199).has_rows


def test_digest_does_not_depend_on_how_rows_were_held(tmp_path):
    path = _write(tmp_path, "parquet", *_rows())
    ds = _whole(path)
    copy = Dataset(ds.labels, y=ds.y, X=ds.X, codes=ds.codes)
    assert copy.digest() == ds.digest() == ds.without_rows().digest()
    changed = Dataset(ds.labels, y=ds.y + 1e-9, X=ds.X, codes=ds.codes)
    assert changed.digest() != ds.digest()


def test_every_bad_value_is_counted_across_batches(tmp_path, small_batches):
    g, x, y = _rows()
    text = [repr(float(v)) for v in y]
    text[2], text[180] = "abc", "n/a?"
    path = _write(tmp_path, "csv", g, x, y, text_y=text)
    with pytest.raises(DataError) as err:
        _whole(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:4:") and "2 value(s) are not" in msg
    assert "line(s) 4, 182" in msg and "'abc'" in msg


def test_missing_values_in_late_batches_are_all_refused(tmp_path, small_batches):
    g, x, y = _rows()
    y[[150, 160, 170, 180, 185, 190, 199]] = np.nan
    path = _write(tmp_path, "csv", g, x, y)
    with pytest.raises(DataError) as err:
        _whole(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:152:") and "7 row(s)" in msg
    assert "line(s) 152, 162, 172, 182, 187 and 2 more" in msg


def test_memory_while_reading_grows_with_groups_not_rows(tmp_path, monkeypatch):
    # 2 million rows of y ~ x + (x || g) hold 64 MB as kept rows (y, X with 2 columns, codes);
    # read in 64k-row batches without keeping them, what NumPy allocates at once must stay a
    # small fraction of that, and no more than for a quarter of the rows.
    n, groups = 2_000_000, 1_000
    rng = np.random.default_rng(0)
    labels = pa.array([f"s{i:04d}" for i in range(groups)]).dictionary_encode()
    codes = pa.array(rng.integers(0, groups, n).astype(np.int32))
    g = pa.DictionaryArray.from_arrays(codes, labels.dictionary)
    table = pa.table({"g": g, "x": rng.normal(size=n), "y": rng.normal(size=n)})
    path, quarter = tmp_path / "big.parquet", tmp_path / "quarter.parquet"
    pq.write_table(table, path)
    pq.write_table(table.slice(0, n // 4), quarter)
    del table, g, codes
    monkeypatch.setattr(table_files, "BATCH_ROWS", 1 << 16)

    def peak_mb(keep_rows, file=path):
        tracemalloc.start()
        try:
            ds = _whole(file, keep_rows=keep_rows)
            return tracemalloc.get_traced_memory()[1] / 1e6, ds
        finally:
            tracemalloc.stop()

    streamed_mb, streamed = peak_mb(False)
    held_mb, held = peak_mb(True)
    quarter_mb, _ = peak_mb(False, quarter)
    rows_mb = 32 * n / 1e6
    assert held_mb > rows_mb  # the measure sees the rows when they are kept ...
    assert streamed_mb < rows_mb / 8  # ... and they are never held when not
    # Per-batch work is the same whatever the file's length (1.5: allocator noise).
    assert streamed_mb < 1.5 * quarter_mb
    assert streamed.n_groups == held.n_groups == groups and streamed.n_rows == n


def test_a_run_without_rows_gives_the_same_posterior(tmp_path):
    # Method marginal samples from the per-group statistics only, so with the same seed a
    # statistics-only run must reproduce the draws of a run that kept the rows, exactly.
    small = ["sampler.chains=2", "sampler.warmup=200", "sampler.draws=200", "sampler.seed=5"]
    small += ["output.plots=false"]
    rows = framework.run(RAINFALL, small, output_dir=tmp_path / "rows")
    stats = framework.run(
        RAINFALL, small + ["output.observed_data=false"], output_dir=tmp_path / "s"
    )
    for name in ("beta", "group_sd", "sigma", "coef"):
        np.testing.assert_array_equal(rows.idata.posterior[name], stats.idata.posterior[name])
    saved = framework.load_posterior(tmp_path / "s")
    assert "observed_data" not in saved.groups()
    cd = saved.constant_data
    assert list(cd["n"].coords["group"].values) == stats.dataset.labels
    np.testing.assert_array_equal(cd["cross"].values, rows.dataset.stats.cross)
    assert (
        cd.attrs["rows"] == rows.dataset.n_rows and cd.attrs["data_sha256"] == rows.dataset.digest()
    )
    assert stats.diagnostics["data"]["rows_in_posterior"] is False
    assert rows.diagnostics["data"]["rows_in_posterior"] is True
    assert "y" in framework.load_posterior(tmp_path / "rows").observed_data
