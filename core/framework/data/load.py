"""Load the spec's data: scan the model's columns, build the Model, then read (or simulate) the rows."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from ..errors import DataError
from ..model.formula import parse_formula
from ..model.model import Model
from ..model.model import build_model as model_from_formula
from ..model.prior_scale import prior_scale_warnings
from ..model.terms import Column
from ..spec.load import Spec
from ..spec.model_spec import build_model, categorical_columns
from .columns import Wanted, null_texts, scan_files
from .dataset import Dataset
from .simulate import simulate, simulated_columns
from .sources import data_files
from .table_files import MissingColumn


def wanted_columns(spec: Spec) -> Wanted:
    """The columns the spec's model reads, the spec fields naming them and what it declares."""
    m = spec.model
    names = m.column_names()
    predictors = tuple(c for c in names if c not in (m.response, m.group))
    if m.formula is None:  # the v1 form: each column has its own key, the predictor is a slope
        fields = {m.response: "model.response", m.predictor: "model.predictor",
                  m.group: "model.group"}  # fmt: skip
        numeric = frozenset({m.predictor})
    else:
        fields, numeric = dict.fromkeys(names, "model.formula"), frozenset()
    declared = categorical_columns(spec)

    def declared_at(column: str) -> str:
        path = ("model", "categorical", column, "reference")
        return f"{spec.where(*path)}: {'.'.join(path)}"

    return Wanted(m.response, m.group, predictors, declared, numeric, fields, declared_at)


def scan(spec: Spec) -> dict[str, Column]:
    """The model's columns with their kinds and levels: from the data file, or the simulate block."""
    wanted = wanted_columns(spec)
    if spec.data.simulate is not None:
        return simulated_columns(spec, wanted)
    path = spec.data_path()
    with _located(spec):
        return scan_files(data_files(path), wanted, path)


@contextmanager
def _located(spec: Spec):
    try:
        yield
    except MissingColumn as exc:
        # The fix is in the spec (or the header): point at the spec's line.
        raise DataError(f"{spec.where(*exc.field_path.split('.'))}: {exc}") from None
    except DataError as exc:
        if not str(exc).startswith("data.dask."):
            raise
        raise DataError(spec.locate(str(exc))) from None  # the cluster's address: its line


def load(spec: Spec, keep_rows: bool | int = True) -> tuple[Model, Dataset]:
    """The spec's Model and data: simulated, or read from its CSV/Parquet files and checked.

    `keep_rows` as in `read_table`: True, False, or keep at most that many rows
    (engine dask keeps none: its client never receives rows).
    """
    model, dataset = _load(spec, keep_rows)
    if spec.data.simulate is None:  # simulated labels are the spec's (and need no pyarrow)
        dataset.warnings.extend(_missing_like_labels(dataset))
    dataset.warnings.extend(prior_scale_warnings(model, dataset.stats))
    return model, dataset


def _missing_like_labels(dataset: Dataset) -> list[str]:
    """Group labels that read as missing values elsewhere (R writes NA): fitted as a group."""
    found = sorted(null_texts().intersection(dataset.labels))
    if not found:
        return []
    return [
        f"the group label(s) {', '.join(map(repr, found))} of column {dataset.group!r} mean "
        "a missing value in number columns, but here they are fitted as a group of their own; "
        "if those rows have no group, remove them"
    ]


def _load(spec: Spec, keep_rows: bool | int) -> tuple[Model, Dataset]:
    if spec.data.engine == "dask":
        return _load_on_dask(spec, keep_rows)
    model = build_model(spec, scan(spec))
    if spec.data.simulate is not None:
        dataset = simulate(spec, model)
        if keep_rows is True or (keep_rows is not False and dataset.n_rows <= keep_rows):
            return model, dataset
        return model, dataset.without_rows()
    from .reading import read_table  # pyarrow: only a spec that reads files imports it

    dataset = read_table(spec.data_path(), model, missing=spec.data.missing, keep_rows=keep_rows,
                         fields=wanted_columns(spec).all_fields())  # fmt: skip
    return model, dataset


def _load_on_dask(spec: Spec, keep_rows: bool | int) -> tuple[Model, Dataset]:
    from .dask_reduce import dask_client, read_on_dask, require_dask

    where = f"{spec.where('data', 'engine')}: data.engine"
    if keep_rows is True:
        raise DataError(
            f"{where}: engine dask reduces the data to per-group statistics, but method full "
            "(or output.observed_data: true) needs the rows; use sampler.method: marginal, "
            "or engine: arrow"
        )
    require_dask(where)
    options = spec.data.dask
    path, wanted = spec.data_path(), wanted_columns(spec)
    files = data_files(path)
    with _located(spec), dask_client(options and options.address, options and options.n_workers) as client:  # fmt: skip
        return read_on_dask(client, files, wanted, lambda columns: build_model(spec, columns),
                            spec.data.missing, str(path), wanted.all_fields())  # fmt: skip


def load_dataset(spec: Spec, keep_rows: bool | int = True) -> Dataset:
    """The spec's Dataset alone (see `load`, which also returns the Model)."""
    return load(spec, keep_rows)[1]


def read_file(
    path: Path | str,
    formula: str,
    categorical: dict[str, str | None] | None = None,
    missing: str = "refuse",
    keep_rows: bool | int = True,
    engine: str = "arrow",
    dask: dict | None = None,
) -> tuple[Model, Dataset]:
    """Scan, model and read CSV/Parquet data without a spec (tests, benchmarks, notebooks).

    `path` is a file, a folder or a glob. `engine` "dask" reduces on a Dask
    cluster: `dask` is {"address": "tcp://...", "n_workers": N, "client": a
    distributed.Client to reuse}, all optional; it keeps no rows.
    """
    parsed = parse_formula(formula)
    group = parsed.blocks[0].group if parsed.blocks else ""
    predictors = tuple(c for c in parsed.columns() if c not in (parsed.response, group))
    wanted = Wanted(parsed.response, group, predictors, dict(categorical or {}))
    files = data_files(Path(path))
    if engine == "dask":
        from .dask_reduce import dask_client, read_on_dask

        options = dict(dask or {})
        client = options.pop("client", None)
        make = lambda columns: model_from_formula(parsed, columns)  # noqa: E731
        if client is not None:
            return read_on_dask(client, files, wanted, make, missing, str(path))
        with dask_client(**options) as client:
            return read_on_dask(client, files, wanted, make, missing, str(path))
    from .reading import read_table

    model = model_from_formula(parsed, scan_files(files, wanted, path))
    return model, read_table(path, model, missing=missing, keep_rows=keep_rows)
