"""Labels and numbers as written: YAML 1.2 numbers, unknown forecast groups, NaN/inf/overflow,
big YAML lists, symlink loops, CSV formula cells and terminal control characters (issue 11).

The run is the fake backend's (tests/fake_backend.py): these are contracts of the core
and the CLI, not statistics. Data faults (values too large, a constant response) are
cases of the bad-input corpus (tests/bad_inputs/cases.yaml), run by test_bad_data.py.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import framework
from fake_backend import FakePlugin
from framework.cli.main import main
from framework.cli.safe_text import safe_text
from framework.cli.terminal import table
from framework.errors import DataError, SpecError, UserError
from framework.results.comparison import Comparison, write_comparison
from framework.results.csv_cells import TRIGGERS, neutralise_cell, neutralised, restore_cell
from framework.results.forecasts import forecast_table, near_label
from framework.runner import prepare, run
from framework.spec.load import load_spec
from framework.spec.yaml_source import MAX_VALUES, parse_yaml

TESTS = Path(__file__).resolve().parent
ESC_LABEL = "esc\x1b[2J\rX"  # clears the screen and rewrites the line if echoed raw
LABELS = ["01", "1", "010", "8", "CA", "=cmd()", "-5", ESC_LABEL]


def write_data(path: Path, labels, y=None) -> Path:
    rng = np.random.default_rng(0)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["g", "x", "y"])
        for label in labels:
            for x in range(3):
                out.writerow([label, x, 10 + x + rng.normal() if y is None else y])
    return path


SPEC = """\
name: labels
data: {{path: {data}}}
model: {{formula: y ~ x + (x | g)}}
backend: {{name: fake}}
sampler: {{chains: 2, warmup: 20, draws: 50, seed: 1}}
forecasts:
{forecasts}
output: {{plots: false}}
"""


def write_spec(folder: Path, forecasts: str, data: str = "data.csv") -> Path:
    path = folder / "spec.yaml"
    path.write_text(SPEC.format(data=data, forecasts=forecasts), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fake():
    framework.register_plugin(FakePlugin(), name="fake")
    yield
    framework.unregister_plugin("fake")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labels")
    write_data(folder / "data.csv", LABELS)
    return folder


@pytest.fixture(scope="module")
def result(folder, fake):
    forecasts = (
        "  - {group: 01, x: 1e3}\n  - {group: 010, x: 1.5E-3}\n  - {group: '=cmd()', x: 2}\n"
        "  - {group: Ca, x: 2}\n  - {group: brand-new, x: 2}"
    )
    return run(write_spec(folder, forecasts), output_dir=folder / "run")


def cli(*argv, capsys) -> tuple[int, str, str]:
    """The CLI in this process (the fake backend is registered here); exit code, stdout, stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # an overflow must not leak as a warning
        code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --- YAML 1.2 numbers, labels as written (the "silently wrong answers") -------------


def test_numbers_in_usual_notations_and_labels_as_written(result):
    rows = read_rows(result.output_dir / "forecasts.csv")
    # `group: 01` once forecast group "1" and `010` group "8" (YAML 1.1 octal): now as written.
    assert [r["group"] for r in rows[:2]] == ["01", "010"]
    assert [r["source"] for r in rows[:2]] == ["fitted", "fitted"]
    assert float(rows[0]["x"]) == 1000.0 and float(rows[1]["x"]) == 0.0015  # 1e3 is a number
    fitted = result.forecasts.set_index("group")
    assert fitted.loc["01", "mean"] != fitted.loc["010", "mean"]  # two groups, not one


def test_label_paths_keep_text_and_numbers_stay_numbers(tmp_path, fake):
    write_data(tmp_path / "data.csv", ["01", "NO", "b"])
    spec = load_spec(write_spec(tmp_path, "  - {group: NO, x: 1.5E-3}\n  - {group: 01, x: -2e1}"))
    assert [f.group for f in spec.forecasts] == ["NO", "01"]  # NO is not false, 01 not 1
    assert [f.x for f in spec.forecasts] == [0.0015, -20.0]


# --- a forecast for a group not in the data ----------------------------------------------------


def test_unknown_group_is_noted_in_forecasts_csv_with_did_you_mean(result):
    rows = {r["group"]: r for r in read_rows(result.output_dir / "forecasts.csv")}
    assert rows["Ca"]["source"] == "population"
    assert rows["Ca"]["note"] == "not in the data; did you mean 'CA'?"
    assert rows["brand-new"]["note"] == "not in the data"  # nothing near: no guess
    assert rows["01"]["note"] == ""  # a fitted group has no note


def test_unknown_group_warns_on_the_terminal_of_run(folder, fake, capsys):
    spec = write_spec(folder, "  - {group: Ca, x: 2}\n  - {group: CA, x: 2}")
    code, out, err = cli("run", spec, "-q", "-o", folder / "run-warn", capsys=capsys)
    assert code == 0, err
    warning = [line for line in err.splitlines() if "group 'Ca'" in line]
    assert len(warning) == 1 and warning[0].startswith("framework: warning: ")
    assert "not in the data; did you mean 'CA'?" in warning[0]
    assert "group 'CA'" not in err  # the fitted group is not warned about


def test_forecast_command_warns_about_an_unknown_group(result, capsys):
    code, out, err = cli("forecast", result.output_dir, "--group", "ca", "--x", "1", capsys=capsys)
    assert code == 0
    assert err.strip() == (
        "framework: warning: forecast for group 'ca': not in the data; did you mean 'CA'? "
        "(forecast from the population, as a new group)"
    )
    assert "population" in out and "did you mean 'CA'?" in out


def test_new_groups_error_refuses_with_did_you_mean(result, capsys):
    code, out, err = cli(
        "forecast", result.output_dir, "--group", "Ca", "--x", "1", "--new-groups", "error",
        capsys=capsys,
    )  # fmt: skip
    assert code == 2 and out == ""
    assert err.startswith("group 'Ca' is not in the data; did you mean 'CA'?")


@pytest.mark.parametrize(
    ("group", "near"),
    [
        ("Ca", "CA"),
        (" ca ", "CA"),
        ("01 ", "01"),
        ("=CMD()", "=cmd()"),
        ("'=cmd()", "=cmd()"),  # copied from estimates.csv, with the neutralising quote
        ("zzzz", None),
    ],
)
def test_near_label_ignores_case_and_spaces(group, near):
    assert near_label(group, LABELS) == near


# --- NaN, infinities and overflow ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"x": float("nan")}, "x = nan must be a finite number"),
        ({"x": float("-inf")}, "x = -inf must be a finite number"),
        ({"x": 1e308}, "x = 1e+308 is too large; give a value of at most 1e+100"),
        ({"x": "-1e200"}, "x = -1e200 is too large"),  # as --at gives it: text
        ({"x": "nan"}, "x = nan must be a finite number"),
    ],
)
def test_forecasts_refuse_nan_inf_and_overflowing_values(result, values, says):
    with pytest.raises(UserError) as caught:
        forecast_table(result.idata, result.model, [("CA", values)])
    assert str(caught.value) == f"forecast for group 'CA': {says}" or says in str(caught.value)


@pytest.mark.parametrize(
    "args", [["--x", "inf"], ["--x", "1e308"], ["--at", "x=nan"], ["--at", "x=1e300"]]
)
def test_forecast_command_refuses_them_in_one_line(result, capsys, args):
    code, out, err = cli("forecast", result.output_dir, "--group", "CA", *args, capsys=capsys)
    assert code == 2 and out == ""
    assert err.startswith("forecast for group 'CA': x = ") and len(err.splitlines()) == 1


def test_large_finite_forecasts_print_compactly_never_as_inf(result, capsys):
    code, out, err = cli("forecast", result.output_dir, "--group", "CA", "--x", "1e99",
                         capsys=capsys)  # fmt: skip
    assert code == 0 and err == ""
    assert "inf" not in out and "e+99" in out
    assert max(len(line) for line in out.splitlines()) < 200  # not hundreds of digits


def test_spec_forecast_with_overflowing_x_is_refused_before_sampling(tmp_path, fake):
    write_data(tmp_path / "data.csv", ["a", "b"])
    with pytest.raises(SpecError, match=r"forecasts.0.x: must be at most 1e\+100 in size"):
        load_spec(write_spec(tmp_path, "  - {group: a, x: 1e308}"))
    # `at` values are checked once the data say which columns are numeric, still before sampling.
    spec = load_spec(write_spec(tmp_path, "  - {group: a, at: {x: .inf}}"))
    with pytest.raises(UserError, match=r"forecasts.0.at.x: 'x' is numeric: give a finite"):
        prepare(spec, check_available=False)


def test_huge_response_is_refused_before_any_overflow_warning(tmp_path, fake):
    # The case: one y of 1e300 printed 22 warning lines and a pystan dump.
    write_data(tmp_path / "data.csv", ["a", "b", "c"])
    lines = (tmp_path / "data.csv").read_text().splitlines()
    lines[5] = "b,1,1e300"
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    spec = load_spec(write_spec(tmp_path, "  - {group: a, x: 1}"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way to the message
        with pytest.raises(DataError, match=r"data.csv:6: column 'y' .* too large .*line\(s\) 6"):
            prepare(spec, check_available=False)


def test_constant_response_is_refused(tmp_path, fake):
    write_data(tmp_path / "data.csv", ["a", "b", "c"], y=3)
    spec = load_spec(write_spec(tmp_path, "  - {group: a, x: 1}"))
    with pytest.raises(DataError, match=r"has the same value \(3\) in every row"):
        prepare(spec, check_available=False)


# --- big YAML lists and symlink loops -------------------------------------------------------------


def test_a_big_plain_list_is_not_an_alias_bomb():
    # Once refused after 34 s as an alias expansion. Its speed is not asserted (shared CI
    # machines); libyaml's parser reads it in ~2 s where the pure-Python one took ~20 s.
    text = "name: big\nvalues:\n" + "".join(f"  - {i}\n" for i in range(150_000))
    value, lines = parse_yaml(text, "big.yaml")
    assert value["values"][-1] == 149_999 and len(value["values"]) == 150_000
    assert lines.line(("values", 149_999)) == 150_002


def test_a_real_alias_bomb_is_still_refused_plain_or_large():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdef", "bcdefg", strict=True)
    )
    padding = "".join(f"p{i}: {i}\n" for i in range(20_000))  # a long text takes libyaml's path
    for text in (bomb, padding + bomb):
        with pytest.raises(SpecError, match=f"expands to more than {MAX_VALUES} values"):
            parse_yaml(text, "bomb.yaml")


def test_half_characters_from_escapes_are_refused():
    # Found by test_label_roundtrip: "\ud800\udf26" once crashed the forecast table (exit 1).
    with pytest.raises(
        SpecError, match=r"big.yaml:2: a \\u escape here writes half of a character"
    ):
        parse_yaml('name: x\nlabel: "\\ud800\\udf26"\n', "big.yaml")
    assert parse_yaml('label: "\\U00010326"\n')[0] == {"label": "\U00010326"}


def test_symlink_loop_is_named_as_such(tmp_path):
    write_data(tmp_path / "real.csv", ["a", "b"])
    os.symlink("loop2.csv", tmp_path / "loop1.csv")
    os.symlink("loop1.csv", tmp_path / "loop2.csv")
    os.symlink("gone.csv", tmp_path / "dangling.csv")
    spec = write_spec(tmp_path, "  - {group: a, x: 1}", data="loop1.csv")
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    message = str(caught.value)
    assert "spec.yaml:2: data.path: " in message and "loop1.csv is a symbolic link loop" in message
    assert "did you mean" not in message and "does not exist" not in message
    spec = write_spec(tmp_path, "  - {group: a, x: 1}", data="dangling.csv")
    with pytest.raises(SpecError, match="dangling.csv is a symbolic link to gone.csv, which does"):
        load_spec(spec)


def test_symlink_loop_as_the_spec_is_named_through_the_cli(tmp_path):
    os.symlink("b.yaml", tmp_path / "a.yaml")
    os.symlink("a.yaml", tmp_path / "b.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "framework.cli", "validate", "a.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "a.yaml: is a symbolic link loop (following it leads back to itself); "
        "give the spec file itself"
    )


# --- CSV cells a spreadsheet would run -------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "written"),
    [
        ("=cmd()", "'=cmd()"),
        ("+1+1", "'+1+1"),
        ("-1+2", "'-1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tq", "'\tq"),
        ("\rq", "'\rq"),
        ("'=x", "''=x"),  # a label that itself starts with a quote before a trigger
        ("-5", "-5"),  # text that is just a number stays a number
        ("+2.5e-3", "+2.5e-3"),
        ("-inf", "'-inf"),
        ("'plain", "'plain"),
        ("CA", "CA"),
        ("", ""),
    ],
)
def test_cells_are_neutralised_reversibly(label, written):
    assert neutralise_cell(label) == written
    assert restore_cell(written) == label


def test_numbers_stay_numbers_and_the_frame_is_not_changed():
    frame = pd.DataFrame({"group": ["=A", "B"], "mean": [-1.5, 2.0], "=col": ["x", "y"]})
    out = neutralised(frame)
    assert list(out.columns) == ["group", "mean", "'=col"]
    assert out["group"].tolist() == ["'=A", "B"] and out["mean"].tolist() == [-1.5, 2.0]
    assert frame["group"].tolist() == ["=A", "B"]  # the caller's frame is untouched


def test_every_csv_of_a_run_is_neutralised_and_posterior_keeps_labels(result):
    out = result.output_dir
    est = read_rows(out / "estimates.csv")
    groups = list(dict.fromkeys(r["group"] for r in est))
    assert "'=cmd()" in groups and "=cmd()" not in groups
    assert "-5" in groups  # a number-like label is not quoted
    assert [restore_cell(g) for g in groups] == LABELS
    forecasts = [r["group"] for r in read_rows(out / "forecasts.csv")]
    assert "'=cmd()" in forecasts
    saved = framework.load_posterior(out)
    assert [str(g) for g in saved.posterior.coords["group"].values] == LABELS
    for name in ("estimates.csv", "hyperparameters.csv", "forecasts.csv"):
        for row in read_rows(out / name):
            for cell in row.values():
                # A spreadsheet runs a cell starting with a trigger; only numbers may.
                assert cell[:1] not in TRIGGERS or _is_float(cell), (name, cell)


def test_compare_csv_is_neutralised(tmp_path):
    frame = pd.DataFrame({"variable": ["coef"], "parameter": ["=evil()"], "diff_mcse": [-1.0]})
    write_comparison(Comparison(frame.assign(flagged=False), runs={}), tmp_path / "cmp")
    row = read_rows(tmp_path / "cmp" / "compare.csv")[0]
    assert row["parameter"] == "'=evil()" and row["diff_mcse"] == "-1.0"


# --- control characters on the terminal --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\x1b[31mb", "a\\x1b[31mb"),
        ("a\rb\x00c\x7f", "a\\rb\\x00c\\x7f"),
        ("csi\x9b2J", "csi\\x9b2J"),
        ("rtl\u202eabc", "rtl\\u202eabc"),
        ("two\nlines\tx", "two\\nlines\\tx"),
        ("Zürich ☔", "Zürich ☔"),
    ],
)
def test_safe_text_escapes_control_characters(text, shown):
    assert safe_text(text) == shown
    assert safe_text(shown) == shown  # idempotent: escaping twice changes nothing


def test_safe_text_keeps_the_newlines_of_a_message():
    assert safe_text("line 1\nline\x1b 2", keep_newlines=True) == "line 1\nline\\x1b 2"


def test_tables_escape_labels():
    shown = table(pd.DataFrame({"group": [ESC_LABEL], "mean": [1.0]}))
    assert "\x1b" not in shown and "\r" not in shown and "esc\\x1b[2J\\rX" in shown


def test_run_summary_and_errors_echo_no_control_characters(result, capsys):
    code, out, err = cli("forecast", result.output_dir, "--group", ESC_LABEL, "--x", "1",
                         capsys=capsys)  # fmt: skip
    assert code == 0 and "esc\\x1b[2J\\rX" in out
    code, out, err = cli(
        "forecast", result.output_dir, "--group", "new\x1b]0;title\x07", "--x", "1",
        "--new-groups", "error", capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "new\\x1b]0;title\\x07" in err
    for text in (out, err):
        assert not any(ch in text for ch in "\x1b\r\x07\x00")


def test_run_prints_no_raw_control_characters(folder, fake, capsys):
    spec = write_spec(folder, '  - {group: "esc\\e[2J\\rX", x: 2}')  # YAML's escapes for ESC, CR
    code, out, err = cli("run", spec, "-q", "-o", folder / "run-esc", capsys=capsys)
    assert code == 0, err
    assert "esc\\x1b[2J\\rX" in out  # the label in the summary's tables, escaped
    for text in (out, err):
        assert "\x1b" not in text and "\r" not in text


def test_cli_contract_in_a_subprocess(result):
    # The real CLI: exit 2, one line, no traceback, no RuntimeWarning for an overflowing --x.
    proc = subprocess.run(
        [sys.executable, "-m", "framework.cli", "forecast", str(result.output_dir),
         "--group", "Ca", "--x", "1e308"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and proc.stderr.count("\n") == 1
    assert "Warning" not in proc.stderr and "too large" in proc.stderr
