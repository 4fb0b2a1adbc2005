"""The public API is what framework/__init__.py re-exports, and nothing breaks importing it."""

import framework


def test_public_names_are_exported():
    for name in framework.__all__:
        assert hasattr(framework, name), name
    expected = {
        "run",
        "load_spec",
        "build_posterior",
        "check_posterior",
        "draw_group_effects",
        "marginal_loglik",
        "hookimpl",
        "get_registry",
        "Problem",
        "SamplerSettings",
        "Availability",
        "OptionsError",
        "compare",
        "load_posterior",
    }
    assert expected <= set(framework.__all__)


def test_run_is_the_function_not_the_module():
    assert callable(framework.run)
    assert framework.run.__module__ == "framework.runner"
