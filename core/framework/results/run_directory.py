"""The run directory, written atomically: a temporary folder beside the target, renamed into place."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from ..errors import RunDirectoryError, UserError

COMPRESS_BELOW = 100 * 2**20
FILES = (
    "posterior.nc",
    "estimates.csv",
    "hyperparameters.csv",
    "forecasts.csv",
    "diagnostics.json",
    "spec.yaml",
)


@contextlib.contextmanager
def atomic_directory(target: Path):
    """Yield a fresh temporary folder; on success it replaces `target`, on any failure it is removed.

    The previous `target`, if any, stays untouched until the new one is complete,
    then is swapped out with two renames on the same filesystem.
    """
    target = Path(target).absolute()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise UserError(
            f"output.dir: cannot write the run directory {target} ({exc.strerror}); "
            "choose another folder with -o or output.dir"
        ) from None
    try:
        yield tmp
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_into_place(tmp: Path, target: Path) -> None:
    old = None
    if target.exists():
        if not target.is_dir():
            raise UserError(
                f"output.dir: {target} exists and is not a directory; choose another path"
            )
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        old.rmdir()
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_run(folder: Path, result) -> None:
    """Write every output of a finished run into `folder`."""
    # Compression costs about a minute per GB of draws; large posteriors are written raw.
    size = sum(v.nbytes for g in result.idata.groups() for v in result.idata[g].data_vars.values())
    result.idata.to_netcdf(
        str(folder / "posterior.nc"), engine="h5netcdf", compress=size < COMPRESS_BELOW
    )
    result.estimates.to_csv(folder / "estimates.csv", index=False)
    result.hyperparameters.to_csv(folder / "hyperparameters.csv", index=False)
    result.forecasts.to_csv(folder / "forecasts.csv", index=False)
    if result.recovery is not None:
        result.recovery.to_csv(folder / "recovery.csv", index=False)
    (folder / "diagnostics.json").write_text(
        json.dumps(result.diagnostics, indent=2, default=_plain) + "\n"
    )
    (folder / "spec.yaml").write_text(
        yaml.safe_dump(result.spec.resolved(), sort_keys=False, allow_unicode=True)
    )
    if result.spec.output.plots:
        from .plots import write_plots

        write_plots(folder, result.idata, result.model, result.estimates, result.dataset.truth)


def load_posterior(run_dir: Path):
    """The InferenceData saved by a run; RunDirectoryError if it is not a complete run."""
    run_dir = Path(run_dir)
    path = run_dir / "posterior.nc"
    if not run_dir.is_dir():
        raise RunDirectoryError(
            f"{run_dir}: no such run directory; give the folder `framework run` wrote"
        )
    if not path.is_file():
        raise RunDirectoryError(
            f"{run_dir}: posterior.nc is missing, so this is not a complete run; run the spec again"
        )
    import arviz as az

    try:
        return az.from_netcdf(str(path), engine="h5netcdf")
    except Exception as exc:
        raise RunDirectoryError(
            f"{path}: cannot read the saved posterior ({exc}); run the spec again"
        ) from None


def saved_model(idata, where="posterior.nc"):
    """The Model a saved posterior was fitted with, rebuilt from its attrs and checked against its terms.

    `build_posterior` writes the formula, the family and each column's kind and
    levels (reference first); priors are not needed to forecast and take defaults.
    """
    from ..backends.posterior import COLUMNS_ATTR
    from ..model.formula import FormulaError
    from ..model.model import ModelError, build_model
    from ..model.terms import Column

    attrs = idata.posterior.attrs
    if not all(k in attrs for k in ("formula", "family", COLUMNS_ATTR)):
        raise RunDirectoryError(
            f"{where}: the posterior has no formula/family/{COLUMNS_ATTR} attrs (written by an "
            "older version of framework); run the spec again to forecast from it"
        )
    try:
        kinds = json.loads(attrs[COLUMNS_ATTR])
        columns = {
            name: Column(name, str(c["kind"]), tuple(str(v) for v in c["levels"]))
            for name, c in kinds.items()
        }
        model = build_model(str(attrs["formula"]), columns, family=str(attrs["family"]))
    except (ValueError, TypeError, KeyError, FormulaError, ModelError) as exc:
        raise RunDirectoryError(
            f"{where}: cannot rebuild the model from the saved attrs ({exc}); run the spec again"
        ) from None
    post = idata.posterior
    saved = {
        "term": [str(t) for t in post.coords["term"].values],
        "group_term": [str(t) for t in post.coords["group_term"].values],
    }
    if saved != {"term": model.term_names, "group_term": model.group_term_names}:
        raise RunDirectoryError(
            f"{where}: the saved terms {saved['term']} do not match the model rebuilt from "
            f"'{model.formula}' ({model.term_names}); run the spec again"
        )
    return model


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)
