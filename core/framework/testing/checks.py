"""The conformance checks as plain functions: each raises AssertionError saying what is wrong.

`framework.testing.conformance.BackendConformance` runs them as test methods;
they are also usable on their own, e.g. to prove a deliberately broken backend
is caught.
"""

from __future__ import annotations

import difflib
import warnings

import arviz as az
import numpy as np

from ..errors import BackendError, OptionsError, PosteriorContractError
from ..group_effects import draw_group_effects
from ..posterior import GROUP_PARAMETERS, check_posterior
from ..priors import HYPERPARAMETERS
from ..registry import Availability, BackendRegistry

METHODS = ("marginal", "full")

# Agreement of two samplers within Monte Carlo error. With correct MCSEs the
# difference of two independent estimates is ~ N(0, mcse_a^2 + mcse_b^2), so
# |z| > 4 happens with probability 6e-5 per comparison, ~0.3% over the 45
# quantities compared (5 hyperparameters, 2 x 20 group effects): a failure means
# a real difference, not bad luck. MCSEs from 2 x 300 draws are themselves
# uncertain (their ESS estimate is off by 10-30%), so a floor of 0.1 posterior
# sd stops a lucky short chain from failing a correct backend; a tenth of a
# posterior sd is far below any difference that changes a conclusion.
AGREEMENT_K = 4.0
AGREEMENT_FLOOR = 0.1


def check_contract(idata, dataset, backend_name: str, settings=None) -> None:
    """The common posterior format (framework.check_posterior) plus what the suite's fit asked for."""
    try:
        check_posterior(idata, dataset, backend_name)
    except PosteriorContractError as exc:
        raise AssertionError(str(exc)) from None
    post, problems = idata.posterior, []
    attrs = post.attrs
    if attrs.get("backend") != backend_name:
        problems.append(f"attrs['backend'] is {attrs.get('backend')!r}, expected {backend_name!r}")
    if not str(attrs.get("engine") or "").strip():
        problems.append("attrs['engine'] is empty: name the sampler, e.g. 'Stan NUTS'")
    if not attrs.get("library_versions"):
        problems.append(
            "attrs['library_versions'] is empty: give the versions of the libraries used"
        )
    seconds = attrs.get("sampling_seconds")
    if not isinstance(seconds, int | float) or not seconds >= 0:
        problems.append(f"attrs['sampling_seconds'] is {seconds!r}, expected a number >= 0")
    if settings is not None:
        if attrs.get("seed") != settings.seed:
            problems.append(f"attrs['seed'] is {attrs.get('seed')!r}, expected {settings.seed}")
        got = (post.sizes["chain"], post.sizes["draw"])
        if got != (settings.chains, settings.draws):
            problems.append(
                f"posterior has {got[0]} chains x {got[1]} draws, settings asked for "
                f"{settings.chains} x {settings.draws} (warmup draws must not be returned)"
            )
    if dataset.has_rows:
        expected = [("observed_data", "y", dataset.y), ("constant_data", "x", dataset.x),
                    ("constant_data", "group", dataset.codes)]  # fmt: skip
    else:
        expected = [("constant_data", k, v) for k, v in dataset.stats.as_dict().items()]
    for group, name, values_expected in expected:
        values = np.asarray(idata[group][name].values)
        if values.shape != values_expected.shape or not np.array_equal(values, values_expected):
            problems.append(f"{group}.{name} is not the dataset's, unchanged and in order")
    if problems:
        raise AssertionError(f"backend '{backend_name}': " + "; ".join(problems))


def check_group_order(idata, dataset, seed: int = 0) -> None:
    """Group labels in the dataset's order, and each group's effects belong to that group.

    Given the backend's own hyperparameter draws, the exact conditional of the
    group effects (framework.draw_group_effects) gives reference draws; per group,
    the backend's posterior means must match the reference's within Monte Carlo
    error. Values shuffled between groups miss by several posterior sds.
    """
    post = idata.posterior
    labels = [str(v) for v in post.coords["group"].values]
    if labels != list(dataset.labels):
        first = next(
            (i for i, (a, b) in enumerate(zip(labels, dataset.labels, strict=False)) if a != b),
            min(len(labels), len(dataset.labels)),
        )
        raise AssertionError(
            f"group coordinate differs from dataset.labels at position {first}: "
            f"{labels[first : first + 3]} vs {list(dataset.labels[first : first + 3])} "
            "(labels must stay in the dataset's order of first appearance, not sorted)"
        )
    hyper = {name: np.asarray(post[name].values) for name in HYPERPARAMETERS}
    ref_intercept, ref_slope = draw_group_effects(dataset.stats, **hyper, seed=seed)
    mcse = _mcse(idata, list(GROUP_PARAMETERS))
    n_draws = hyper["intercept_mu"].size
    bad = []
    for name, ref in (("intercept", ref_intercept), ("slope", ref_slope)):
        got = np.asarray(post[name].values)
        diff = got.mean(axis=(0, 1)) - ref.mean(axis=(0, 1))
        sd = ref.std(axis=(0, 1))
        # The reference draws are independent given the hyperparameters: mcse <= sd / sqrt(n).
        tol = AGREEMENT_K * np.hypot(mcse[name], sd / np.sqrt(n_draws)) + AGREEMENT_FLOOR * sd
        for j in np.flatnonzero(np.abs(diff) > tol):
            bad.append(f"{name}[{labels[j]}] mean off by {diff[j]:.3g} (tolerance {tol[j]:.3g})")
    if bad:
        raise AssertionError(
            f"{len(bad)} group effect(s) do not match their group's data given the hyperparameters "
            f"(shuffled or mislabelled groups?): {'; '.join(bad[:5])}"
        )


def check_seed(first, repeat, other) -> None:
    """`first` and `repeat` (same seed) are identical; `other` (another seed) differs."""
    names = list(HYPERPARAMETERS + GROUP_PARAMETERS)
    for name in names:
        a, b = np.asarray(first.posterior[name].values), np.asarray(repeat.posterior[name].values)
        if a.shape != b.shape or not np.array_equal(a, b):
            diff = np.max(np.abs(a - b)) if a.shape == b.shape else "shape differs"
            raise AssertionError(
                f"the same seed gave different draws of '{name}' (max abs difference {diff}): "
                "the backend must derive every random stream from settings.seed"
            )
    same = [
        n
        for n in names
        if np.array_equal(first.posterior[n].values, np.asarray(other.posterior[n].values))
    ]
    if same:
        raise AssertionError(
            f"a different seed gave identical draws of {', '.join(same)}: "
            "the backend ignores settings.seed"
        )


def check_recovery(idata, truth: dict) -> None:
    """The known truth of simulated data lies where the posterior says it should.

    Tolerances, for one fixed dataset (so the outcome is deterministic up to
    Monte Carlo error, which is under 0.1 posterior sd here):
    - each hyperparameter: |mean - truth| <= 3.5 posterior sd; a correct
      posterior misses by more with probability ~5e-4 per parameter, while a
      wrong scale (log sigma returned, centred x not undone) misses by tens of sds;
    - group effects: at least 90% of the true values within 2.576 sd of their
      posterior mean (the central ~99% interval; a correct posterior covers
      ~99%, so 10% misses out of 40 would be a 1e-4 event), and the posterior
      means correlate with the truth at >= 0.8 (about 0.97 for the suite's data).
    """
    post, bad = idata.posterior, []
    for name in HYPERPARAMETERS:
        draws = np.asarray(post[name].values)
        mean, sd = draws.mean(), draws.std()
        if abs(mean - truth[name]) > 3.5 * sd:
            bad.append(f"{name}: posterior {mean:.4g} +/- {sd:.3g}, truth {truth[name]:.4g}")
    for name in GROUP_PARAMETERS:
        if name not in truth:
            continue
        draws = np.asarray(post[name].values)
        mean, sd = draws.mean(axis=(0, 1)), draws.std(axis=(0, 1))
        true = np.asarray(truth[name])
        covered = np.mean(np.abs(mean - true) <= 2.576 * sd)
        corr = np.corrcoef(mean, true)[0, 1]
        if covered < 0.9:
            bad.append(f"{name}: only {covered:.0%} of true values inside the 99% intervals")
        if not corr >= 0.8:
            bad.append(f"{name}: posterior means correlate {corr:.2f} with the truth")
    if bad:
        raise AssertionError(
            "the posterior does not recover the simulation's truth: " + "; ".join(bad)
        )


def check_agreement(idata, reference, names=None) -> None:
    """Posterior means agree with a reference fit of the same data within Monte Carlo error."""
    names = list(names or HYPERPARAMETERS + GROUP_PARAMETERS)
    mcse_a, mcse_b = _mcse(idata, names), _mcse(reference, names)
    bad = []
    for name in names:
        a, b = (
            np.asarray(idata.posterior[name].values),
            np.asarray(reference.posterior[name].values),
        )
        diff = a.mean(axis=(0, 1)) - b.mean(axis=(0, 1))
        sd = np.sqrt((a.var(axis=(0, 1)) + b.var(axis=(0, 1))) / 2)
        tol = AGREEMENT_K * np.hypot(mcse_a[name], mcse_b[name]) + AGREEMENT_FLOOR * sd
        for i in np.flatnonzero(np.atleast_1d(np.abs(diff) > tol)):
            where = f"{name}[{_label(idata, i)}]" if np.ndim(diff) else name
            d, t = np.atleast_1d(diff)[i], np.atleast_1d(tol)[i]
            bad.append(f"{where} differs by {d:.3g} (tolerance {t:.3g})")
    if bad:
        which = (
            f"{idata.posterior.attrs.get('backend')} vs {reference.posterior.attrs.get('backend')}"
        )
        raise AssertionError(
            f"posterior means disagree beyond Monte Carlo error ({which}): " + "; ".join(bad[:6])
        )


def check_options(backend, options: dict | None = None) -> dict:
    """validate_options fills defaults, leaves its input alone, and refuses unknown keys."""
    defaults = backend.validate_options({})
    if not isinstance(defaults, dict):
        raise AssertionError(
            f"validate_options({{}}) returned {type(defaults).__name__}, not a dict"
        )
    if backend.validate_options(dict(defaults)) != defaults:
        raise AssertionError(
            "validate_options(defaults) changed the defaults: it is not idempotent"
        )
    if options:
        given = dict(options)
        filled = backend.validate_options(given)
        if given != options:
            raise AssertionError("validate_options modified the dict it was given")
        missing = sorted(set(defaults) - set(filled))
        if missing:
            raise AssertionError(
                f"validate_options did not fill in defaults for {', '.join(missing)}"
            )
    _expect_refused(backend, "no_such_option_xyz", None)
    for key in defaults:
        typo = key[:-1] + key[-1] * 2
        if typo not in defaults and difflib.get_close_matches(typo, list(defaults), n=1) == [key]:
            _expect_refused(backend, typo, key)
            break
    return defaults


def _expect_refused(backend, key: str, suggestion: str | None) -> None:
    try:
        backend.validate_options({key: 1})
    except OptionsError as exc:
        text = str(exc)
        if f"backend.options.{key}" not in text:
            raise AssertionError(
                f"OptionsError for unknown option '{key}' does not name it as "
                f"'backend.options.{key}': {text!r}"
            ) from None
        if suggestion and suggestion not in text:
            raise AssertionError(
                f"OptionsError for '{key}' does not suggest '{suggestion}': {text!r}"
            ) from None
        return
    except Exception as exc:
        raise AssertionError(
            f"unknown option '{key}' raised {type(exc).__name__}, expected framework.OptionsError"
        ) from exc
    raise AssertionError(f"validate_options accepted the unknown option '{key}'")


def check_availability(backend) -> Availability:
    """available() returns an Availability that explains itself when not ok."""
    status = backend.available()
    if not isinstance(status, Availability):
        raise AssertionError(
            f"available() returned {type(status).__name__}, expected framework.Availability"
        )
    if not status.ok and not status.reason.strip():
        raise AssertionError(
            "available() says not ok without a reason: say what is missing and how to fix it"
        )
    return status


class _Unavailable:
    """A copy of a backend that says it cannot run here."""

    def __init__(self, backend, reason: str):
        self._backend, self._reason = backend, reason

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def available(self) -> Availability:
        return Availability(False, self._reason)


def check_unavailable_refused(backend) -> None:
    """The core refuses a backend that reports itself unavailable, naming it and the reason."""
    reason = "conformance test: pretend the sampler is missing; pip install it"
    registry = BackendRegistry()
    registry.add_backend(_Unavailable(backend, reason))
    try:
        registry.require_available(backend.name)
    except BackendError as exc:
        if backend.name not in str(exc) or reason not in str(exc):
            raise AssertionError(
                f"the refusal does not name the backend and reason: {exc}"
            ) from None
        return
    raise AssertionError("registry.require_available accepted a backend that reports unavailable")


def check_methods(backend, tested=()) -> tuple[str, ...]:
    """`methods` is a non-empty tuple of known methods that includes every method tested."""
    methods = tuple(backend.methods)
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown or isinstance(backend.methods, str):
        raise AssertionError(
            f"backend.methods is {backend.methods!r}: it must be a non-empty tuple drawn from {METHODS}"
        )
    extra = [m for m in tested if m not in methods]
    if extra:
        raise AssertionError(f"the test asks for method(s) {extra} that the backend does not list")
    return methods


def _label(idata, i: int) -> str:
    coords = idata.posterior.coords
    return str(coords["group"].values[i]) if "group" in coords else str(i)


def _mcse(idata, names):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz warns about few draws; 2 x 300 is by design
        result = az.mcse(idata, var_names=names, method="mean")
    return {n: np.asarray(result[n].values) for n in names}
