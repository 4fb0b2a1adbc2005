"""`data.engine: dask`: the column scan and the per-group reduction as Dask tasks.

The same functions as the local reader run on the workers (`scan_values`
per file, `read_partition` per partition); the partial results are merged
pairwise in a tree of tasks on the workers, so the client receives only
category levels and the final per-group statistics, never rows. Group order
is the local reader's: first appearance across the partitions in file-name
order (`Reduced.merge` keeps the earlier side's groups first). A worker that
dies is replaced and its tasks run again from the files (Dask's lineage), so
the result does not change. The files must be readable by every worker at
the same path.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import DataError
from ..model.model import Model
from ..model.terms import Column
from .columns import Wanted, scan_values
from .dataset import Dataset
from .reading import read_partition, wanted_of
from .reduced import Reduced, finish
from .sources import partitions

CONNECT_SECONDS = 5  # an unreachable scheduler is reported after this long
INSTALL = "pip install 'framework[dask]'"
# Dask's default worker environment minus MALLOC_TRIM_THRESHOLD_: set, it turns off glibc's
# adaptive mmap threshold, so every batch-sized array is a fresh mmap; reading ran 2x slower.
_WORKER_ENVIRON = {
    "distributed.nanny.pre-spawn-environ": {
        "OMP_NUM_THREADS": 1,
        "MKL_NUM_THREADS": 1,
        "OPENBLAS_NUM_THREADS": 1,
    }
}


def require_dask(where: str = "data.engine") -> None:
    """DataError with the install command unless dask and distributed import."""
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        raise DataError(
            f"{where}: engine dask needs the Dask extra, which is not installed ({exc}); "
            f"install it with: {INSTALL}"
        ) from None


@contextmanager
def dask_client(address: str | None = None, n_workers: int | None = None) -> Iterator:
    """A Client of the scheduler at `address`, or of a local cluster started (and closed) for it."""
    require_dask()
    import dask
    from distributed import Client, LocalCluster

    if address is not None:
        try:
            client = Client(address, timeout=f"{CONNECT_SECONDS}s")
        except (OSError, TimeoutError) as exc:
            raise DataError(
                f"data.dask.address: cannot reach the Dask scheduler at {address} "
                f"within {CONNECT_SECONDS} s ({type(exc).__name__}); start it (dask scheduler) "
                "or fix the address"
            ) from None
        try:
            _wait_for_workers(client, address)
            with _quiet_when_interrupted():
                yield client
        finally:
            client.close()
        return
    # Processes, one thread each: the reduction is NumPy and Arrow work that holds the GIL in part.
    with _ctrl_c_deferred() as received, dask.config.set(_WORKER_ENVIRON):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},  # its health routes: any free port
            silence_logs=logging.CRITICAL,  # task errors come back through their futures
        )
    try:
        if received:
            raise KeyboardInterrupt
        with Client(cluster) as client, _quiet_when_interrupted(), dask.config.set(_WORKER_ENVIRON):
            yield client  # (a worker restarted after a crash gets the same environment)
    finally:
        cluster.close()


@contextmanager
def _quiet_when_interrupted() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        # The tasks still pending are dropped on purpose: their futures' "exception never
        # retrieved" reports, printed as the client closes, would bury the one-line message.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        raise


@contextmanager
def _ctrl_c_deferred() -> Iterator[list]:
    """Hold Ctrl-C while the local cluster starts: interrupted half-way, it could not be closed."""
    received: list = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)


def _wait_for_workers(client, address: str) -> None:
    try:
        client.wait_for_workers(1, timeout=CONNECT_SECONDS * 2)
    except TimeoutError:
        raise DataError(
            f"data.dask.address: the Dask scheduler at {address} has no workers; "
            "start some (dask worker ADDRESS) and run again"
        ) from None


def read_on_dask(
    client,
    files: list[Path],
    wanted: Wanted,
    make_model: Callable[[dict[str, Column]], Model],
    missing: str = "refuse",
    source: str | None = None,
    fields: dict[str, str] | None = None,
) -> tuple[Model, Dataset]:
    """Scan the files for the columns' kinds and levels, build the Model, reduce: all on `client`."""
    from distributed import KilledWorker

    source = source or str(files[0])
    try:
        model = make_model(scan_on_dask(client, files, wanted, source))
        reduced = reduce_on_dask(
            client, partitions(files), model, wanted_of(model, fields), missing
        )
    except KilledWorker as exc:  # died again on every retry: most often out of memory
        raise DataError(
            f"{source}: Dask workers kept dying while reading the data ({exc}); give each "
            "worker more memory, or check the workers' logs"
        ) from None
    return model, finish(reduced, wanted_of(model, fields), missing, source)


def scan_on_dask(client, files: list[Path], wanted: Wanted, source: str) -> dict[str, Column]:
    """The columns' kinds and levels: one scan task per file, merged in file order here."""
    plain = _portable(wanted)
    token = uuid.uuid4().hex[:8]
    futures = [
        client.submit(scan_values, path, plain, key=f"framework-scan-{token}-{i}")
        for i, path in enumerate(files)
    ]
    found = client.gather(futures)  # per column: a kind, or at most MAX_LEVELS levels
    total = found[0]
    for later in found[1:]:
        total.absorb(later, source)
    total.wanted = wanted  # the spec's own, to point at its lines
    return total.columns()


def reduce_on_dask(client, parts: list, model: Model, wanted: Wanted, missing: str) -> Reduced:
    """`read_partition` per partition, then pairwise merges on the workers; rows never leave them."""
    plain = _portable(wanted)
    token = uuid.uuid4().hex[:8]
    level = [
        client.submit(
            read_partition, part, model, plain, missing, 0, key=f"framework-read-{token}-{i}"
        )  # fmt: skip
        for i, part in enumerate(parts)
    ]
    depth = 0
    while len(level) > 1:
        # Neighbours only: the earlier partitions stay on the left, so group order is kept.
        merged = [
            client.submit(
                _merge, level[j], level[j + 1], key=f"framework-merge-{token}-{depth}-{j}"
            )
            for j in range(0, len(level) - 1, 2)
        ]
        level = merged + level[len(merged) * 2 :]
        depth += 1
    return level[0].result()


def _merge(earlier: Reduced, later: Reduced) -> Reduced:
    return earlier.merge(later)


def _portable(wanted: Wanted) -> Wanted:
    # The spec's `declared_at` closes over the Spec; workers need none of it.
    return dataclasses.replace(wanted, declared_at=_declared_at)


def _declared_at(column: str) -> str:
    return f"categorical.{column}"
