"""One run: spec -> dataset -> backend -> checked posterior -> estimates, forecasts, diagnostics."""

from __future__ import annotations

import platform
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__  # noqa: I001
from .backends.plugins import get_registry
from .backends.problem import Problem, SamplerSettings
from .data.dataset import Dataset
from .data.load import load, wanted_columns
from .data.value_checks import check_values
from .errors import BackendError, OptionsError
from .model.model import COEF, Model
from .model.parameterisation import resolve_method, resolve_parameterisation
from .results.output_folder import claimed
from .spec.load import Spec, load_spec

# The results modules (pandas, scipy, xarray, h5netcdf) are imported by the stages that use
# them, so `framework validate`, which only prepares, does not pay for them.
if TYPE_CHECKING:
    import pandas as pd

ROWS_KEPT_AUTO = 1_000_000  # output.observed_data: auto keeps at most this many rows
# output.group_draws: auto keeps the coef draws up to this many values (draws x groups x
# group terms, 80 MB); beyond, estimates and forecasts come from exact mixtures instead.
GROUP_DRAWS_AUTO = 10_000_000


@dataclass
class Prepared:
    """A validated spec with its data, backend, options and resolved settings; nothing fitted yet."""

    spec: Spec
    model: Model
    dataset: Dataset
    backend: object
    options: dict
    problem: Problem
    settings: SamplerSettings
    seconds: dict = field(default_factory=dict)


@dataclass
class RunResult:
    """What a run produced; `forecast` answers new questions from the same posterior."""

    spec: Spec
    model: Model
    dataset: Dataset
    idata: object
    estimates: pd.DataFrame
    hyperparameters: pd.DataFrame
    forecasts: pd.DataFrame
    diagnostics: dict
    recovery: pd.DataFrame | None = None
    output_dir: Path | None = None

    def forecast(self, group: str, x: float | list[float] | None = None, **at) -> pd.DataFrame:
        """The posterior predictive for `group` at `x` (one numeric predictor) or at column values."""
        from .results.forecasts import forecast_table

        if x is None:
            return forecast_table(self.idata, self.model, [(str(group), at)])
        xs = x if isinstance(x, list | tuple) else [x]
        return forecast_table(self.idata, self.model, [(str(group), {"x": v}) for v in xs])


def prepare(spec: Spec, progress=None, check_available: bool = True) -> Prepared:
    """Everything short of sampling: load data, find the backend, validate its options."""
    t0 = time.perf_counter()
    registry = get_registry()
    try:
        backend = (
            registry.require_available(spec.backend.name)
            if check_available
            else registry.get(spec.backend.name)
        )
        options = backend.validate_options(dict(spec.backend.options))
    except OptionsError as exc:  # point each problem at its line in the spec
        raise OptionsError([spec.locate(p) for p in exc.problems]) from None
    except BackendError as exc:
        raise BackendError(spec.locate(str(exc))) from exc  # --debug shows a plugin's traceback
    method = resolve_method(spec.sampler.method, backend)
    model, dataset = load(spec, keep_rows=rows_to_keep(spec.output.observed_data, method))
    # Values too large to square, or a response that never varies: refused before sampling.
    check_values(dataset, model, spec.data_path(), wanted_columns(spec).all_fields())
    spec.forecast_requests(model)  # a forecast the model cannot answer is refused before sampling
    if not dataset.has_rows and callable(progress):
        progress(
            f"read {dataset.n_rows:,} rows into the statistics of {dataset.n_groups:,} groups; "
            "posterior.nc carries those, not the rows (output.observed_data: true keeps them)"
        )
    parameterisation = resolve_parameterisation(spec.model.parameterisation, model, dataset.stats)
    seed = spec.sampler.seed if spec.sampler.seed is not None else secrets.randbelow(2**31)
    s = spec.sampler
    settings = SamplerSettings(s.chains, s.warmup, s.draws, seed, s.target_accept, s.max_treedepth)
    n_values = s.chains * s.draws * dataset.n_groups * model.n_group_terms
    keep = keep_group_draws(spec.output.group_draws, n_values)
    if not keep and spec.output.group_draws == "auto" and callable(progress):
        progress(
            f"posterior.nc leaves out the {n_values:,} coef draws (over {GROUP_DRAWS_AUTO:,}); "
            "estimates.csv and forecasts are exact without them (output.group_draws: all keeps them)"
        )
    problem = Problem(model, dataset, method, parameterisation, progress, group_draws=keep)
    seconds = {"prepare": time.perf_counter() - t0}
    return Prepared(spec, model, dataset, backend, options, problem, settings, seconds)


def rows_to_keep(observed_data: str | bool, method: str) -> bool | int:
    """How many rows to hold in memory: all for method full or when asked, none when refused."""
    if method == "full" or observed_data is True:
        return True
    return False if observed_data is False else ROWS_KEPT_AUTO


def keep_group_draws(choice: str, n_values: int, limit: int | None = None) -> bool:
    """Whether posterior.nc carries the coef draws: all, none, or auto up to `limit` values."""
    if choice in ("all", "none"):
        return choice == "all"
    return n_values <= (GROUP_DRAWS_AUTO if limit is None else limit)


def fit(prepared: Prepared):
    """Call the backend and check what it returns; a plugin's own crash is named as such."""
    from .backends.posterior import check_posterior, without_rows
    from .backends.posterior_groups import as_posterior

    backend = prepared.backend  # from the registry: its calls map a plugin's faults (plugin_calls)
    # a third party's arviz InferenceData or DataTree becomes a Posterior; the check names the rest
    idata = as_posterior(backend.fit(prepared.problem, prepared.settings, prepared.options))
    problem = prepared.problem
    check_posterior(idata, prepared.model, prepared.dataset, backend.name, problem.group_draws)
    if prepared.spec.output.observed_data is False and prepared.dataset.has_rows:
        # Method full needed the rows to sample; the posterior is still not to carry them.
        idata = without_rows(idata, prepared.model, prepared.dataset)
    return idata


def _plugin(backend) -> dict | None:
    # The distribution and version that actually ran, for diagnostics.json.
    plugin = getattr(backend, "plugin", None)
    return plugin.as_dict() if hasattr(plugin, "as_dict") else None


def summarise(prepared: Prepared, idata) -> RunResult:
    """Estimates, forecasts and diagnostics from the posterior alone (same for every backend)."""
    from .results.diagnostics import diagnose
    from .results.estimates import group_estimates, hyperparameter_table, recovery_table
    from .results.forecasts import forecast_table

    spec, model, dataset = prepared.spec, prepared.model, prepared.dataset
    diagnostics = diagnose(idata, model, prepared.settings.max_treedepth)
    attrs = dict(idata.posterior.attrs)
    diagnostics.update(
        backend=prepared.backend.name,
        plugin=_plugin(prepared.backend),
        engine=attrs.get("engine"),
        method=prepared.problem.method,
        parameterisation=prepared.problem.parameterisation,
        coef_draws_in_posterior=prepared.problem.group_draws,
        model={"formula": model.formula, "family": model.family.name},
        seed=prepared.settings.seed,
        timings={
            **prepared.seconds,
            "compile": attrs.get("compile_seconds"),
            "sampling": attrs.get("sampling_seconds"),
        },
        versions={
            "framework": __version__,
            "python": platform.python_version(),
            "backend": attrs.get("library_versions"),
        },
        spec_sha256=spec.digest(),
        data_sha256=dataset.digest(),
        data={
            "source": dataset.source,
            "rows": dataset.n_rows,
            "groups": dataset.n_groups,
            "rows_in_posterior": "observed_data" in idata.groups(),
            "warnings": dataset.warnings,
        },
    )
    if attrs.get("sampler_warnings"):  # a backend's count of non-fatal sampler messages
        diagnostics["sampler_warnings"] = {
            "count": int(attrs["sampler_warnings"]),
            "first": attrs.get("sampler_warning_first", ""),
        }
    sampling = attrs.get("sampling_seconds")
    if sampling:
        diagnostics["min_ess_bulk_per_second"] = diagnostics["min_ess_bulk"] / float(sampling)
    # A Gaussian marginal fit's estimates are exact mixtures whether or not coef was drawn.
    marginal = prepared.problem.method == "marginal"
    estimates = group_estimates(idata, model, dataset.stats if marginal else None)
    recovery = recovery_table(idata, model, dataset.truth, estimates) if dataset.truth else None
    if recovery is not None:
        diagnostics["recovery"] = {
            "covered": int(recovery["covered"].sum()),
            "of": len(recovery),
            **{k: v for k, v in recovery.attrs.items()},
        }
    forecasts = forecast_table(idata, model, spec.forecasts)
    if coef_left_out(prepared, idata):
        del idata.posterior[COEF]
    return RunResult(
        spec=spec,
        model=model,
        dataset=dataset,
        idata=idata,
        estimates=estimates,
        hyperparameters=hyperparameter_table(idata, model, diagnostics),
        forecasts=forecasts,
        diagnostics=diagnostics,
        recovery=recovery,
    )


def coef_left_out(prepared: Prepared, idata) -> bool:
    """Method full sampled coef (its estimates and diagnostics use them); the file omits them."""
    return not prepared.problem.group_draws and COEF in idata.posterior


def as_written(prepared: Prepared, idata):
    """The posterior as posterior.nc holds it (summarise leaves `idata` so; this shares its arrays)."""
    if not coef_left_out(prepared, idata):
        return idata
    from .backends.posterior_groups import Posterior

    groups = {name: idata[name] for name in idata.groups()}
    return Posterior(**groups | {"posterior": idata.posterior.drop_vars(COEF)})


def run(
    spec: Spec | str | Path,
    overrides=(),
    output_dir: str | Path | None = None,
    write: bool = True,
    progress=None,
) -> RunResult:
    """Run a spec end to end; with `write`, the outputs land atomically in the run directory."""
    from .results.plot_process import PlotWorker
    from .results.run_directory import PosteriorWriter, atomic_directory, write_run

    if not isinstance(spec, Spec):
        spec = load_spec(spec, overrides)
    t0 = time.perf_counter()
    if not write:
        prepared = prepare(spec, progress)
        idata = fit(prepared)
        return summarise(prepared, idata)
    target = Path(output_dir) if output_dir else spec.output_dir()
    where = "-o" if output_dir else "output.dir"
    # The folder is checked and locked first: a refused folder or a concurrent run of the
    # same folder is reported before the data are read and the sampler runs.
    with claimed(target, spec, where) as target:
        # Imports matplotlib on the other core while this process reads, samples, summarises.
        plot_worker = PlotWorker.start() if spec.output.plots else None
        try:
            prepared = prepare(spec, progress)
            idata = fit(prepared)
            if plot_worker is not None:  # hyperparameters.png is drawn while we summarise
                plot_worker.draw_early(idata, prepared.model, prepared.dataset.truth)
            with atomic_directory(target, spec, where) as tmp:
                # posterior.nc is written by a thread while the estimates are computed
                posterior = PosteriorWriter(tmp, as_written(prepared, idata))
                try:
                    result = summarise(prepared, idata)
                    result.diagnostics["timings"]["total"] = time.perf_counter() - t0
                    write_run(tmp, result, plot_worker, posterior)
                finally:
                    posterior.close()  # before a failed run's folder is removed
        finally:
            if plot_worker is not None:  # a failed or interrupted run: it is not left behind
                plot_worker.close()
    result.output_dir = target
    return result
