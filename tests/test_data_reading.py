"""Reading the model columns: group order, label types and the one-pass reduction."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from framework.data.load import read_file
from framework.model.statistics import GroupStats


def read_table(path, response, predictor, group, **kw):
    """The Dataset of the v1 model `response ~ predictor + (predictor || group)`."""
    return read_file(path, f"{response} ~ {predictor} + ({predictor} || {group})", **kw)[1]


def test_parquet_dictionary_groups_keep_order_of_first_appearance(tmp_path):
    # The dictionary lists labels alphabetically, and one label is unused: neither may leak out.
    dictionary = pa.array(["AK", "CA", "NY", "unused"])
    indices = pa.array([2, 1, 2, 0, 1, 0], type=pa.int32())
    table = pa.table(
        {
            "g": pa.DictionaryArray.from_arrays(indices, dictionary),
            "x": [0.0, 1, 2, 3, 4, 5],
            "y": [1.0, 2, 3, 4, 5, 6],
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")
    ds = read_table(tmp_path / "d.parquet", "y", "x", "g")
    assert ds.labels == ["NY", "CA", "AK"]
    assert ds.codes.tolist() == [0, 1, 0, 2, 1, 2]
    ref = GroupStats.from_rows(ds.codes, np.column_stack([ds.X, ds.y]), 3)
    np.testing.assert_allclose(ds.stats.cross, ref.cross)


def test_integer_group_column_becomes_text_labels(tmp_path):
    pq.write_table(
        pa.table({"g": [10, 2, 10, 2], "x": [0.0, 1, 0, 1], "y": [1.0, 2, 3, 4]}),
        tmp_path / "i.parquet",
    )
    ds = read_table(tmp_path / "i.parquet", "y", "x", "g")
    assert ds.labels == ["10", "2"]


def test_missing_group_labels_are_counted_or_dropped(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text('g,x,y\nA,0,1\n,1,2\nB,2,3\n" ",3,4\nA,4,5\nB,5,6\n')
    with pytest.raises(Exception, match="empty group label"):
        read_table(path, "y", "x", "g")
    ds = read_table(path, "y", "x", "g", missing="drop")
    assert ds.labels == ["A", "B"] and ds.n_rows == 4
    assert "dropped 2 row(s)" in ds.warnings[0]
