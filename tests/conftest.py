"""Stan programs compiled in the background while the tests that need none run (precompile.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
_driver: subprocess.Popen | None = None
_markers: Path | None = None
_waits: dict[str, list[str]] = {}  # test module -> pystan jobs to wait for before its tests
_PER_VARIANT = {"test_conformance"}  # modules whose tests wait for their variant's program


def _variant_key(variant) -> str:
    import precompile

    return precompile.variant_key(variant)


def pytest_collection_finish(session):
    """Start compiling the programs of the collected modules (FRAMEWORK_TEST_PRECOMPILE=0: no)."""
    global _driver, _markers
    if os.environ.get("FRAMEWORK_TEST_PRECOMPILE") == "0" or session.config.option.collectonly:
        return
    sys.path.insert(0, str(HERE))
    try:
        import precompile
    except ImportError:  # the Stan plugin is not installed: nothing to compile
        return
    modules = list(dict.fromkeys(item.path.stem for item in session.items))
    try:
        jobs = precompile.jobs_for(modules)
    except ImportError:
        return
    if not jobs:
        return
    names = [f"{engine}:{key}" for engine, key in jobs]
    for module in modules:
        wanted = {precompile.resolve(job) for job in precompile.USERS.get(module, [])}
        _waits[module] = [f"pystan:{key}" for engine, key in jobs if engine == "pystan"
                          and ("pystan", key) in wanted]  # fmt: skip
    _markers = Path(tempfile.mkdtemp(prefix="framework_precompile_"))
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []  # the tests keep their CPU
    _driver = subprocess.Popen(
        [*nice, sys.executable, str(HERE / "precompile.py"), str(_markers), *names],
        cwd=HERE,
        start_new_session=True,  # signals the tests send to their process group miss it
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before a module's first test: wait for the pystan programs it builds (httpstan has no lock).

    A conformance test waits for its own variant's program only, so the first variants run
    while the later ones compile.
    """
    variant = getattr(getattr(item, "callspec", None), "params", {}).get("variant")
    if variant is not None:
        engine = (getattr(item.cls, "options", None) or {}).get("engine")
        waits = [f"pystan:{_variant_key(variant)}"] if engine == "pystan" else []
        waits = [job for job in waits if job in _waits.get(item.path.stem, [])]
    else:
        waits = [] if item.path.stem in _PER_VARIANT else _waits.pop(item.path.stem, [])
    while waits and _driver is not None and _driver.poll() is None:
        waits = [job for job in waits if not (_markers / f"{job}.done").exists()]
        if waits:
            time.sleep(0.5)


def pytest_sessionfinish(session):
    """Stop compiles still running (a session cut short); engines discard interrupted builds."""
    if _driver is None:
        return
    if _driver.poll() is None:
        os.killpg(_driver.pid, signal.SIGINT)
        try:
            _driver.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(_driver.pid, signal.SIGKILL)
            _driver.wait()
    shutil.rmtree(_markers, ignore_errors=True)
