"""Per-chain iterations from Stan's "Iteration: 100 / 2000 [  5%]  (Warmup)" lines, for the live display.

Both engines see those lines while the chains run: pystan polls one httpstan
operation per chain whose metadata holds the latest, and cmdstanpy reads each
CmdStan process's console line by line. Neither offers a public hook, so each
adapter below watches the one private call that carries them, on one object
and only for the duration of sampling; if a library changes that call, the
fit still runs, only without live bars. Divergences are not in those lines,
so Stan's bars show iterations and phase only.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

ITERATION = re.compile(r"(?:Chain \[(\d+)\] )?Iteration:\s*(\d+)\s*/\s*\d+.*?\((Warmup|Sampling)\)")


def bars_for(problem):
    """The problem's live display; a silent one for objects standing in for a Problem."""
    make = getattr(problem, "sampling_progress", None)
    if callable(make):
        return make()
    from framework import SamplingProgress

    return SamplingProgress(enabled=False)


def refresh(settings) -> int:
    """Iterations between Stan's progress lines: about 1% of a chain, so bars move smoothly."""
    # Always the same for the same settings (quiet or not): pystan's fit cache keys on it.
    return max(1, (settings.warmup + settings.draws) // 100)


def parse(line: str) -> tuple[int | None, int, bool] | None:
    """(chain id or None, iteration, in warmup) from one progress line, else None."""
    match = ITERATION.search(line)
    if match is None:
        return None
    chain = int(match.group(1)) if match.group(1) else None
    return chain, int(match.group(2)), match.group(3) == "Warmup"


@contextmanager
def pystan_progress(bars):
    """Report each chain's iterations from the httpstan operations pystan polls."""
    try:
        from stan.common import HttpstanClient
    except ImportError:  # pragma: no cover - pystan is what calls this
        yield
        return
    chains: dict[str, int] = {}  # operation name -> 0-based chain, in the order pystan posts them
    post, get = HttpstanClient.post, HttpstanClient.get

    async def watched_post(self, path, json):
        response = await post(self, path, json)
        if path.endswith("/fits") and response.status == 201:
            chains.setdefault(response.json().get("name", ""), len(chains))
        return response

    async def watched_get(self, path):
        response = await get(self, path)
        chain = chains.get(path.lstrip("/"))
        if chain is not None and response.status == 200:
            _report(bars, chain, response.json().get("metadata", {}).get("progress") or "")
        return response

    HttpstanClient.post, HttpstanClient.get = watched_post, watched_get
    try:
        yield
    finally:
        HttpstanClient.post, HttpstanClient.get = post, get


@contextmanager
def cmdstanpy_progress(model, bars):
    """Report each chain's iterations from the console lines cmdstanpy reads from CmdStan."""
    run = getattr(model, "_run_cmdstan", None)
    if run is None:  # pragma: no cover - another cmdstanpy: sample without live bars
        yield
        return

    def watched_run(runset, idx, *args, progress_hook=None, **kwargs):
        def hook(line: str, process: int) -> None:
            parsed = parse(line)
            if parsed is not None:
                # one process per chain ("Iteration: ...") or all chains in one ("Chain [2] ...")
                chain = (parsed[0] - 1) if parsed[0] is not None else process
                bars.update(chain, parsed[1], warmup=parsed[2])
            if progress_hook is not None:
                progress_hook(line, process)

        return run(runset, idx, *args, progress_hook=hook, **kwargs)

    model._run_cmdstan = watched_run  # this instance only; cmdstanpy calls it per process
    try:
        yield
    finally:
        del model._run_cmdstan


def _report(bars, chain: int, message: str) -> None:
    parsed = parse(message)
    if parsed is not None:
        bars.update(chain, parsed[1], warmup=parsed[2])
