"""What the core hands a backend: the data, the model choices and the sampler settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from .data import Dataset
from .priors import HYPERPARAMETERS, Prior


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings every backend honours (names as in Stan; PyMC's `tune` is `warmup`)."""

    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    seed: int = 0
    target_accept: float = 0.8
    max_treedepth: int = 10


@dataclass(frozen=True)
class Problem:
    """A prepared fitting problem.

    `method` is "marginal" (sample the five hyperparameters from the marginal
    likelihood, then draw group effects with `framework.draw_group_effects`) or
    "full" (sample everything); `parameterisation` ("centred" or "non_centred")
    applies to "full". Both are resolved by the core before `fit` is called.
    """

    dataset: Dataset
    priors: dict[str, Prior]
    method: str = "marginal"
    parameterisation: str = "centred"
    progress: object = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        missing = [p for p in HYPERPARAMETERS if p not in self.priors]
        if missing:
            raise ValueError(f"priors missing for {', '.join(missing)}")
        if self.method == "full" and not self.dataset.has_rows:
            raise ValueError("method 'full' needs the rows: load the data with keep_rows=True")

    def fit_attrs(self, settings: SamplerSettings) -> dict:
        """Posterior attrs recording what was fitted: method, parameterisation, sampler settings."""
        return {
            "seed": int(settings.seed),
            "method": self.method,
            "parameterisation": self.parameterisation,
            "chains": settings.chains,
            "warmup": settings.warmup,
            "draws": settings.draws,
            "target_accept": settings.target_accept,
            "max_treedepth": settings.max_treedepth,
        }

    def report(self, message: str) -> None:
        """Send a progress line to the terminal (no-op when quiet)."""
        if callable(self.progress):
            self.progress(message)
