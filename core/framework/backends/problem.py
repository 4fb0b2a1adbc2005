"""What the core hands a backend: the data, the model choices and the sampler settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data.dataset import Dataset
from ..model.model import Model
from ..progress import SamplingProgress


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
    """A prepared fitting problem: the Model (terms, family, priors) and its Dataset.

    `method` is "marginal" (sample beta, the group covariance and the family's
    parameters from the marginal likelihood; `complete_posterior` then draws
    every group's coefficients exactly) or "full" (sample everything);
    `parameterisation` ("centred" or "non_centred") applies to "full". Both
    are resolved by the core before `fit` is called. `group_draws` says
    whether the posterior carries every group's coefficient draws
    (output.group_draws); without them a marginal fit's estimates and
    forecasts are exact mixtures over the hyperparameter draws.
    """

    model: Model
    dataset: Dataset
    method: str = "marginal"
    parameterisation: str = "centred"
    progress: object = field(default=None, compare=False, repr=False)
    group_draws: bool = True

    def __post_init__(self):
        if self.method == "full" and not self.dataset.has_rows:
            raise ValueError("method 'full' needs the rows: load the data with keep_rows=True")
        if self.method == "marginal" and not self.model.family.exact_marginal:
            raise ValueError(f"family {self.model.family.name} has no exact marginal likelihood")

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
            "formula": self.model.formula,
            "family": self.model.family.name,
        }

    def report(self, message: str) -> None:
        """Send a progress line to the terminal (no-op when quiet)."""
        if callable(self.progress):
            self.progress(message)

    def sampling_progress(self) -> SamplingProgress:
        """The live per-chain display to report sampling to (ignores every call when quiet)."""
        # `progress` may be any callable (a list's append in tests): only the CLI's has bars.
        make = getattr(self.progress, "sampling", None)
        return make() if callable(make) else SamplingProgress(enabled=False)
