"""The run directory, written atomically: a temporary folder beside the target, renamed into place."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from pathlib import Path

import yaml

from ..errors import Interrupted, UserError
from . import output_folder
from .csv_cells import write_csv
from .interrupts import Interrupts

# zlib shrinks float64 draws by only ~12% (their mantissas are noise) at ~5x the write time
# (W2's 64 MB: 2.0 s raw vs 11.6 s compressed on a loaded machine), so only small posteriors,
# where it costs milliseconds, are compressed.
COMPRESS_BELOW = 8 * 2**20
FILES = (
    "posterior.nc",
    "estimates.csv",
    "hyperparameters.csv",
    "forecasts.csv",
    "diagnostics.json",
    "spec.yaml",
)


@contextlib.contextmanager
def atomic_directory(target: Path, spec=None, where: str = "output.dir"):
    """Yield a fresh temporary folder to write into; on success it replaces `target`.

    `target` must be a folder a run may replace (see output_folder); its lock is held
    throughout. On any failure or interrupt the temporary folder is removed and the
    previous `target` is untouched; the marker is written last, then two renames swap
    the folders with SIGINT/SIGTERM deferred, so a signal either leaves the previous
    run or (Interrupted, after the swap) the complete new one.
    """
    with output_folder.claimed(target, spec, where) as target:
        interrupts = Interrupts()
        tmp = None
        try:
            with interrupts.watching():
                tmp = output_folder.make_temporary(target)
                yield tmp
                interrupts.raise_if_received()  # one a finaliser swallowed while writing
                output_folder.write_marker(tmp)
                interrupts.defer = True
                reason = output_folder.refusal(target, spec)  # changed while we sampled?
                if reason:
                    raise UserError(f"{where}: {reason}")
                _swap_into_place(tmp, target)
                tmp = None
        except (OSError, RuntimeError) as exc:
            if not isinstance(exc, OSError) and "errno = " not in str(exc):
                raise  # a RuntimeError that is not HDF5 reporting a failed write
            raise UserError(
                f"{where}: cannot write the run directory {target} "
                f"({output_folder.os_reason(exc)}); the previous run, if any, is untouched; "
                "free some space or choose another folder with -o or output.dir"
            ) from None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    if interrupts.received is not None:
        raise Interrupted(
            f"interrupted; the new run directory {target} was already complete and is in place"
        )


def _swap_into_place(tmp: Path, target: Path) -> None:
    old = None
    if os.path.lexists(target):
        old = output_folder.make_temporary(target, "old")
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


class PosteriorWriter:
    """posterior.nc written into `folder` by a thread, while the run computes its tables.

    h5py releases the GIL inside HDF5 (its deflate filter included), as numpy's large
    operations do, so the write overlaps the summary. `wait` re-raises the thread's exception
    in the caller, as a write in the caller would have; `close` only waits, so a failed run's
    folder is removed after the thread has stopped writing into it.
    """

    def __init__(self, folder: Path, idata):
        size = idata.nbytes
        output_folder.check_space(folder, size)  # before HDF5, which fails badly on a full disk
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._write, args=(folder, idata, size), name="posterior.nc"
        )
        self._thread.start()

    def _write(self, folder: Path, idata, size: int) -> None:
        try:
            write_posterior(folder, idata, size)
        except BaseException as exc:  # handed to the caller by wait()
            self._error = exc

    def wait(self) -> None:
        """Block until posterior.nc is written; its error, if any, raised here."""
        self._thread.join()
        error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Wait for the thread, even through a second Ctrl-C (re-raised once it has stopped):
        the caller removes the folder it writes into."""
        interrupted = False
        while self._thread.is_alive():
            try:
                self._thread.join()
            except KeyboardInterrupt:
                interrupted = True
        if interrupted:
            raise KeyboardInterrupt


def write_posterior(folder: Path, idata, size: int) -> None:
    # Compression costs ~5x the write time for ~12% less disk: large posteriors are written raw.
    idata.to_netcdf(folder / "posterior.nc", compress=size < COMPRESS_BELOW)


def write_run(folder: Path, result, plot_worker=None, posterior: PosteriorWriter | None = None):
    """Write every output of a finished run into `folder`; a PlotWorker, if given, draws the PNGs.

    With a PosteriorWriter, posterior.nc is its business: waited for, not written again.
    """
    size = result.idata.nbytes
    if posterior is None:
        output_folder.check_space(folder, size)
    if not result.spec.output.plots:
        _write_tables(folder, result, size, posterior)
        return
    from .figure_data import gather

    figures = gather(result.idata, result.model, result.estimates, result.dataset.truth)
    try:
        drawing = plot_worker is not None and plot_worker.send(figures, folder)
        _write_tables(folder, result, size, posterior)  # while the worker draws
        drawn = drawing and plot_worker.wait()
    finally:
        if plot_worker is not None:
            plot_worker.close()  # before a failed run's folder, which it draws into, is removed
    if not drawn:  # no worker, or it failed: drawn here, so a real drawing error fails the run
        from .plots import draw_plots

        draw_plots(figures, folder)


def _write_tables(folder: Path, result, size: int, posterior: PosteriorWriter | None) -> None:
    if posterior is None:
        write_posterior(folder, result.idata, size)
    # Labels come from the user's data: cells a spreadsheet would run are quoted (csv_cells).
    write_csv(result.estimates, folder / "estimates.csv")
    write_csv(result.hyperparameters, folder / "hyperparameters.csv")
    write_csv(result.forecasts, folder / "forecasts.csv")
    if result.recovery is not None:
        write_csv(result.recovery, folder / "recovery.csv")
    (folder / "diagnostics.json").write_text(
        json.dumps(result.diagnostics, indent=2, default=_plain) + "\n"
    )
    (folder / "spec.yaml").write_text(
        yaml.safe_dump(saved_spec(result), sort_keys=False, allow_unicode=True)
    )
    if posterior is not None:
        posterior.wait()


def saved_spec(result) -> dict:
    """The spec as a run directory keeps it: runs again as is, with the seed actually used."""
    spec = result.spec.resolved()  # data.path made absolute there
    spec["sampler"]["seed"] = result.diagnostics["seed"]  # drawn by prepare when the spec had none
    return spec


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)
