"""Reading a run directory back: every file is checked before use, a damaged or foreign one is named.

`framework forecast RUN` and `framework.load_posterior` read posterior.nc here.
A run directory carries the `.framework-run` marker (output_folder.MARKER); a
folder without it is still read when its posterior.nc is a valid run posterior
(runs written before the marker existed). Whatever is wrong (a missing,
empty, truncated, damaged or foreign file, or a posterior that does not match
the model its attrs name) is one RunDirectoryError naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..errors import RunDirectoryError
from ..model.model import GROUP_DIM, GROUP_TERM2_DIM, GROUP_TERM_DIM, TERM_DIM
from .output_folder import MARKER, is_run

POSTERIOR = "posterior.nc"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # every NetCDF-4 file is an HDF5 file
NETCDF3_SIGNATURES = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
GIVE_A_RUN = "give the folder `framework run` wrote"
AGAIN = "run the spec again to write it afresh"


def read_run(run_dir: Path):
    """The checked posterior of a run directory and the Model rebuilt from it."""
    path = posterior_path(run_dir)
    idata = open_posterior(path)
    return idata, saved_model(idata, where=path)


def load_posterior(run_dir: Path):
    """The Posterior saved by a run, checked against its model; RunDirectoryError if unusable."""
    return read_run(run_dir)[0]


def posterior_path(run_dir: Path) -> Path:
    """RUN/posterior.nc, or RunDirectoryError saying why RUN is not a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunDirectoryError(f"{run_dir}: no such run directory; {GIVE_A_RUN}")
    if not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir}: is a file, not a run directory; {GIVE_A_RUN}")
    path = run_dir / POSTERIOR
    if not os.path.lexists(path):
        if is_run(run_dir):
            raise RunDirectoryError(
                f"{path}: is missing although {MARKER} marks {run_dir} as a run, so the run "
                f"directory was damaged; {AGAIN}"
            )
        raise RunDirectoryError(
            f"{run_dir}: is not a run directory (no {POSTERIOR}, no {MARKER} marker); {GIVE_A_RUN}"
        )
    if not path.is_file():
        raise RunDirectoryError(f"{path}: is not a regular file, so not a run's posterior; {AGAIN}")
    return path


def open_posterior(path: Path):
    """The Posterior in `path`, read into memory; RunDirectoryError if it cannot be."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
    except OSError as exc:
        raise RunDirectoryError(
            f"{path}: cannot be read ({exc.strerror}); check its permissions"
        ) from None
    if size == 0:
        raise RunDirectoryError(
            f"{path}: is empty (0 bytes): the run that wrote it was cut short or the file was "
            f"damaged; {AGAIN}"
        )
    if size < len(HDF5_SIGNATURE) and HDF5_SIGNATURE.startswith(head):
        raise RunDirectoryError(f"{path}: is truncated ({size} bytes); {AGAIN}")
    if head != HDF5_SIGNATURE:
        raise RunDirectoryError(
            f"{path}: is not a NetCDF-4 file ({_looks_like(head)}), so not a posterior "
            f"`framework run` wrote; {GIVE_A_RUN}"
        )
    from ..backends.posterior_groups import Posterior

    try:  # read whole now: a damaged block would otherwise fail mid-forecast
        idata = Posterior.from_netcdf(path)
    except MemoryError:
        raise RunDirectoryError(
            f"{path}: is too large ({size:,} bytes) to read into this machine's memory"
        ) from None
    except Exception as exc:  # h5py/h5netcdf/xarray raise OSError, RuntimeError, KeyError...
        raise RunDirectoryError(
            f"{path}: cannot be read, it is truncated or damaged ({_first_line(exc)}); {AGAIN}"
        ) from None
    if "posterior" not in idata.groups():
        raise RunDirectoryError(
            f"{path}: is a NetCDF file but not a run's posterior (it has no 'posterior' group); "
            f"{GIVE_A_RUN}"
        )
    return idata


def saved_model(idata, where=POSTERIOR):
    """The Model a saved posterior was fitted with, rebuilt from its attrs; the posterior checked against it.

    `build_posterior` writes the formula, the family and each column's kind and
    levels (reference first); priors are not needed to forecast and take defaults.
    """
    from ..backends.posterior import COLUMNS_ATTR, posterior_problems
    from ..model.model import build_model
    from ..model.terms import Column

    attrs = idata.posterior.attrs
    if not all(k in attrs for k in ("formula", "family", COLUMNS_ATTR)):
        raise RunDirectoryError(
            f"{where}: the posterior has no formula/family/{COLUMNS_ATTR} attrs, so `framework "
            f"run` did not write it (or an older version did); {AGAIN}"
        )
    try:
        kinds = json.loads(attrs[COLUMNS_ATTR])
        columns = {
            name: Column(name, str(c["kind"]), tuple(str(v) for v in c["levels"]))
            for name, c in kinds.items()
        }
        model = build_model(str(attrs["formula"]), columns, family=str(attrs["family"]))
    except Exception as exc:  # whatever the attrs hold, they are the file's fault, not ours
        raise RunDirectoryError(
            f"{where}: cannot rebuild the model from the saved attrs ({_first_line(exc)}); {AGAIN}"
        ) from None
    problems = _coord_problems(idata, model)
    if not problems:
        data = SimpleNamespace(
            has_rows="observed_data" in idata.groups(),
            labels=[str(g) for g in idata.posterior.coords[GROUP_DIM].values],
        )
        problems = posterior_problems(idata, model, data, group_draws=False)
        problems += _data_problems(idata, model, len(data.labels))
    if problems:
        raise RunDirectoryError(
            f"{where}: does not match the model it was saved with ({model.formula}): "
            f"{'; '.join(problems[:4])}; {AGAIN}"
        )
    return model


def _coord_problems(idata, model) -> list[str]:
    post = idata.posterior
    dims = [TERM_DIM, GROUP_TERM_DIM, GROUP_DIM] + ([GROUP_TERM2_DIM] if model.correlated else [])
    problems = [f"the '{d}' coordinate is missing" for d in dims if d not in post.coords]
    if GROUP_DIM in post.coords:
        labels = [str(g) for g in post.coords[GROUP_DIM].values]
        if len(set(labels)) != len(labels):
            problems.append("the 'group' coordinate repeats a label")
    return problems


def _data_problems(idata, model, n_groups: int) -> list[str]:
    # What forecasts read besides the draws: the per-group statistics, or the rows.
    if "constant_data" not in idata.groups():
        return []  # posterior_problems names the missing group
    data = idata.constant_data
    if "n" in data:
        size = len(model.term_names) + 1  # the design columns and the response
        want = {
            "n": (n_groups,),
            "mean": (n_groups, size),
            "cross": (n_groups, size, size),
        }
        return [
            f"constant_data.{name} has shape {data[name].shape if name in data else 'none'}, "
            f"expected {shape}"
            for name, shape in want.items()
            if name not in data or data[name].shape != shape
        ]
    if "X" not in data or "group" not in data:
        return ["constant_data has neither the per-group statistics nor the rows (X, group)"]
    rows = data["group"].shape[0]
    problems = []
    if data["X"].shape != (rows, len(model.term_names)):
        want = (rows, len(model.term_names))
        problems.append(f"constant_data.X has shape {data['X'].shape}, expected {want}")
    codes = np.asarray(data["group"].values)
    if not np.issubdtype(codes.dtype, np.integer) or (
        codes.size and (codes.min() < 0 or codes.max() >= n_groups)
    ):
        problems.append("constant_data.group holds codes that are not groups of the posterior")
    observed = idata.observed_data if "observed_data" in idata.groups() else {}
    if "y" in observed and observed["y"].shape != (rows,):
        problems.append(f"observed_data.y does not have {rows} rows")
    return problems


def _looks_like(head: bytes) -> str:
    if head.startswith(NETCDF3_SIGNATURES):
        return "it is a NetCDF-3 file"
    if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "it holds text"
    return "it does not start with the HDF5 signature"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
