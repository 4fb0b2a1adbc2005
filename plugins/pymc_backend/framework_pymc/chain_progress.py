"""Per-chain progress from PyMC's samplers into a framework.SamplingProgress.

PyMC's own sampler calls back after every draw (`pm.sample(callback=...)`).
nutpie renders a text template of every chain's state on a timer and hands it
to a callback, but only in notebooks; elsewhere it draws its own terminal bar.
`nutpie_progress` asks for the template-and-callback kind while
`nutpie.sample` builds its sampler, with a template listing each chain's
draws, divergences and phase, so the framework's display shows nutpie's
chains too. If nutpie changes that internal, sampling runs without live bars.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager

# One "draws divergences tuning;" group per chain (draws count warmup, like Stan's iterations).
TEMPLATE = (
    "{% for chain in chains %}"
    "{{ chain.finished_draws }} {{ chain.divergences }} {{ chain.tuning }};"
    "{% endfor %}"
)
RATE_MS = 200  # how often nutpie renders the template


def parse(text: str) -> list[tuple[int, int, bool]]:
    """[(iterations, divergences, in warmup)] per chain from TEMPLATE's rendering."""
    chains = []
    for group in text.split(";"):
        fields = group.split()
        if len(fields) == 3:
            chains.append((int(fields[0]), int(fields[1]), fields[2].lower() == "true"))
    return chains


def nutpie_progress_callback(bars):
    """The function nutpie calls with TEMPLATE rendered; never raises into nutpie's thread."""

    def callback(text: str) -> None:
        try:
            for chain, (done, divergences, tuning) in enumerate(parse(text)):
                bars.update(chain, done, warmup=tuning, divergences=divergences)
        except Exception:  # a display problem must not stop sampling
            return

    return callback


@contextmanager
def nutpie_progress(bars, cores: int):
    """While `nutpie.sample` builds its sampler, make "no progress bar" mean our callback."""
    module = importlib.import_module("nutpie.sample")
    lib = getattr(module, "_lib", None)
    kinds = getattr(lib, "ProgressType", None)
    if kinds is None or not hasattr(kinds, "template_callback"):
        yield  # another nutpie: no live bars
        return

    class Kinds:
        """nutpie's ProgressType with none() answering our template callback."""

        def __getattr__(self, name):
            return getattr(kinds, name)

        @staticmethod
        def none():
            return kinds.template_callback(RATE_MS, TEMPLATE, cores, nutpie_progress_callback(bars))

    class Lib:
        def __getattr__(self, name):
            return Kinds() if name == "ProgressType" else getattr(lib, name)

    module._lib = Lib()
    try:
        yield
    finally:
        module._lib = lib


def pymc_callback(bars):
    """A `pm.sample(callback=...)` reporting each chain's draws and divergences after warmup."""
    divergences: dict[int, int] = {}

    def callback(trace, draw) -> None:
        chain = int(draw.chain)
        stats = draw.stats if isinstance(draw.stats, list | tuple) else [draw.stats]
        if not draw.tuning and any(bool(s.get("diverging", False)) for s in stats):
            divergences[chain] = divergences.get(chain, 0) + 1
        bars.update(
            chain, draw.draw_idx + 1, warmup=draw.tuning, divergences=divergences.get(chain, 0)
        )

    return callback
