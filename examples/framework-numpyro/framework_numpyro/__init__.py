"""A numpyro backend for framework: NUTS on the marginal likelihood, coefficients drawn exactly."""

from __future__ import annotations

import time

import numpy as np

from framework import (
    Availability,
    BackendError,
    OptionsError,
    SamplingError,
    cache_dir,
    complete_posterior,
    designs,
    hookimpl,
    require_method,
    unknown_options,
)

DEFAULTS = {"chain_method": "sequential"}
CHAIN_METHODS = ("sequential", "vectorized")  # "parallel" needs one device per chain


class NumpyroBackend:
    """framework's Backend protocol, written against its public API only."""

    name = "numpyro"
    description = "NumPyro NUTS (JAX, CPU, float64) on the marginal likelihood"
    methods = ("marginal",)

    def available(self) -> Availability:
        # Found, not imported: listing backends should not pay 1.5 s for JAX; fit imports them.
        from importlib.util import find_spec

        for name in ("jax", "numpyro"):
            if find_spec(name) is None:
                return Availability(
                    False, f"{name} is not installed: pip install framework-numpyro"
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
        model = problem.model
        priors = {name: _distribution(name, prior) for name, prior in model.priors.items()}
        pooled = {
            k: jax.numpy.asarray(v) for k, v in vars(designs(model, problem.dataset.stats)).items()
        }
        kernel = NUTS(
            _model, target_accept_prob=settings.target_accept, max_tree_depth=settings.max_treedepth
        )
        mcmc = MCMC(kernel, num_warmup=settings.warmup, num_samples=settings.draws,
                    num_chains=settings.chains, chain_method=options["chain_method"],
                    progress_bar=False)  # fmt: skip
        problem.report(f"numpyro: sampling {settings.chains} chains of {settings.draws} draws")
        start = time.perf_counter()
        try:
            mcmc.run(jax.random.PRNGKey(settings.seed), model, priors, pooled,
                     extra_fields=("diverging", "num_steps", "accept_prob"))  # fmt: skip
        except Exception as exc:  # map the library's errors into framework's
            raise SamplingError(
                f"backend 'numpyro': sampling failed ({type(exc).__name__}: {exc}); "
                "check the priors and data, or try another backend"
            ) from exc
        seconds = time.perf_counter() - start
        samples = mcmc.get_samples(group_by_chain=True)
        draws = {name: np.asarray(samples[name]) for name in model.variables() if name in samples}
        extra = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
        # framework draws each group's coefficients from their exact conditional, seeded
        # from settings.seed, and assembles the common posterior.
        return complete_posterior(
            problem,
            settings,
            draws,
            {
                "diverging": extra["diverging"],
                "acceptance_rate": extra["accept_prob"],
                "n_steps": extra["num_steps"],
                "tree_depth": np.ceil(np.log2(extra["num_steps"] + 1)).astype(int),
            },
            {
                "backend": self.name,
                "engine": "numpyro NUTS",
                "library_versions": {"numpyro": numpyro.__version__, "jax": jax.__version__},
                "sampling_seconds": seconds,
                **problem.fit_attrs(settings),
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


def _model(model, priors, d):
    """Priors times the marginal likelihood over pooled designs (framework.designs_loglik, in JAX)."""
    import jax.numpy as jnp
    import numpyro
    from jax.scipy.linalg import solve_triangular
    from numpyro.distributions import LKJCholesky

    def vector(variable, names):
        return jnp.stack(
            [numpyro.sample(f"{variable}[{t}]", priors[f"{variable}[{t}]"]) for t in names]
        )

    beta = numpyro.deterministic("beta", vector("beta", model.term_names))
    sd = numpyro.deterministic("group_sd", vector("group_sd", model.group_term_names))
    sigma = numpyro.sample("sigma", priors["sigma"])
    q = len(sd)
    if model.correlated:
        chol = numpyro.sample("corr_cholesky", LKJCholesky(q, model.corr_prior.eta))
        corr = numpyro.deterministic("group_corr", chol @ chol.T)
    else:
        corr = jnp.eye(q)
    cov = sd[:, None] * corr * sd[None, :]
    w = 1 / sigma**2
    a = jnp.linalg.inv(cov) + w * d["ztz"]  # one q x q matrix per design
    low = jnp.linalg.cholesky(a)
    e = d["a"] - jnp.einsum("kqp,p->kq", d["ztx"], beta)
    v = solve_triangular(low, e[..., None], lower=True)[..., 0]
    s = solve_triangular(low, d["scatter"], lower=True)
    quad = d["groups"] * jnp.sum(v**2, -1) + jnp.sum(s**2, (-2, -1))
    m = d["ybar"] - d["xbar"] @ beta
    rr = d["syy"] - 2 * beta @ d["sxy"] + beta @ d["sxx"] @ beta
    rr = rr + jnp.sum(d["n"] * (d["ybar_ss"] + d["groups"] * m**2))
    log_det_a = 2 * jnp.sum(jnp.log(jnp.diagonal(low, axis1=-2, axis2=-1)), -1)
    log_det_cov = jnp.linalg.slogdet(cov)[1]
    per_design = d["n"] * jnp.log(2 * jnp.pi / w) + log_det_cov + log_det_a
    numpyro.factor("marginal_loglik", -0.5 * (jnp.sum(d["groups"] * per_design) + w * rr)
                   + 0.5 * w**2 * jnp.sum(quad))  # fmt: skip


@hookimpl
def framework_register_backends(register):
    register.add_backend(NumpyroBackend())
