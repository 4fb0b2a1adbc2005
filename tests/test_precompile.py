"""The background compiles (precompile.py) build exactly the programs the tests then use."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("framework_stan", reason="the Stan backend is not installed")

import precompile  # noqa: E402
from test_lme4_agreement import spec_for  # noqa: E402
from test_stan_backend import simulate  # noqa: E402

from framework import Problem  # noqa: E402
from framework.data.load import load  # noqa: E402
from framework.spec.load import load_spec  # noqa: E402
from framework.testing.conformance import suite_problem  # noqa: E402
from framework_stan import program  # noqa: E402

SPECS = Path(__file__).resolve().parents[1] / "specs"


def _program(model, dataset, method="marginal", parameterisation="centred") -> str:
    return program.program_for(Problem(model, dataset, method, parameterisation))


def test_every_listed_program_is_one_a_test_builds(tmp_path):
    # A program listed but not used costs a compile; one used but not listed (its text changed)
    # is compiled by its test as before, so only the time would tell.
    built = {}
    for case in ("independent", "correlated"):  # the conformance suite's models
        model, dataset = suite_problem(case)
        built[f"marginal-{case}"] = _program(model, dataset)
        for par in ("centred", "non_centred"):
            built[f"full-{par}-{case}"] = _program(model, dataset, "full", par)
    for case, key in (("q1", "marginal-q1"), ("q3-categorical", "marginal-q3")):
        built[key] = _program(*simulate(case)[:2])  # test_stan_backend's exactness checks
    correlated = simulate("q2-correlated")[:2]  # test_stan_backend's fits
    assert _program(*correlated) == built["marginal-correlated"]
    assert _program(*correlated, "full", "non_centred") == built["full-non_centred-correlated"]
    for spec, key in (("rainfall", "marginal-independent"), ("correlated", "marginal-correlated")):
        assert _program(*load(load_spec(SPECS / f"{spec}.yaml"), keep_rows=False)) == built[key]
    (tmp_path / "lme4.yaml").write_text(yaml.safe_dump(spec_for("sleepstudy")[1]))
    lme4 = load(load_spec(tmp_path / "lme4.yaml"), keep_rows=False)
    built["marginal-correlated-half_normal"] = _program(*lme4)
    from test_cmdstanpy_engine import NORMAL

    built["normal"] = NORMAL
    assert {key: precompile.code(key) for key in precompile.PROGRAMS} == built


def test_every_job_names_a_listed_program_and_a_test_module():
    tests = {p.stem for p in Path(__file__).parent.glob("test_*.py")}
    assert set(precompile.USERS) <= tests
    for jobs in precompile.USERS.values():
        for job in jobs:
            engine, key = job.split(":")
            assert (
                engine in ("pystan", "cmdstanpy", "auto", "density") and key in precompile.PROGRAMS
            )
    # The README's rainfall program through pystan is used by modules that do not wait for
    # jobs, so it is never a pystan job (see precompile.py).
    assert ("pystan", "marginal-independent") not in precompile.jobs_for(list(precompile.USERS))
