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

from ..backends.posterior import check_posterior
from ..backends.registry import Availability, BackendRegistry
from ..errors import BackendError, OptionsError, PosteriorContractError
from ..model.gaussian_marginal import draw_coefficients
from ..model.model import COEF, Model

METHODS = ("marginal", "full")

# Agreement of two samplers within Monte Carlo error. With correct MCSEs the
# difference of two independent estimates is ~ N(0, mcse_a^2 + mcse_b^2), so
# |z| > 4 happens with probability 6e-5 per comparison, ~0.5% over the ~80
# quantities compared (the hyperparameters, 2 x 20 group coefficients and the
# correlated case's extra terms): a failure means a real difference, not bad
# luck. MCSEs from 2 x 300 draws are themselves uncertain (their ESS estimate
# is off by 10-30%), so a floor of 0.1 posterior sd stops a lucky short chain
# from failing a correct backend; a tenth of a posterior sd is far below any
# difference that changes a conclusion.
AGREEMENT_K = 4.0
AGREEMENT_FLOOR = 0.1


def scalar_draws(idata, model: Model) -> dict[str, np.ndarray]:
    """Every scalar parameter above the groups as (chain, draw) arrays, keyed by its label."""
    post = idata.posterior
    return {
        model.label(v, sel): np.asarray(post[v].sel(sel).values)
        for v, sel in model.hyperparameters()
    }


def parameters(idata, model: Model) -> dict[str, np.ndarray]:
    """The posterior's variables other than coef, as arrays (the arguments of draw_coefficients)."""
    return {v: np.asarray(idata.posterior[v].values) for v in model.variables() if v != COEF}


def check_contract(idata, model: Model, dataset, backend_name: str, settings=None) -> None:
    """The common posterior format (framework.check_posterior) plus what the suite's fit asked for."""
    try:
        check_posterior(idata, model, dataset, backend_name)
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
    if model.correlated and "group_corr" in post:
        corr = np.asarray(post["group_corr"].values)
        if not np.allclose(corr, np.swapaxes(corr, -1, -2)) or not np.allclose(
            np.diagonal(corr, axis1=-2, axis2=-1), 1
        ):
            problems.append(
                "group_corr is not a correlation matrix (symmetric, ones on the diagonal)"
            )
    if dataset.has_rows:
        expected = [("observed_data", "y", dataset.y), ("constant_data", "X", dataset.X),
                    ("constant_data", "group", dataset.codes)]  # fmt: skip
    else:
        expected = [("constant_data", k, v) for k, v in dataset.stats.as_dict().items()]
    for group, name, values_expected in expected:
        values = np.asarray(idata[group][name].values)
        if values.shape != values_expected.shape or not np.array_equal(values, values_expected):
            problems.append(f"{group}.{name} is not the dataset's, unchanged and in order")
    if problems:
        raise AssertionError(f"backend '{backend_name}': " + "; ".join(problems))


def check_group_order(idata, model: Model, dataset, seed: int = 0) -> None:
    """Group labels in the dataset's order, and each group's coefficients belong to that group.

    Given the backend's own draws of beta, the group covariance and sigma, the
    exact conditional of the coefficients (framework.draw_coefficients) gives
    reference draws; per group and term, the backend's posterior means must
    match the reference's within Monte Carlo error. Values shuffled between
    groups miss by several posterior sds.
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
    ref = draw_coefficients(model, dataset.stats, **parameters(idata, model), seed=seed)
    got = np.asarray(post[COEF].values)
    mcse = _mcse(idata, [COEF])[COEF]
    n_draws = got.shape[0] * got.shape[1]
    diff = got.mean(axis=(0, 1)) - ref.mean(axis=(0, 1))
    sd = ref.std(axis=(0, 1))
    # The reference draws are independent given the parameters: mcse <= sd / sqrt(n).
    tol = AGREEMENT_K * np.hypot(mcse, sd / np.sqrt(n_draws)) + AGREEMENT_FLOOR * sd
    bad = [
        f"coef[{labels[j]},{model.group_term_names[k]}] mean off by {diff[j, k]:.3g} "
        f"(tolerance {tol[j, k]:.3g})"
        for j, k in zip(*np.nonzero(np.abs(diff) > tol), strict=True)
    ]
    if bad:
        raise AssertionError(
            f"{len(bad)} group coefficient(s) do not match their group's data given the "
            f"parameters (shuffled or mislabelled groups?): {'; '.join(bad[:5])}"
        )


def check_seed(first, repeat, other) -> None:
    """`first` and `repeat` (same seed) are identical; `other` (another seed) differs."""
    names = list(first.posterior.data_vars)
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


def check_recovery(idata, model: Model, truth: dict) -> None:
    """The known truth of simulated data lies where the posterior says it should.

    Tolerances, for one fixed dataset (so the outcome is deterministic up to
    Monte Carlo error, which is under 0.1 posterior sd here):
    - each scalar parameter: |mean - truth| <= 3.5 posterior sd; a correct
      posterior misses by more with probability ~5e-4 per parameter, while a
      wrong scale (log sigma returned, centred x not undone) misses by tens of sds;
    - group coefficients, per term: at least 90% of the true values within
      2.576 sd of their posterior mean (the central ~99% interval; a correct
      posterior covers ~99%, so 10% misses out of 20 would be a 1e-3 event),
      and the posterior means correlate with the truth at >= 0.8 (about 0.97
      for the suite's data).
    """
    bad = []
    for (variable, selection), (label, draws) in zip(
        model.hyperparameters(), scalar_draws(idata, model).items(), strict=True
    ):
        true = truth.get(variable)
        if isinstance(true, dict):
            key = tuple(selection.values())
            true = true.get(key[0] if len(key) == 1 else key)
        if true is None:
            continue
        mean, sd = draws.mean(), draws.std()
        if abs(mean - true) > 3.5 * sd:
            bad.append(f"{label}: posterior {mean:.4g} +/- {sd:.3g}, truth {true:.4g}")
    if COEF in truth:
        draws = np.asarray(idata.posterior[COEF].values)
        mean, sd = draws.mean(axis=(0, 1)), draws.std(axis=(0, 1))
        true = np.asarray(truth[COEF])
        for k, term in enumerate(model.group_term_names):
            covered = np.mean(np.abs(mean[:, k] - true[:, k]) <= 2.576 * sd[:, k])
            corr = np.corrcoef(mean[:, k], true[:, k])[0, 1]
            if covered < 0.9:
                bad.append(f"coef[{term}]: only {covered:.0%} of true values in the 99% intervals")
            if not corr >= 0.8:
                bad.append(f"coef[{term}]: posterior means correlate {corr:.2f} with the truth")
    if bad:
        raise AssertionError(
            "the posterior does not recover the simulation's truth: " + "; ".join(bad)
        )


def check_agreement(idata, reference, model: Model) -> None:
    """Posterior means of every variable agree with a reference fit within Monte Carlo error."""
    names = [n for n in model.variables() if n in idata.posterior]
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
        if name == "group_corr":  # the diagonal is 1 by construction: nothing to compare
            tol = np.where(np.eye(tol.shape[-1], dtype=bool), np.inf, tol)
        for idx in zip(*np.nonzero(np.atleast_1d(np.abs(diff) > tol)), strict=True):
            where = f"{name}[{','.join(_label(idata, name, idx))}]" if np.ndim(diff) else name
            d, t = np.atleast_1d(diff)[idx], np.atleast_1d(tol)[idx]
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


def _label(idata, name: str, idx) -> list[str]:
    dims = idata.posterior[name].dims[2:]
    return [str(idata.posterior.coords[d].values[i]) for d, i in zip(dims, idx, strict=True)]


def _mcse(idata, names):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz warns about few draws; 2 x 300 is by design
        result = az.mcse(idata.posterior, var_names=names, method="mean")
    return {n: np.asarray(result[n].values) for n in names}
