"""Where outputs may go: folders a run may replace, one writer per folder, interrupts while writing.

A run directory carries a marker file (MARKER) listing what the run wrote. A run
replaces only an empty folder or a previous run holding nothing else; the root,
the home folder, mount points and any folder holding the spec or the data are
never replaced. Writers of one folder take a lock on a sibling file
(`.NAME.lock`, kept between runs) and fail fast when another run holds it.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from ..errors import UserError

MARKER = ".framework-run"
MARKER_FORMAT = 1
WAY_OUT = "choose another folder with -o or output.dir"


def absolute(path: Path) -> Path:
    """`path` made absolute with symlinks resolved, so the checks see the folder really written."""
    return Path(os.path.realpath(path))


def refusal(target: Path, spec=None) -> str | None:
    """Why a run may not replace `target` (an absolute path), or None if it may."""
    try:
        home = absolute(Path.home())
    except (RuntimeError, KeyError):  # no HOME and no password entry: no home to protect
        home = None
    if target == Path(target.anchor):
        return f"{target} is the root folder; {WAY_OUT}"
    if home is not None and home.is_relative_to(target):
        what = "is the home folder" if target == home else f"holds the home folder {home}"
        return f"{target} {what}; {WAY_OUT}"
    if os.path.ismount(target):
        return f"{target} is a mount point; {WAY_OUT}"
    if spec is not None:
        reason = _holds_inputs(target, spec)
        if reason:
            return reason
    if os.path.lexists(target) and not target.is_dir():
        return f"{target} exists and is not a folder; {WAY_OUT}"
    if target.is_dir():
        return _foreign_contents(target)
    return None


def _holds_inputs(target: Path, spec) -> str | None:
    source = absolute(spec.source) if spec.source is not None else None
    # A run's own spec.yaml runs again into its own folder: that copy is the run's, not the user's.
    own = source == target / "spec.yaml" and is_run(target)
    if source is not None and source.is_relative_to(target) and not own:
        return f"{target} holds the spec {source}, which a run would delete; {WAY_OUT}"
    data = spec.data_path()
    if data is not None:
        root = _static_prefix(absolute(data))
        if root.is_relative_to(target):
            return f"{target} holds the data {root}, which a run would delete; {WAY_OUT}"
        if root.is_dir() and target.is_relative_to(root):
            return f"{target} is inside the data folder {root}; {WAY_OUT}"
    return None


def _static_prefix(path: Path) -> Path:
    # A data path may be a glob (data/*.csv): the folder before the first wildcard is the data's.
    parts = path.parts
    for i, part in enumerate(parts):
        if glob.has_magic(part):
            return Path(*parts[:i])
    return path


def _foreign_contents(target: Path) -> str | None:
    try:
        entries = set(os.listdir(target))
    except OSError as exc:
        return f"cannot read {target} ({exc.strerror}); {WAY_OUT}"
    if not entries:
        return None
    if MARKER not in entries:
        return (
            f"{target} is not empty and is not a run directory (no {MARKER} marker), so a run "
            f"will not replace it; {WAY_OUT}, or empty that folder yourself"
        )
    extra = sorted(entries - set(run_files(target)) - {MARKER})
    if extra:
        shown = ", ".join(extra[:3]) + (", ..." if len(extra) > 3 else "")
        return (
            f"{target} is a run directory but also holds {shown}, which a run would delete; "
            f"move them out or {WAY_OUT}"
        )
    return None


def is_run(folder: Path) -> bool:
    """Whether `folder` carries the marker of a run directory."""
    return (folder / MARKER).is_file()


def run_files(folder: Path) -> list[str]:
    """The names a run wrote into `folder`, as its marker lists them ([] if unreadable)."""
    try:
        files = json.loads((folder / MARKER).read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [f for f in files if isinstance(f, str)]


def write_marker(folder: Path) -> None:
    """Mark `folder` as a run directory; written last, so a marked temporary folder is complete."""
    from .. import __version__

    files = sorted(os.listdir(folder))
    text = json.dumps({"format": MARKER_FORMAT, "framework": __version__, "files": files})
    (folder / MARKER).write_text(text + "\n", encoding="utf-8")


def check(target: Path, spec=None, where: str = "output.dir") -> Path:
    """The absolute `target` if a run may replace it, else UserError naming it and the way out."""
    target = absolute(target)
    reason = refusal(target, spec)
    if reason:
        raise UserError(f"{where}: {reason}")
    return target


_HELD: set[Path] = set()


@contextlib.contextmanager
def claimed(target: Path, spec=None, where: str = "output.dir"):
    """Check `target`, hold its lock (another holder: UserError at once), tidy stale leftovers.

    Re-entrant within one process: the runner claims the folder before sampling and
    the atomic write inside it claims it again.
    """
    target = check(target, spec, where)
    if target in _HELD:
        yield target
        return
    from filelock import FileLock, Timeout

    lock_path = target.parent / f".{target.name}.lock"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # filelock reports a lock file it cannot create (/proc, a read-only folder) as held by
        # another process: create it first, so that failure is named as what it is.
        os.close(os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666))
        lock = FileLock(str(lock_path), timeout=0)
        lock.acquire()
    except Timeout:
        raise UserError(
            f"{where}: another framework run is writing {target} (it holds {lock_path}); "
            f"wait for it to finish or {WAY_OUT}"
        ) from None
    except OSError as exc:
        raise UserError(
            f"{where}: cannot write the run directory {target} ({exc.strerror}); {WAY_OUT}"
        ) from None
    _HELD.add(target)
    try:
        recover(target)
        yield target
    finally:
        _HELD.discard(target)
        lock.release()


def leftovers(target: Path) -> list[Path]:
    """Temporary and swapped-out folders of `target` a writer left beside it."""
    prefixes = (f".{target.name}.tmp-", f".{target.name}.old-")
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    return sorted(target.parent / n for n in names if n.startswith(prefixes))


def recover(target: Path) -> None:
    """Under the lock: finish a swap a killed writer left half done, then remove its leftovers."""
    stale = leftovers(target)
    if not os.path.lexists(target):
        # Killed between the two renames of a swap: the complete new run (marked, as the
        # marker is written last) goes in, else the previous run goes back.
        complete = [p for p in stale if ".tmp-" in p.name and is_run(p)]
        previous = [p for p in stale if ".old-" in p.name]
        for candidate in complete[:1] or previous[:1]:
            with contextlib.suppress(OSError):  # e.g. read-only: reported when writing
                os.rename(candidate, target)
                stale.remove(candidate)
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)


def make_temporary(target: Path, kind: str = "tmp") -> Path:
    """A new folder beside `target`, with the permissions the umask gives (mkdtemp makes 0700)."""
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.{kind}-", dir=target.parent))
    os.chmod(folder, 0o777 & ~current_umask())
    return folder


SPACE_MARGIN = 2**20  # bytes beyond the draws: the CSVs, the JSON, the plots and HDF5's metadata


def check_space(folder: Path, draw_bytes: int) -> None:
    """OSError(ENOSPC) before writing when the disk cannot hold the draws uncompressed.

    HDF5 handles a disk filling up mid-write badly (errors from finalisers, even a
    segfault), so a disk already too full is refused before posterior.nc is started.
    """
    free = shutil.disk_usage(folder).free
    need = draw_bytes + SPACE_MARGIN
    if free < need:
        raise OSError(
            errno.ENOSPC,
            f"No space left on device: about {need / 2**20:.1f} MB needed, "
            f"{free / 2**20:.1f} MB free",
        )


def os_reason(exc: OSError) -> str:
    """The system's one-line reason for `exc`; HDF5 puts errno into a multi-line message."""
    if exc.strerror:
        return exc.strerror
    found = re.search(r"errno = (\d+)", str(exc))
    if found:
        return os.strerror(int(found.group(1)))
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (other threads write)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def protected_paths(spec) -> set[Path]:
    """The files a spec reads: never a place to write to."""
    paths = set()
    if spec.source is not None:
        paths.add(absolute(spec.source))
    data = spec.data_path()
    if data is not None:
        paths.add(absolute(data))
    return paths


def replace_file(target: Path, write, spec=None, where: str = "-o") -> Path:
    """Write a file atomically: `write(tmp_path)` beside it, then renamed over `target`."""
    target = absolute(target)
    reason = None
    if target == Path(target.anchor) or target.is_dir():
        reason = f"{target} is a folder; give a file name, e.g. data.csv"
    elif os.path.lexists(target) and not target.is_file():
        reason = f"{target} is not a regular file (a device, pipe or socket); give a file path"
    elif spec is not None and target in protected_paths(spec):
        reason = f"{target} is a file this spec reads; give another file name"
    if reason:
        raise UserError(f"{where}: {reason}")
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        os.chmod(tmp, 0o666 & ~current_umask())
        write(tmp)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise UserError(
            f"{where} {target}: cannot write ({os_reason(exc)}); choose another path"
        ) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return target
