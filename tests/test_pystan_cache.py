"""pystan's caches and plumbing: builds cut short are compiled afresh; the engine's reader stores
what httpstan's would."""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import pytest

from framework_stan import program


@pytest.mark.parametrize("log_written", [False, True])
def test_a_build_interrupted_before_its_log_is_compiled_afresh(tmp_path, monkeypatch, log_written):
    # pystan's client gives up on a compile after 300 s (a busy machine) while httpstan goes on
    # to write the module but not its stderr.log; httpstan then fails every later build of it.
    pytest.importorskip("httpstan")
    import httpstan.cache
    import httpstan.models

    from framework_stan import engine_pystan

    monkeypatch.setenv("FRAMEWORK_CACHE_DIR", str(tmp_path))
    code = program.generate(program.Shape("marginal", "centred", 1, False, ("normal",)))
    with engine_pystan.httpstan_cache():
        folder = httpstan.cache.model_directory(httpstan.models.calculate_model_name(code))
        folder.mkdir(parents=True)
        (folder / "stan_services_model.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
        if log_written:
            (folder / "stderr.log").write_text("")
        engine_pystan._discard_interrupted_build(code)
        assert folder.exists() == log_written
        assert engine_pystan.is_compiled(code) == log_written


def test_the_engines_reader_gives_httpstans_draws_with_chains_side_by_side():
    # The same seeded chains, read by httpstan's own loop and then by the engine's reader
    # (with pystan's poll woken when the chains end), must give bit-identical draws (Stan is
    # deterministic given the seed), reach pystan's progress hook, and land in httpstan's fit
    # store; with the reader the two chains run at once (httpstan's loop runs them one after
    # the other: this test fails without the reader). refresh is part of httpstan's fit key
    # but not of the draws: the second request is sampled afresh, not read from the store.
    pytest.importorskip("httpstan")
    import asyncio

    import httpstan.services_stub as stub
    import stan.model as stan_model
    from test_stan_backend import problem, simulate

    from framework_stan import engine_pystan, engines, stanc
    from framework_stan.chain_progress import pystan_progress
    from framework_stan.httpstan_reader import concurrent_reader

    model, data, _ = simulate("q2-correlated")  # the marginal program the backend tests compile
    pr = problem(model, data)
    code, stan_data = program.program_for(pr), program.data_for(pr)
    stan = engines.import_pystan()
    seed = time.time_ns() % 2**31  # fresh: a stored fit would answer without sampling
    with engine_pystan.httpstan_cache() as root:
        with stanc.with_program_options():
            built = stan.build(code, data=stan_data, random_seed=seed)
        engine_pystan.workers_for(root, 2)
        assert stub.executor._max_workers >= 2
        before = engine_pystan._stored_fits(code)
        kwargs = {"num_chains": 2, "num_warmup": 150, "num_samples": 150}
        theirs = built.sample(**kwargs, refresh=10)
        bars = _Bars()
        with pystan_progress(bars), concurrent_reader(), _chain_spans() as spans:
            assert stub.call.__module__ == "framework_stan.httpstan_reader"
            assert stan_model.asyncio is not asyncio  # pystan's poll, woken when chains end
            ours = built.sample(**kwargs, refresh=11)
        assert stub.call.__module__ == "httpstan.services_stub"  # both restored
        assert stan_model.asyncio is asyncio
        assert len(engine_pystan._stored_fits(code) - before) == 4
    assert np.array_equal(theirs._draws, ours._draws)
    assert {chain for chain, _ in bars.seen} == {0, 1}
    assert max(it for _, it in bars.seen) >= 297  # the last progress line: 297 of 300
    (start_a, end_a), (start_b, end_b) = spans
    assert start_b < end_a and start_a < end_b  # overlapping: neither waited for the other


class _Bars:
    """Stands in for the live display: remembers (chain, iteration) updates."""

    def __init__(self):
        self.seen: list[tuple[int, int]] = []

    def update(self, chain, iteration, warmup=False):
        self.seen.append((chain, iteration))


def _spans_file() -> str:
    import os
    import tempfile

    # the sampling workers' parent is the test process: one file per test run
    parent = os.getpid() if _IN_PARENT else os.getppid()
    return os.path.join(tempfile.gettempdir(), f"framework_chain_spans_{parent}.txt")


_IN_PARENT = True  # false in httpstan's forked workers (set where they start a chain)
_ORIGINAL: list = []  # httpstan's in-worker entry point


def _timed_chain(*args, **kwargs):
    """Runs in a worker: httpstan's entry point, recording the chain's start and end."""
    global _IN_PARENT
    import httpstan.services_stub as stub

    _IN_PARENT = False
    # a worker forked before the patch still has httpstan's own function in the module
    original = _ORIGINAL[0] if _ORIGINAL else stub._make_lazy_function_wrapper_helper
    start = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes
    try:
        return original(*args, **kwargs)
    finally:
        with open(_spans_file(), "a") as out:
            out.write(f"{start} {time.perf_counter()}\n")


@contextmanager
def _chain_spans():
    """(start, end) of each chain sampled inside, read once the block ends."""
    import os

    import httpstan.services_stub as stub

    spans: list[tuple[float, float]] = []
    path = _spans_file()
    if os.path.exists(path):
        os.remove(path)
    _ORIGINAL[:] = [stub._make_lazy_function_wrapper_helper]
    stub._make_lazy_function_wrapper_helper = _timed_chain  # pickled by name for the workers
    try:
        yield spans
    finally:
        stub._make_lazy_function_wrapper_helper = _ORIGINAL[0]
    with open(path) as lines:
        spans.extend(tuple(map(float, line.split())) for line in lines)
    os.remove(path)
