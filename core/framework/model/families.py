"""Families: the likelihood of y given the linear predictor, one object each (as Bambi's).

A family names its own parameters (beyond the linear predictor), their
support and default priors, its link, whether the group effects can be
integrated out exactly, and its posterior predictive as a mixture of normals
(Gaussian: exact). Adding a family is adding one entry to BUILTIN_FAMILIES
and teaching each backend its likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .priors import Prior


@dataclass(frozen=True)
class Family:
    """A response distribution: parameters, link, default priors, predictive."""

    name: str
    parameters: tuple[str, ...]
    link: str = "identity"
    default_priors: dict[str, Prior] = field(default_factory=dict)
    exact_marginal: bool = False  # the group effects integrate out in closed form

    def predictive(self, mean: np.ndarray, params: dict[str, np.ndarray]):
        """Per-draw (means, sds) of the predictive normals at linear predictor `mean`."""
        if self.name == "gaussian":
            return mean, np.broadcast_to(params["sigma"], np.shape(mean))
        raise NotImplementedError(f"no predictive for family {self.name!r}")


GAUSSIAN = Family(
    "gaussian",
    parameters=("sigma",),
    default_priors={"sigma": Prior("uniform", (0.0, 100.0))},
    exact_marginal=True,
)

BUILTIN_FAMILIES: dict[str, Family] = {f.name: f for f in (GAUSSIAN,)}
