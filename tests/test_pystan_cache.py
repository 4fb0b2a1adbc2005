"""pystan's compile cache: a build cut short by a client timeout is compiled afresh, not reused."""

from __future__ import annotations

import pytest

from framework_stan import program


@pytest.mark.parametrize("log_written", [False, True])
def test_a_build_interrupted_before_its_log_is_compiled_afresh(tmp_path, monkeypatch, log_written):
    # pystan's client gives up on a compile after 300 s (a busy machine) while httpstan goes on
    # to write the module but not its stderr.log; httpstan then fails every later build of it.
    pytest.importorskip("httpstan")
    import httpstan.cache
    import httpstan.models

    from framework_stan import engine_pystan

    monkeypatch.setenv("FRAMEWORK_CACHE_DIR", str(tmp_path))
    code = program.generate(program.Shape("marginal", "centred", 1, False, ("normal",)))
    with engine_pystan.httpstan_cache():
        folder = httpstan.cache.model_directory(httpstan.models.calculate_model_name(code))
        folder.mkdir(parents=True)
        (folder / "stan_services_model.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
        if log_written:
            (folder / "stderr.log").write_text("")
        engine_pystan._discard_interrupted_build(code)
        assert folder.exists() == log_written
        assert engine_pystan.is_compiled(code) == log_written
