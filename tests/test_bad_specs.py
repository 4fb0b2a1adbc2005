"""Every bad spec in tests/bad_inputs gets one clear message from the real CLI: exit 2, no traceback."""

from __future__ import annotations

import pytest
import yaml
from bad_inputs.corpus import HERE, check_refused, load_cases, run_all, skip_reason

from framework import SpecError
from framework.spec import load_spec, validate_spec
from framework.yaml_source import parse_yaml

CASES = load_cases("specs")


@pytest.fixture(scope="module")
def results():
    return run_all(CASES)


def test_corpus_is_large_enough():
    spec_files = list((HERE / "specs").glob("*.yaml"))
    assert len(spec_files) >= 40
    named = {c.args[1] for c in CASES if c.args[0] == "validate"}
    unused = [f.name for f in spec_files if f"specs/{f.name}" not in named]
    assert not unused, f"spec files without an expected message in cases.yaml: {unused}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_spec_gets_one_clear_message(case, results):
    result = results[case.id]
    reason = skip_reason(case, result)
    if reason:
        pytest.skip(reason)
    check_refused(case, result)


def test_python_tag_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    text = f"name: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(SpecError, match="not allowed in a spec"):
        parse_yaml(text)
    assert not marker.exists()


def test_every_problem_of_a_spec_is_reported_at_once():
    raw, lines = parse_yaml(
        "name: a/b\ndata: {path: x.csv, simulate: {}}\nmodel: {response: y}\n"
        "sampler: {chains: 0, seed: -1, target_accept: 2}\nbogus: 1\n"
    )
    with pytest.raises(SpecError) as err:
        validate_spec(raw, None, lines)
    text = str(err.value)
    for path in (
        "name:",
        "model.predictor:",
        "model.group:",
        "sampler.chains:",
        "sampler.seed:",
        "sampler.target_accept:",
        "bogus:",
        "data.simulate.groups:",
    ):
        assert path in text, text
    assert all(p.startswith("<spec>:") for p in err.value.problems), err.value.problems


def test_spec_name_cannot_leave_the_output_folder():
    valid = yaml.safe_load((HERE / "valid.yaml").read_text())
    for name in ("../up", "a/b", "..", "/abs", "a\\b", ".hidden", "x" * 101, "a b", "ä"):
        with pytest.raises(SpecError, match="name: must be a plain name"):
            validate_spec({**valid, "name": name})


def test_locate_points_backend_problems_at_the_spec_line():
    spec = load_spec(HERE / "valid.yaml")
    assert spec.locate("backend.options.foo: unknown option").startswith(
        f"{HERE / 'valid.yaml'}:13: "
    )
    assert spec.locate("no path here") == "no path here"
