"""httpstan's stanc call, with the options our generated program names (httpstan has no setting)."""

from __future__ import annotations

import importlib.resources
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .program import stanc_options


def compile_program(program_code: str, stan_model_name: str) -> tuple[str, str]:
    """httpstan.compile.compile, plus the program's own stanc options: (C++ code, warnings)."""
    options = stanc_options(program_code)
    with (
        importlib.resources.as_file(importlib.resources.files("httpstan") / "stanc") as stanc,
        tempfile.TemporaryDirectory(prefix="framework_stanc_") as folder,
    ):
        path = Path(folder) / f"{stan_model_name}.stan"
        path.write_text(program_code)
        args = [stanc, *options, "--name", stan_model_name, "--warn-pedantic", "--print-cpp"]
        done = subprocess.run([*args, str(path)], capture_output=True, timeout=60)
    stderr = done.stderr.decode().strip()
    if done.returncode != 0:
        raise ValueError(stderr)  # as httpstan does
    return done.stdout.decode().strip(), stderr


@contextmanager
def with_program_options():
    """Route httpstan's stanc calls through `compile_program` for the duration (pystan builds)."""
    import httpstan.compile

    original = httpstan.compile.compile
    httpstan.compile.compile = compile_program
    try:
        yield
    finally:
        httpstan.compile.compile = original
