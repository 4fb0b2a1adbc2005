"""The public API is what framework/__init__.py re-exports, and nothing breaks importing it."""

import ast
from pathlib import Path

import framework


def test_public_names_are_exported():
    for name in framework.__all__:
        assert hasattr(framework, name), name
    expected = {
        "run",
        "load_spec",
        "build_model",
        "Model",
        "complete_posterior",
        "build_posterior",
        "check_posterior",
        "draw_coefficients",
        "marginal_loglik",
        "designs_loglik",
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


def test_type_checkers_see_every_exported_name():
    """The TYPE_CHECKING imports and the lazy table list the same names."""
    tree = ast.parse(Path(framework.__file__).read_text())
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
    )
    seen = {
        a.asname or a.name
        for n in ast.walk(block)
        if isinstance(n, ast.ImportFrom)
        for a in n.names
    }
    assert seen == set(framework.__all__)


def test_run_is_the_function_not_the_module():
    assert callable(framework.run)
    assert framework.run.__module__ == "framework.runner"
