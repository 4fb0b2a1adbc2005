"""The v2 data stage: column scan (kinds, levels, reference), any design in the streaming reduction,
simulation of any model, and the v1 simulate block drawing the numbers it always drew."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from framework import DataError, SpecError
from framework.data import table_files
from framework.data.load import load, read_file
from framework.data.simulate import simulated_frame
from framework.model.statistics import GroupStats
from framework.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[1]
FORMULA = "y ~ x + trt + clinic + x:trt + (x | g)"


def _rows(n=240, seed=11):
    """Rows with a 1e6 offset in x, a text factor whose level 'late' appears only at the end,
    and clinic codes (numbers) meant as labels."""
    rng = np.random.default_rng(seed)
    g = np.array([f"g{k}" for k in rng.integers(0, 9, n)])
    x = rng.normal(1e6, 2.0, n)
    trt = rng.choice(["placebo", "drug"], n).astype(object)
    trt[-3:] = "late"
    clinic = rng.choice([101, 7, 20], n)
    y = 1.0 + 0.5 * (x - 1e6) + (trt == "drug") + 0.1 * clinic + rng.normal(size=n)
    return {"g": g, "x": x, "trt": trt, "clinic": clinic, "y": y}


def _write(tmp_path, kind, cols):
    if kind == "parquet":
        path = tmp_path / "d.parquet"
        pq.write_table(
            pa.table({k: list(v) if v.dtype == object else v for k, v in cols.items()}), path
        )
        return path
    path = tmp_path / "d.csv"
    names = list(cols)
    lines = [",".join(repr(v) if isinstance(v, float) else str(v) for v in row)
             for row in zip(*(cols[c].tolist() for c in names), strict=True)]  # fmt: skip
    path.write_text(",".join(names) + "\n" + "\n".join(lines) + "\n")
    return path


def _small_batches(monkeypatch):
    monkeypatch.setattr(table_files, "BATCH_ROWS", 7)
    monkeypatch.setattr(table_files, "CSV_BLOCK_BYTES", 400)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_many_tiny_batches_give_the_statistics_of_one(tmp_path, kind, monkeypatch):
    path = _write(tmp_path, kind, _rows())
    declared = {"clinic": None}
    model, one = read_file(path, FORMULA, declared)
    _small_batches(monkeypatch)
    model_many, many = read_file(path, FORMULA, declared)
    # The level seen only in the last rows is found by the scan, in sorted place.
    assert model.columns["trt"].levels == ("drug", "late", "placebo")
    assert model.columns["clinic"].levels == ("7", "20", "101")  # numeric order, no ".0"
    assert model_many.term_names == model.term_names
    assert "trt[late]" in model.term_names and "x:trt[late]" in model.term_names
    assert many.labels == one.labels and many.digest() == one.digest()
    np.testing.assert_array_equal(many.X, one.X)
    # Merged centred statistics equal a direct reduction, despite the 1e6 offset in x.
    direct = GroupStats.from_rows(one.codes, np.column_stack([one.X, one.y]), one.n_groups)
    np.testing.assert_array_equal(many.stats.n, direct.n)
    np.testing.assert_allclose(many.stats.mean, direct.mean, rtol=1e-12, atol=1e-9)
    # x:trt is 0 or 1e6: its cross-products with x cancel by 1e12, so each entry is compared
    # on the scale of its two columns' spreads, sqrt(C_aa C_bb) (Cauchy-Schwarz bounds it).
    diag = np.sqrt(np.einsum("jkk->jk", direct.cross))
    scale = diag[:, :, None] * diag[:, None, :] + 1e-300
    assert np.max(np.abs(many.stats.cross - direct.cross) / scale) < 1e-9
    # The design is the Model's: X from the rows equals Model.design of the raw columns.
    cols = _rows()
    assert np.array_equal(np.asarray(one.labels)[one.codes], cols["g"])
    raw = {**cols, "clinic": np.array([str(c) for c in cols["clinic"]])}
    np.testing.assert_array_equal(one.X, model.design(raw))


def test_csv_and_parquet_give_the_same_model_and_data(tmp_path):
    cols = _rows()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    m1, d1 = read_file(_write(tmp_path / "a", "csv", cols), FORMULA, {"clinic": None})
    m2, d2 = read_file(_write(tmp_path / "b", "parquet", cols), FORMULA, {"clinic": None})
    assert m1.columns == m2.columns and m1.term_names == m2.term_names
    assert d1.digest() == d2.digest()


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_rows_and_statistics_only_reads_agree(tmp_path, kind, monkeypatch):
    path = _write(tmp_path, kind, _rows())
    _small_batches(monkeypatch)
    _, rows = read_file(path, FORMULA, {"clinic": None})
    _, stats = read_file(path, FORMULA, {"clinic": None}, keep_rows=False)
    assert not stats.has_rows and stats.n_rows == rows.n_rows and stats.labels == rows.labels
    assert stats.digest() == rows.digest() == rows.without_rows().digest()
    for name, value in rows.stats.as_dict().items():
        np.testing.assert_array_equal(getattr(stats.stats, name), value)


def test_a_declared_reference_level_comes_first(tmp_path):
    path = _write(tmp_path, "csv", _rows())
    model, ds = read_file(path, FORMULA, {"clinic": "101", "trt": "placebo"})
    assert model.columns["clinic"].levels == ("101", "7", "20")
    assert model.columns["trt"].levels == ("placebo", "drug", "late")
    assert "trt[drug]" in model.term_names and "trt[placebo]" not in model.term_names
    assert "clinic[7]" in model.term_names and "clinic[101]" not in model.term_names


def test_numeric_codes_read_as_text_are_the_same_levels(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("g,k,y\na,1,1\na, 2.0,2\nb,10,3\nb,2,4\nc,1,5\nc,10,1\n")
    model, ds = read_file(path, "y ~ k + (1 | g)", {"k": None})
    assert model.columns["k"].levels == ("1", "2", "10")
    assert model.term_names == ["Intercept", "k[2]", "k[10]"]
    np.testing.assert_array_equal(ds.X[:, 1], [0, 1, 0, 1, 0, 0])


def test_text_column_is_categorical_and_a_stray_text_in_numbers_is_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("g,x,y\na,1,1\na,2,2\nb,oops,3\nb,4,4\n")
    with pytest.raises(DataError, match=r"t.csv:4: column 'x' \(model.formula\) must be numeric.*"
                       r"'oops'.*declare 'x' categorical"):  # fmt: skip
        read_file(path, "y ~ x + (1 | g)")
    path.write_text("g,c,y\na,u,1\na,v,2\nb,u,3\nb,,4\n")
    with pytest.raises(
        DataError, match=r"t.csv:5: 1 row\(s\) have a missing.*\(c: 1; line\(s\) 5\)"
    ):
        read_file(path, "y ~ c + (1 | g)")
    model, ds = read_file(path, "y ~ c + (1 | g)", missing="drop")
    assert model.term_names == ["Intercept", "c[v]"] and ds.n_rows == 3


def _spec(tmp_path, data: dict, model: dict) -> Path:
    spec = {"name": "t", "data": data, "model": model, "backend": {"name": "stan"}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_reference_level_that_does_not_occur_is_refused_at_its_line(tmp_path):
    _write(tmp_path, "csv", _rows())
    model = {"formula": FORMULA, "categorical": {"clinic": {"reference": "99"}}}
    spec = load_spec(_spec(tmp_path, {"path": "d.csv"}, model))
    with pytest.raises(DataError) as err:
        load(spec)
    msg = str(err.value)
    assert "spec.yaml:" in msg and "model.categorical.clinic.reference" in msg
    assert "'99'" in msg and "its levels are: 7, 20, 101" in msg


def test_a_missing_column_points_at_the_formula(tmp_path):
    _write(tmp_path, "csv", _rows())
    spec = load_spec(_spec(tmp_path, {"path": "d.csv"}, {"formula": "y ~ dose + (1 | g)"}))
    with pytest.raises(DataError, match=r"spec.yaml:\d+: model.formula: column 'dose' is not in"):
        load(spec)


# -- simulation -------------------------------------------------------------------------------


def test_rainfall_v1_block_draws_the_numbers_it_always_drew():
    # Saved from the v1 code (git e14f7ff, framework/simulate.py) before it was replaced.
    model, ds = load(load_spec(ROOT / "specs" / "rainfall.yaml"))
    assert hashlib.sha256(ds.y.tobytes()).hexdigest() == (
        "153060be099e6d52989f3bcdaf7b2187a0aac2fadf8288fb0c9dd310541a2326"
    )
    assert ds.y[[0, 100, 560]].tolist() == [
        12.19118949865339,
        14.707254835924378,
        32.476558865485366,
    ]
    assert ds.labels[:3] == ["AL", "AK", "AZ"] and ds.n_rows == 561
    np.testing.assert_array_equal(ds.X[:11, 1], np.arange(11.0))
    assert ds.truth["beta"] == {"Intercept": 20.0, "year_numeric": 1.0}
    assert ds.truth["group_sd"] == {"Intercept": 5.0, "year_numeric": 0.5}
    assert ds.truth["sigma"] == 5.0 and ds.truth["coef"].shape == (51, 2)


def test_v1_block_with_a_list_of_x_values(tmp_path):
    # Saved from the v1 code: groups 3, x [0.5, 2, 7.25], seed 99.
    truth = dict(intercept_mu=-3, intercept_sigma=2, slope_mu=0.3, slope_sigma=0.1, error_sigma=1.5)
    sim = {"groups": 3, "x": [0.5, 2, 7.25], "truth": truth, "seed": 99}
    spec = load_spec(
        _spec(tmp_path, {"simulate": sim}, {"response": "y", "predictor": "x", "group": "g"})
    )
    _, ds = load(spec)
    assert ds.y.tolist() == [
        -3.337464109344188, -2.9923953694046634, -1.7329453905873173, -2.4689883209951913,
        -2.6677242056548165, -1.1608481437500127, -1.325117160658427, -1.5675761400670016,
        0.9900198095991662,
    ]  # fmt: skip
    np.testing.assert_allclose(ds.truth["coef"][:, 0], [-2.83501139, -3.92883683, -2.89896987])


GENERAL = {
    "groups": 400,
    "rows_per_group": 30,
    "columns": {
        "x1": {"normal": [0, 1]},
        "x2": {"uniform": [-1, 1]},
        "trt": {"levels": ["a", "b"]},
    },
    "truth": {
        "beta": {"Intercept": 1.0, "x1": -0.5, "x2": 2.0, "trt[b]": 0.7},
        "group_sd": {"Intercept": 1.0, "x1": 0.5},
        "group_corr": {"Intercept,x1": 0.6},
        "sigma": 0.8,
    },
    "seed": 3,
}


def test_simulated_general_model_has_its_truth_in_sample_moments(tmp_path):
    model_spec = {"formula": "y ~ x1 + x2 + trt + (x1 | g)"}
    spec = load_spec(_spec(tmp_path, {"simulate": GENERAL}, model_spec))
    model, ds = load(spec)
    assert model.correlated and model.term_names == ["Intercept", "x1", "x2", "trt[b]"]
    coef = ds.truth["coef"]
    assert coef.shape == (400, 2) and ds.truth["group_corr"] == {("Intercept", "x1"): 0.6}
    # 400 groups: the sd of a sample sd is about sd / sqrt(2 * 400) = 3.5%, of a sample
    # correlation about (1 - r^2) / sqrt(400) = 0.03, of a mean sd / 20; 4 of those each.
    assert np.all(np.abs(coef.mean(0) - [1.0, -0.5]) < 4 * np.array([1.0, 0.5]) / 20)
    np.testing.assert_allclose(coef.std(0), [1.0, 0.5], rtol=4 * 0.035)
    assert abs(np.corrcoef(coef.T)[0, 1] - 0.6) < 4 * 0.03
    # The residuals given the true coefficients are N(0, 0.8^2) over 12,000 rows.
    z = model.group_term_index
    beta = np.array([1.0, -0.5, 2.0, 0.7])
    fitted = ds.X @ beta + np.einsum("nq,nq->n", ds.X[:, z], coef[ds.codes] - beta[z])
    resid = ds.y - fitted
    rows = len(resid)  # sd of a sample sd: sigma / sqrt(2 rows); of a mean: sigma / sqrt(rows)
    assert abs(resid.std() - 0.8) < 4 * 0.8 / np.sqrt(2 * rows)
    assert abs(resid.mean()) < 4 * 0.8 / np.sqrt(rows)
    assert 0.45 < ds.X[:, 3].mean() < 0.55  # trt drawn uniformly from its two levels
    # What `framework simulate` writes reads back as the same data.
    frame = simulated_frame(spec, model)
    frame.to_csv(tmp_path / "sim.csv", index=False)
    model2, back = read_file(tmp_path / "sim.csv", str(model.formula))
    assert model2.term_names == model.term_names and back.labels == ds.labels
    np.testing.assert_allclose(back.y, ds.y, rtol=1e-15)
    np.testing.assert_allclose(back.X, ds.X, rtol=1e-15)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"beta": {"Intercept": 1.0, "x1": -0.5}}, r"beta: misses x2, trt\[b\]"),
        ({"group_corr": {"Intercept,x9": 0.5}}, "must name two different group terms"),
        ({"group_corr": [[1, 2], [2, 1]]}, "symmetric 2 x 2 matrix|not a valid correlation"),
    ],
)
def test_simulate_truth_mistakes_are_named(tmp_path, change, says):
    sim = {**GENERAL, "truth": {**GENERAL["truth"], **change}}
    spec = _spec(tmp_path, {"simulate": sim}, {"formula": "y ~ x1 + x2 + trt + (x1 | g)"})
    with pytest.raises(SpecError, match=rf"spec.yaml:\d+: data.simulate.truth.*({says})"):
        load(load_spec(spec))


def test_simulate_columns_must_match_the_model(tmp_path):
    sim = {**GENERAL, "columns": {"x1": {"normal": [0, 1]}}}
    spec = _spec(tmp_path, {"simulate": sim}, {"formula": "y ~ x1 + x2 + trt + (x1 | g)"})
    with pytest.raises(SpecError, match=r"data.simulate.columns: misses x2, trt"):
        load(load_spec(spec))


def test_na_in_a_text_column_is_missing_and_an_identifier_is_not_a_factor(tmp_path):
    path = tmp_path / "na.csv"
    path.write_text("g,c,y\na,u,1\na,NA,2\nb,v,3\nb,u,4\n")
    model, ds = read_file(path, "y ~ c + (1 | g)", missing="drop")
    assert model.columns["c"].levels == ("u", "v") and ds.n_rows == 3
    rows = "\n".join(f"{'ab'[i % 2]},id{i},{i}" for i in range(600))
    path.write_text("g,c,y\n" + rows + "\n")
    with pytest.raises(
        DataError, match="column 'c' .*more than 500 distinct texts.*grouping column"
    ):
        read_file(path, "y ~ c + (1 | g)")


def test_simulated_codes_declared_categorical_and_v1_truth_on_another_model(tmp_path):
    sim = {
        "groups": 4,
        "rows_per_group": 6,
        "columns": {"clinic": [101, 7, 20]},
        "truth": {
            "beta": {"Intercept": 0, "clinic[20]": 1, "clinic[101]": 2},
            "group_sd": {"Intercept": 1},
            "sigma": 1,
        },  # fmt: skip
    }
    model_spec = {"formula": "y ~ clinic + (1 | g)", "categorical": ["clinic"]}
    model, ds = load(load_spec(_spec(tmp_path, {"simulate": sim}, model_spec)))
    assert model.columns["clinic"].levels == ("7", "20", "101")
    np.testing.assert_array_equal(ds.X[:3], [[1, 0, 1], [1, 0, 0], [1, 1, 0]])
    v1 = dict(intercept_mu=0, intercept_sigma=1, slope_mu=0, slope_sigma=1, error_sigma=1)
    spec = _spec(tmp_path, {"simulate": {**sim, "truth": v1}}, model_spec)
    with pytest.raises(SpecError, match=r"data.simulate.truth: uses the v1 names.*clinic\[20\]"):
        load(load_spec(spec))
