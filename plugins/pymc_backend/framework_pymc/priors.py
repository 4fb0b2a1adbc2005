"""The framework's prior families as PyMC distributions.

Each family maps to a PyMC class and a renaming of its arguments; PyMC's names
differ from the framework's in places (Cauchy's alpha/beta, Exponential's lam,
HalfCauchy's beta), and Gamma/InverseGamma take a rate/scale `beta` exactly as
the framework does. `tests/test_pymc_backend.py` checks every family's log
density against `Prior.logpdf` (scipy), which catches rate-versus-scale slips.
"""

from __future__ import annotations

import numpy as np

from framework.errors import BackendError
from framework.model.priors import FAMILIES, Prior

# family -> (PyMC class name, {framework argument: PyMC argument})
PYMC_FAMILIES: dict[str, tuple[str, dict[str, str]]] = {
    "normal": ("Normal", {"mu": "mu", "sigma": "sigma"}),
    "student_t": ("StudentT", {"nu": "nu", "mu": "mu", "sigma": "sigma"}),
    "cauchy": ("Cauchy", {"mu": "alpha", "sigma": "beta"}),
    "uniform": ("Uniform", {"lower": "lower", "upper": "upper"}),
    "half_normal": ("HalfNormal", {"sigma": "sigma"}),
    "half_cauchy": ("HalfCauchy", {"sigma": "beta"}),
    "half_student_t": ("HalfStudentT", {"nu": "nu", "sigma": "sigma"}),
    "exponential": ("Exponential", {"rate": "lam"}),
    "gamma": ("Gamma", {"alpha": "alpha", "beta": "beta"}),
    "inv_gamma": ("InverseGamma", {"alpha": "alpha", "beta": "beta"}),
    "lognormal": ("LogNormal", {"mu": "mu", "sigma": "sigma"}),
}


def unsupported(priors: dict[str, Prior]) -> list[str]:
    """One message per prior this plugin cannot express (empty when all are fine)."""
    problems = []
    for name, prior in priors.items():
        entry = PYMC_FAMILIES.get(prior.family)
        family = FAMILIES.get(prior.family)
        # A family added to the core later, or with other argument names, is refused here.
        if entry is None or family is None or set(entry[1]) != set(family.params):
            problems.append(
                f"model.priors.{name}: family '{prior.family}' has no PyMC equivalent in backend 'pymc'; "
                f"use one of {', '.join(PYMC_FAMILIES)}"
            )
    return problems


def check_priors(priors: dict[str, Prior]) -> None:
    """Refuse, before any model is built, priors the plugin cannot express."""
    problems = unsupported(priors)
    if problems:
        raise BackendError("\n".join(problems))


def pymc_name_and_kwargs(prior: Prior) -> tuple[str, dict[str, float]]:
    """The PyMC class name and its keyword arguments for `prior`."""
    cls, rename = PYMC_FAMILIES[prior.family]
    return cls, {rename[k]: float(v) for k, v in prior.kwargs.items()}


def pymc_dist(prior: Prior):
    """An unnamed PyMC distribution (`Class.dist(...)`), e.g. to evaluate its log density."""
    import pymc as pm

    cls, kwargs = pymc_name_and_kwargs(prior)
    return getattr(pm, cls).dist(**kwargs)


def pymc_vector(name: str, priors: list[Prior]):
    """One named (k,) variable whose element i has priors[i] (all of one family)."""
    import pymc as pm

    (family,) = {p.family for p in priors}
    cls, rename = PYMC_FAMILIES[family]
    kwargs = {
        rename[k]: np.asarray([p.kwargs[k] for p in priors], dtype=np.float64)
        for k in FAMILIES[family].params
    }
    return getattr(pm, cls)(name, shape=len(priors), **kwargs)
