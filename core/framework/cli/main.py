"""The `framework` command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from pathlib import Path

from ..errors import DiagnosticsFailed, FrameworkError, Interrupted, UserError
from .safe_text import safe_text


def main(argv: list[str] | None = None) -> int:
    """Run one command; as the `framework` command itself (argv None) the process ends here."""
    code = _command(argv)
    if argv is None:
        from .process_end import end_process

        end_process(code)
    return code


def _command(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    global _MAIN_PID
    _MAIN_PID = os.getpid()
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.handler(args) or 0
    except BrokenPipeError:  # `framework ... | head`: the reader has all it wanted
        # Every output file is in place by the time anything is printed; only the rest of
        # the printout is dropped, so this is no failure (git and ls behave the same).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        _stop_children()
        print(
            "framework: interrupted; no output was written and previous results are untouched",
            file=sys.stderr,
        )
        return Interrupted.exit_code
    except FrameworkError as exc:
        _stop_children()  # on every error path: no sampler process outlives the run
        if args.debug:
            traceback.print_exc()
        # Messages quote labels, paths and values from the user's files: never raw control codes.
        if isinstance(exc, UserError):
            print(safe_text(exc, keep_newlines=True), file=sys.stderr)
        else:
            kind = "" if isinstance(exc, Interrupted) else "error: "
            print(safe_text(f"framework: {kind}{exc}", keep_newlines=True), file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        _stop_children()
        if args.debug:
            traceback.print_exc()
        print(
            f"framework: internal error: {type(exc).__name__}: {safe_text(exc)}\n"
            "Rerun with --debug for the traceback and report it.",
            file=sys.stderr,
        )
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


_MAIN_PID = os.getpid()


def _terminate(signum, frame):
    # SIGTERM takes the same path as Ctrl-C. Re-raising it as SIGINT lets whoever handles
    # Ctrl-C at this moment (asyncio.run cancels its task cleanly) do so; a KeyboardInterrupt
    # raised here could land inside an event loop or a lock and leave the process hanging.
    if os.getpid() != _MAIN_PID:  # a forked worker (e.g. a sampler's pool): just end quietly
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    if signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.SIG_DFL, None):
        signal.raise_signal(signal.SIGINT)
    else:
        raise KeyboardInterrupt


def _stop_children():
    # Sampler worker processes (httpstan's pool, PyMC's chains) would otherwise finish
    # their chains, or hang, before the interpreter may exit.
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return
    for child in mp.active_children():
        child.terminate()


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    p = argparse.ArgumentParser(
        prog="framework",
        description="Bayesian hierarchical regression from a YAML spec.",
        parents=[common],
    )
    sub = p.add_subparsers(dest="command")

    def spec_command(name, handler, help_text):
        c = sub.add_parser(name, help=help_text, parents=[common])
        c.add_argument("spec", type=Path, help="the YAML spec file")
        c.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a spec value, e.g. --set sampler.chains=2 (repeatable)",
        )
        c.set_defaults(handler=handler)
        return c

    c = spec_command("run", _run, "fit a spec and write the run directory")
    c.add_argument(
        "-o", "--output", type=Path, help="run directory (default: output.dir or runs/NAME)"
    )
    c.add_argument("--strict", action="store_true", help="exit 3 when convergence diagnostics fail")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    spec_command(
        "validate", _validate, "check a spec, its data and backend options without fitting"
    )
    c = spec_command("simulate", _simulate, "write the data a spec's simulate block generates")
    c.add_argument("-o", "--output", type=Path, required=True, help="CSV file to write")

    c = spec_command(
        "compare", _compare, "fit a spec with several backends and check that they agree"
    )
    c.add_argument(
        "--backends", required=True, help="comma-separated backend names, e.g. stan,pymc"
    )
    c.add_argument(
        "-o", "--output", type=Path, help="folder for compare.csv (default: runs/NAME-compare)"
    )
    c.add_argument("--strict", action="store_true", help="exit 3 when any parameter disagrees")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress lines")

    c = sub.add_parser(
        "backends", help="list installed backends and whether they can run here", parents=[common]
    )
    c.set_defaults(handler=_backends)

    c = sub.add_parser(
        "forecast", help="forecast from a saved run without refitting", parents=[common]
    )
    c.add_argument("run_dir", type=Path, help="the folder `framework run` wrote")
    c.add_argument(
        "--group", required=True, help="group label (a group not in the data uses the population)"
    )
    c.add_argument(
        "--x",
        type=float,
        action="append",
        default=[],
        help="value of the model's one predictor (repeatable: one forecast each)",
    )
    c.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="a predictor's value, e.g. --at x1=2 --at treatment=b (repeatable)",
    )
    c.add_argument("--new-groups", choices=("population", "error"), default="population")
    c.set_defaults(handler=_forecast)
    return p


def _run(args) -> int:
    from ..spec.load import load_spec

    # The spec first: a bad one is reported before the heavier modules are imported.
    spec = load_spec(args.spec, args.overrides)
    from ..runner import run
    from .terminal import Progress, summary

    progress = Progress(quiet=args.quiet)
    progress(safe_text(f"spec {args.spec} is valid; backend {spec.backend.name}"))
    result = run(spec, output_dir=args.output, progress=progress)
    from ..results.forecasts import notes

    for warning in [*result.dataset.warnings, *notes(result.forecasts)]:
        print(safe_text(f"framework: warning: {warning}"), file=sys.stderr)
    print(safe_text(summary(result), keep_newlines=True))
    if not result.diagnostics["passed"]:
        print(
            "framework: warning: convergence diagnostics failed: "
            + "; ".join(result.diagnostics["problems"]),
            file=sys.stderr,
        )
        if args.strict:
            raise DiagnosticsFailed(
                "--strict: convergence diagnostics failed (see above); outputs were written"
            )
    return 0


def _validate(args) -> int:
    from ..spec.load import load_spec

    spec = load_spec(args.spec, args.overrides)
    from ..runner import prepare

    if spec.output.dir is None:  # output.dir itself was checked with the spec
        from ..results.output_folder import check

        check(spec.output_dir(), spec, f"output folder {spec.output_dir()}")
    prepared = prepare(spec, check_available=False)
    ds = prepared.dataset
    print(
        safe_text(
            f"{args.spec}: valid. {ds.n_rows} rows, {ds.n_groups} groups; "
            f"model {prepared.problem.model.describe()}; backend {spec.backend.name}, "
            f"method {prepared.problem.method}, output {spec.output_dir()}"
        )
    )
    for warning in ds.warnings:
        print(safe_text(f"framework: warning: {warning}"), file=sys.stderr)
    status = prepared.backend.available()
    if not status:
        print(
            f"framework: warning: backend '{spec.backend.name}' cannot run here: {status.reason}",
            file=sys.stderr,
        )
    return 0


def _simulate(args) -> int:
    from ..data.load import scan
    from ..data.simulate import simulated_frame
    from ..errors import SpecError
    from ..spec.load import load_spec
    from ..spec.model_spec import build_model

    spec = load_spec(args.spec, args.overrides)
    if spec.data.simulate is None:
        raise SpecError(
            f"{args.spec}: data.simulate: this spec reads a file; add a simulate block to simulate"
        )
    model = build_model(spec, scan(spec))
    frame = simulated_frame(spec, model)
    from ..results.output_folder import replace_file

    # Atomic, and never over the spec, its data, a folder or a device node.
    replace_file(args.output, lambda tmp: frame.to_csv(tmp, index=False), spec, "-o")
    groups = frame[model.group].nunique()
    print(safe_text(f"wrote {len(frame)} rows, {groups} groups to {args.output}"))
    return 0


def _compare(args) -> int:
    from ..results.comparison import Z_TOLERANCE, compare, write_comparison
    from ..spec.load import load_spec
    from .terminal import Progress, table

    spec = load_spec(args.spec, args.overrides)
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    if len(names) < 2:
        raise UserError("--backends: name at least two backends, e.g. --backends stan,pymc")
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise UserError(f"--backends: {', '.join(twice)} named twice; name each backend once")
    from ..results.output_folder import check

    folder = args.output or spec.output_dir().with_name(f"{spec.name}-compare")
    where = "-o" if args.output else f"output folder {folder}"
    check(folder, spec, where)  # a folder compare may not replace is refused before fitting
    result = compare(spec, names, Progress(quiet=args.quiet))
    write_comparison(result, folder, spec, where)
    is_coef = result.table["variable"] == "coef"
    hyper, effects = result.table[~is_coef], result.table[is_coef]
    print("Hyperparameters (difference in Monte Carlo standard errors and in posterior sds)")
    print(table(hyper.drop(columns="variable")))
    if len(effects):
        print(
            f"\nGroup coefficients: {len(effects)} compared, largest difference {effects['diff_mcse'].max():.2f} MCSE "
            f"/ {effects['diff_sd'].max():.3f} sd, {int(effects['flagged'].sum())} flagged"
        )
    else:  # output.group_draws left them out; their exact summaries follow from the hyperparameters
        print("\nGroup coefficients: not compared (no coef draws; see output.group_draws)")
    print("\nBackends")
    print(table(result.timings()))
    flagged = result.flagged["parameter"].tolist()
    print(
        f"\n{'AGREE' if not flagged else 'DISAGREE'}: tolerance {Z_TOLERANCE:g} MCSE; "
        f"{len(flagged)} parameter(s) flagged{': ' + ', '.join(flagged[:10]) if flagged else ''}"
    )
    print(safe_text(f"Outputs: {folder}"))
    if flagged and args.strict:
        raise DiagnosticsFailed(f"--strict: backends disagree on {len(flagged)} parameter(s)")
    return 0


def _backends(args) -> int:
    from ..backends.plugins import get_registry

    registry = get_registry()
    if not registry.names() and not registry.broken:
        print("no backends installed: pip install framework (built-ins) or a backend plugin")
    for name in registry.names():
        backend = registry.get(name)
        try:
            status = backend.available()
        except Exception as exc:  # an availability check must not break the listing
            status = _unavailable(str(exc))
        state = "available" if status else f"NOT available: {status.reason}"
        print(
            f"{name:10s} {state}\n{'':10s} {backend.description} (plugin {registry.origin(name)}; "
            f"methods: {', '.join(backend.methods)})"
        )
        for line in getattr(status, "details", ()):
            print(f"{'':10s} {line}")
    for broken in registry.broken:
        print(f"{broken.name:10s} BROKEN: plugin failed to load: {broken.reason}")
    for name, plugins in registry.conflicts().items():
        print(
            f"{name:10s} CONFLICT: registered by {' and '.join(map(str, plugins))}; uninstall one"
        )
    return 0


def _unavailable(reason: str):
    from ..backends.registry import Availability

    return Availability(False, reason)


def _forecast(args) -> int:
    from ..results.forecasts import forecast_table, notes, predictors
    from ..results.run_reader import read_run
    from .terminal import table

    at = {}
    for item in args.at:
        column, sep, value = item.partition("=")
        if not sep or not column.strip() or not value.strip():
            raise UserError(f"--at {item}: write COLUMN=VALUE, e.g. --at x=16 or --at trt=b")
        if column.strip() in at:  # the last one would win silently
            raise UserError(f"--at {item}: {column.strip()!r} is given twice; give it once")
        at[column.strip()] = value.strip()
    if not args.group.strip():  # no group in the data has an empty label
        raise UserError("--group: the label is empty; give a group label as in the data")
    idata, model = read_run(args.run_dir)
    if not args.x and not at and predictors(model):
        raise UserError(
            f"forecast: give the predictor values ({', '.join(predictors(model))}): --x VALUE "
            "(a one-predictor model) or --at COLUMN=VALUE for each predictor"
        )
    requests = [(args.group, {**at, "x": x}) for x in args.x] or [(args.group, at)]
    forecasts = forecast_table(idata, model, requests, new_groups=args.new_groups)
    for note in notes(forecasts):
        print(safe_text(f"framework: warning: {note}"), file=sys.stderr)
    print(table(forecasts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
