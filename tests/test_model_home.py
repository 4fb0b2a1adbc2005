"""One home for the model: no module outside framework.model spells out a model's parameter names."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The v1 names of the rainfall model's parameters and group effects' posterior variables.
V1_NAMES = re.compile(r"\b(intercept_mu|intercept_sigma|slope_mu|slope_sigma|error_sigma)\b")
HOME = ROOT / "core" / "framework" / "model"


def test_parameter_names_live_only_in_framework_model():
    offenders = []
    for folder in ("core", "plugins", "examples"):
        for path in (ROOT / folder).rglob("*.py"):
            if HOME in path.parents:
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if V1_NAMES.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "model names outside framework.model:\n" + "\n".join(offenders)


def test_the_check_would_see_a_name():
    """The pattern matches the names it is meant to keep at home (a check that can fail)."""
    assert V1_NAMES.search("hyper['slope_sigma'] = 1")
    assert not V1_NAMES.search("group_sd = 1")
