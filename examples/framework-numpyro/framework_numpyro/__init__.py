"""A numpyro backend for framework: NUTS on the five hyperparameters, group effects drawn exactly."""

from __future__ import annotations

import time

import numpy as np

from framework import (
    Availability,
    BackendError,
    OptionsError,
    SamplingError,
    build_posterior,
    cache_dir,
    draw_group_effects,
    hookimpl,
    require_method,
    unknown_options,
)

DEFAULTS = {"chain_method": "sequential"}
CHAIN_METHODS = ("sequential", "vectorized")  # "parallel" needs one device per chain
HYPER = ("intercept_mu", "slope_mu", "intercept_sigma", "slope_sigma", "error_sigma")


class NumpyroBackend:
    """framework's Backend protocol, written against its public API only."""

    name = "numpyro"
    description = "NumPyro NUTS (JAX, CPU, float64) on the marginal likelihood"
    methods = ("marginal",)

    def available(self) -> Availability:
        # Imported here, not at module level: listing backends should not pay for JAX.
        try:
            import jax  # noqa: F401
            import numpyro  # noqa: F401
        except ImportError as exc:
            return Availability(
                False, f"{exc.name} is not installed: pip install framework-numpyro"
            )
        return Availability(True)

    def validate_options(self, options: dict) -> dict:
        problems = unknown_options(self.name, options, DEFAULTS)
        out = {**DEFAULTS, **{k: v for k, v in options.items() if k in DEFAULTS}}
        if out["chain_method"] not in CHAIN_METHODS:
            problems.append(
                f"backend.options.chain_method: got {out['chain_method']!r}; "
                f"use one of {', '.join(CHAIN_METHODS)}"
            )
        if problems:
            raise OptionsError(problems)
        return out

    def fit(self, problem, settings, options):
        require_method(self, problem.method)
        import jax
        import numpyro
        from numpyro.infer import MCMC, NUTS

        jax.config.update("jax_enable_x64", True)  # float64, like Stan and PyMC
        numpyro.set_platform("cpu")
        if not jax.config.jax_compilation_cache_dir:
            # Compiling NUTS takes ~20 s; JAX's on-disk cache makes later runs take seconds.
            jax.config.update("jax_compilation_cache_dir", str(cache_dir("numpyro")))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        priors = {name: _distribution(name, prior) for name, prior in problem.priors.items()}
        stats = {k: jax.numpy.asarray(v) for k, v in problem.dataset.stats.as_dict().items()}
        kernel = NUTS(
            _model, target_accept_prob=settings.target_accept, max_tree_depth=settings.max_treedepth
        )
        mcmc = MCMC(kernel, num_warmup=settings.warmup, num_samples=settings.draws,
                    num_chains=settings.chains, chain_method=options["chain_method"],
                    progress_bar=False)  # fmt: skip
        problem.report(f"numpyro: sampling {settings.chains} chains of {settings.draws} draws")
        start = time.perf_counter()
        try:
            mcmc.run(jax.random.PRNGKey(settings.seed), priors, stats,
                     extra_fields=("diverging", "num_steps", "accept_prob"))  # fmt: skip
        except Exception as exc:  # map the library's errors into framework's
            raise SamplingError(
                f"backend 'numpyro': sampling failed ({type(exc).__name__}: {exc}); "
                "check the priors and data, or try another backend"
            ) from exc
        seconds = time.perf_counter() - start
        hyper = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        if not all(np.isfinite(v).all() for v in hyper.values()):
            raise SamplingError(
                "backend 'numpyro': non-finite draws; try more warmup or tighter priors"
            )
        extra = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
        # Group effects from their exact conditional, on a stream separate from the NUTS key.
        rng = np.random.default_rng([settings.seed, 1])
        intercept, slope = draw_group_effects(problem.dataset.stats, **hyper, seed=rng)
        return build_posterior(
            hyper,
            {"intercept": intercept, "slope": slope},
            problem.dataset,
            diverging=extra["diverging"],
            sample_stats={
                "acceptance_rate": extra["accept_prob"],
                "n_steps": extra["num_steps"],
                "tree_depth": np.ceil(np.log2(extra["num_steps"] + 1)).astype(int),
            },
            attrs={
                "backend": self.name,
                "engine": "numpyro NUTS",
                "method": problem.method,
                "library_versions": {"numpyro": numpyro.__version__, "jax": jax.__version__},
                "sampling_seconds": seconds,
                "seed": settings.seed,
            },
        )


def _distribution(name, prior):
    """The numpyro distribution of a framework prior; refuse a family it cannot express."""
    import numpyro.distributions as d

    makers = {
        "normal": lambda k: d.Normal(k["mu"], k["sigma"]),
        "student_t": lambda k: d.StudentT(k["nu"], k["mu"], k["sigma"]),
        "cauchy": lambda k: d.Cauchy(k["mu"], k["sigma"]),
        "uniform": lambda k: d.Uniform(k["lower"], k["upper"]),
        "half_normal": lambda k: d.HalfNormal(k["sigma"]),
        "half_cauchy": lambda k: d.HalfCauchy(k["sigma"]),
        "half_student_t": lambda k: d.FoldedDistribution(d.StudentT(k["nu"], 0.0, k["sigma"])),
        "exponential": lambda k: d.Exponential(k["rate"]),
        "gamma": lambda k: d.Gamma(k["alpha"], k["beta"]),
        "inv_gamma": lambda k: d.InverseGamma(k["alpha"], k["beta"]),
        "lognormal": lambda k: d.LogNormal(k["mu"], k["sigma"]),
    }
    if prior.family not in makers:
        raise BackendError(
            f"model.priors.{name}: backend 'numpyro' cannot express a {prior.family} prior; "
            f"use one of {', '.join(makers)}, or another backend"
        )
    return makers[prior.family](prior.kwargs)


def _model(priors, stats):
    """Prior times the marginal likelihood (framework.marginal_loglik's formula, in JAX)."""
    import jax.numpy as jnp
    import numpyro

    mu0, mu1, sa, sb, se = (numpyro.sample(k, priors[k]) for k in HYPER)
    n, xbar, s2 = stats["n"], stats["xbar"], se**2
    m = stats["ybar"] - mu0 - mu1 * xbar  # each group's mean residual under the population line
    rr = stats["syy"] - 2 * mu1 * stats["sxy"] + mu1**2 * stats["sxx"] + n * m**2
    b0, b1 = n * m / s2, (stats["sxy"] - mu1 * stats["sxx"] + xbar * n * m) / s2
    a11, a12 = 1 / sa**2 + n / s2, n * xbar / s2
    a22 = 1 / sb**2 + (stats["sxx"] + n * xbar**2) / s2
    det_a = a11 * a22 - a12**2
    quad = rr / s2 - (a22 * b0**2 - 2 * a12 * b0 * b1 + a11 * b1**2) / det_a
    per_group = n * jnp.log(2 * jnp.pi * s2) + 2 * jnp.log(sa * sb) + jnp.log(det_a) + quad
    numpyro.factor("marginal_loglik", -0.5 * per_group.sum())


@hookimpl
def framework_register_backends(register):
    register.add_backend(NumpyroBackend())
