"""The ``autotuner`` command line. Exit codes: 0 success, 1 internal error, 2 invalid input (argparse's too);
``compare`` and ``tune --baseline``: 6 regressed, 7 inconclusive; 5 an infrastructure problem (a full disk
included); 130 interrupted."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from . import __version__
from .argtypes import positive_int
from .atomic import is_disk_full
from .entry import EXIT_INTERRUPTED
from .space import planned_strategy
from .spec import SpecError
from .validation import LoadedSpec, load_spec, load_specs

if TYPE_CHECKING:
    from .results import StudyResult

EXIT_OK, EXIT_INTERNAL, EXIT_INVALID, EXIT_NO_FEASIBLE, EXIT_INFRASTRUCTURE = 0, 1, 2, 4, 5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autotuner",
        description="Find the fastest launch config of an LLM inference engine under latency SLOs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check tuning specs and report every problem with its location")
    validate.add_argument("paths", nargs="+", metavar="PATH", help="spec files or folders (searched recursively)")
    validate.add_argument("--json", action="store_true", help="print problems and specs as JSON")
    validate.add_argument(
        "--no-engine-flags",
        action="store_true",
        help="skip checking flags with the installed engines' own parsers (faster)",
    )
    validate.set_defaults(run=cmd_validate)

    space = commands.add_parser("space", help="print the size of a spec's search space and list its configs")
    space.add_argument("spec", metavar="SPEC", help="a spec file")
    space.add_argument("--limit", type=positive_int, default=None, metavar="N", help="list at most N configs")
    space.add_argument("--json", action="store_true", help="print the space as JSON")
    space.set_defaults(run=cmd_space)

    tune = commands.add_parser("tune", help="tune a spec: launch, benchmark and judge configs; write results.json")
    tune.add_argument("spec", metavar="SPEC", help="a spec file")
    tune.add_argument(
        "--report-dir",
        default="reports",
        metavar="DIR",
        help="results and logs go to DIR/<spec>/<run-id>/; DIR/<spec>/latest links to the newest run",
    )
    tune.add_argument(
        "--storage",
        metavar="URL",
        default=None,
        help="optuna storage to resume and share the study: sqlite:///study.db, postgresql://..., or a journal "
        "file (journal:PATH, *.journal, *.log); default: in memory",
    )
    tune.add_argument(
        "--resume",
        action="store_true",
        help="continue the study found in --storage (or join it as another worker); without it, a study that "
        "already has trials is refused",
    )
    tune.add_argument(
        "--heartbeat",
        type=positive_int,
        default=30,
        metavar="SECONDS",
        help="trial heartbeat interval on SQL storages; a dead worker's trial is retried after 2x+1 s (default 30)",
    )
    tune.add_argument("--max-trials", type=positive_int, default=None, metavar="N", help="override search.max_trials")
    tune.add_argument("--timeout", default=None, metavar="DURATION", help="override search.timeout (e.g. 30m)")
    tune.add_argument(
        "--baseline",
        metavar="PATH",
        default=None,
        help="main's baseline.json (or a folder with <spec>/baseline.json): after the search, A/B its best config "
        "against this run's best and give a regression verdict (exit 6 regressed, 7 inconclusive)",
    )
    tune.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="compare with a baseline from other hardware or another engine (stored numbers, with a warning)",
    )
    tune.add_argument(
        "--ab-rounds",
        type=positive_int,
        default=None,
        metavar="N",
        help="interleaved A/B rounds (default: the larger of 5 and search.repeats)",
    )
    tune.set_defaults(run=cmd_tune)

    serve = commands.add_parser("serve", help="start the engine for one config of a spec; Ctrl-C stops it")
    serve.add_argument("spec", metavar="SPEC", help="a spec file")
    serve.add_argument(
        "--config",
        metavar="ID",
        default=None,
        help="baseline, a config hash, or a readable id (name=value,...); default: the baseline",
    )
    serve.add_argument("--log-dir", default="reports/serve", metavar="DIR", help="where the engine log goes")
    serve.set_defaults(run=cmd_serve)

    report = commands.add_parser(
        "report", help="render the report of a run from its results.json again (nothing is measured)"
    )
    report.add_argument("results", metavar="RESULTS.json", help="a run's results.json")
    report.add_argument(
        "--baseline",
        metavar="BASELINE.json",
        default=None,
        help="another results.json (e.g. reports/<spec>/baseline.json) to compare the best config with",
    )
    report.add_argument(
        "--out", metavar="DIR", default=None, help="where the report goes (default: beside RESULTS.json)"
    )
    report.set_defaults(run=cmd_report)

    reap = commands.add_parser("reap", help="stop engines that killed runs of the tool left running")
    reap.add_argument(
        "--launcher",
        choices=("process", "docker", "kubernetes"),
        action="append",
        help="which launchers to check; repeat for several (default: process, and docker when a daemon answers)",
    )
    reap.set_defaults(run=cmd_reap)
    _add_regression_commands(commands)
    _add_github_commands(commands)
    return parser


def _summary(item: LoadedSpec) -> dict[str, object]:
    spec = item.spec
    count = item.space.count()
    feasible = count.feasible if count else None
    return {
        "file": str(item.path),
        "name": spec.name,
        "runtime": spec.engine.runtime,
        "launcher": spec.engine.launcher,
        "parameters": list(spec.parameters),
        "grid": count.total if count else None,
        "configs": feasible,
        "strategy": spec.search.strategy,
        "flags": item.flags_checked_with,
        "planned_strategy": planned_strategy(
            spec.search.strategy,
            multi_objective=spec.multi_objective,
            feasible=feasible,
            max_trials=spec.search.max_trials,
        ),
    }


def cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    try:
        loaded = load_specs(args.paths, engine_flags=not args.no_engine_flags)
    except SpecError as exc:
        if args.json:
            json.dump(
                {
                    "valid": False,
                    "problems": [
                        {"file": p.file, "line": p.line, "column": p.column, "path": list(p.path), "message": p.message}
                        for p in exc.problems
                    ],
                },
                out,
                indent=2,
            )
            out.write("\n")
        else:
            for problem in exc.problems:
                print(problem, file=out)
            files = len({p.file for p in exc.problems})
            print(f"{len(exc.problems)} problem(s) in {files} file(s)", file=out)
        return EXIT_INVALID
    summaries = [_summary(item) for item in loaded]
    if args.json:
        json.dump({"valid": True, "specs": summaries}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    for s in summaries:
        size = (
            "continuous space"
            if s["configs"] is None and s["grid"] is None
            else f"{s['configs'] if s['configs'] is not None else s['grid']} configs"
        )
        print(
            f"ok  {s['file']}  {s['name']}: {s['runtime']} via {s['launcher']}, {size}, "
            f"strategy {s['strategy']} -> {s['planned_strategy']}" + (f", flags: {s['flags']}" if s["flags"] else ""),
            file=out,
        )
    print(f"{len(summaries)} spec(s) valid", file=out)
    return EXIT_OK


def _load_or_report(path: str, out: TextIO) -> LoadedSpec | None:
    """One spec, or None after printing its problems (the commands that take one spec share this)."""
    try:
        return load_spec(path)
    except SpecError as exc:
        for problem in exc.problems:
            print(problem, file=out)
        return None


def cmd_space(args: argparse.Namespace, out: TextIO) -> int:
    item = _load_or_report(args.spec, out)
    if item is None:
        return EXIT_INVALID
    space = item.space
    count = space.count()
    summary = _summary(item)
    configs = []
    if count is not None and count.feasible is not None:
        for index, config in enumerate(space.grid()):
            if args.limit is not None and index >= args.limit:
                break
            configs.append(config)
    if args.json:
        json.dump(
            {**summary, "listed": [{"id": c.id, "hash": c.hash, "config": c.as_dict()} for c in configs]}, out, indent=2
        )
        out.write("\n")
        return EXIT_OK
    spec = item.spec
    if count is None:
        print(
            f"{spec.name}: continuous space (float ranges without step: {', '.join(space.continuous)}); "
            f"sampled strategies draw from it",
            file=out,
        )
    elif count.feasible is None:
        print(f"{spec.name}: {count.total} configs in the grid, too many to enumerate under constraints", file=out)
    else:
        excluded = count.total - count.feasible
        note = f" ({count.total} in the grid, {excluded} excluded by constraints)" if excluded else ""
        print(f"{spec.name}: {count.feasible} configs{note}", file=out)
    print(
        f"strategy {spec.search.strategy} -> {summary['planned_strategy']}"
        f"{'' if spec.search.max_trials is None else f', max_trials {spec.search.max_trials}'}",
        file=out,
    )
    for config in configs:
        print(f"  {config.hash}  {config.id}", file=out)
    if count is not None and count.feasible is not None and args.limit is not None and count.feasible > args.limit:
        print(f"  ... {count.feasible - args.limit} more (raise --limit to list them)", file=out)
    return EXIT_OK


def cmd_tune(args: argparse.Namespace, out: TextIO) -> int:
    from pathlib import Path

    from .ab import BaselineMismatch
    from .baseline import BaselineError
    from .launch import InfrastructureError
    from .storage import StorageError
    from .study import StudyExists
    from .tune import TuneOptions, latest_results, tune
    from .units import parse_duration

    item = _load_or_report(args.spec, out)
    if item is None:
        return EXIT_INVALID
    try:
        timeout = parse_duration(args.timeout).total_seconds() if args.timeout else None
    except ValueError as exc:
        print(f"autotuner tune: --timeout: {exc}", file=out)
        return EXIT_INVALID
    options = TuneOptions(
        report_dir=Path(args.report_dir),
        storage=args.storage,
        resume=args.resume,
        heartbeat=args.heartbeat,
        max_trials=args.max_trials,
        timeout=timeout,
        baseline=Path(args.baseline) if args.baseline else None,
        allow_mismatch=args.allow_mismatch,
        ab_rounds=args.ab_rounds,
    )
    where = latest_results(Path(args.report_dir), item.spec.name)
    try:
        result = tune(item, options, progress=lambda text: print(text, file=out, flush=True))
        # Inside the try: an interrupt while the summary is printed is still "interrupted, resume like this".
        return _tune_outcome(result, out)
    except (BaselineError, BaselineMismatch) as exc:
        print(f"autotuner tune: --baseline: {exc}", file=out)
        return EXIT_INVALID
    except InfrastructureError as exc:
        print(f"autotuner tune: {exc}", file=out)
        return EXIT_INFRASTRUCTURE
    except (StudyExists, StorageError) as exc:
        print(f"autotuner tune: {exc}", file=out)
        return EXIT_INVALID
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        # A write on an open file names no file: then the run's folder, where the study was writing.
        full = exc.filename or f"into {where.resolve().parent}"
        print(
            f"autotuner tune: no space left on device: cannot write {full}; every trial measured before is in "
            f"{where}; {_resume_hint(args)}",
            file=out,
        )
        return EXIT_INFRASTRUCTURE
    except KeyboardInterrupt:
        print(f"interrupted: what was measured is in {where}; {_resume_hint(args)}", file=out)
        return EXIT_INTERRUPTED


def _tune_outcome(result: StudyResult, out: TextIO) -> int:
    """The summary of a finished study, and its exit code (4 when no config met the SLOs, 6/7 from --baseline)."""
    from .summary import summarize

    print(summarize(result), file=out)
    if result.best_trial is None:
        return EXIT_NO_FEASIBLE
    if result.comparison is not None:
        from .compare import exit_code, format_comparison

        print(format_comparison(result.comparison), file=out)
        return exit_code(result.comparison)
    return EXIT_OK


def _resume_hint(args: argparse.Namespace) -> str:
    """How to continue a stopped study (the storage URL masked: it may hold a database password)."""
    from .secrets import Masker

    if not args.storage:
        return "to make a study resumable, run it with --storage sqlite:///study.db (or a PostgreSQL URL)"
    storage = Masker.from_environ().mask(args.storage)
    return f"resume with: autotuner tune {args.spec} --storage {storage} --resume"


def _read_results(path: str, out: TextIO) -> StudyResult | None:
    """A results file, or None after one clear line naming the file (bad input: exit 2, never a traceback)."""
    from pathlib import Path

    from pydantic import ValidationError

    from .results import StudyResult

    try:
        return StudyResult.read(Path(path))
    except OSError as exc:
        print(f"autotuner report: cannot read {path}: {exc.strerror or exc}", file=out)
    except json.JSONDecodeError as exc:
        print(f"autotuner report: {path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}", file=out)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        print(
            f"autotuner report: {path}: not a valid results file ({exc.error_count()} problem(s)); "
            f"first: {where}: {first['msg']}",
            file=out,
        )
    except (ValueError, AttributeError, TypeError) as exc:  # a wrong schema version, or JSON that is not an object
        text = str(exc) if str(exc).startswith(path) else f"{path}: not a results file ({exc})"
        print(f"autotuner report: {text}", file=out)
    return None


def cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    from pathlib import Path

    from .report import write_report

    result = _read_results(args.results, out)
    if result is None:
        return EXIT_INVALID
    baseline = None
    if args.baseline is not None:
        baseline = _read_results(args.baseline, out)
        if baseline is None:
            return EXIT_INVALID
    run_dir = Path(args.results).parent
    out_dir = Path(args.out) if args.out else run_dir
    name = Path(args.results).name if out_dir == run_dir else args.results
    files = write_report(result, out_dir, baseline, run_dir=run_dir, results_name=name)
    for path in files.all():
        print(path, file=out)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from pathlib import Path

    from .serve import ConfigNotFound, select_config, serve

    item = _load_or_report(args.spec, out)
    if item is None:
        return EXIT_INVALID
    try:
        config = select_config(item, args.config)
    except ConfigNotFound as exc:
        print(f"autotuner serve: {exc}", file=out)
        return EXIT_INVALID
    return serve(item, config, log_dir=Path(args.log_dir), out=out)


def cmd_reap(args: argparse.Namespace, out: TextIO) -> int:
    from .launch import InfrastructureError, launcher_for

    kinds = args.launcher or ["process", "docker"]
    for kind in kinds:
        try:
            stopped = launcher_for(kind).reap()
        except (InfrastructureError, ImportError) as exc:
            if args.launcher:
                print(f"{kind}: {exc}", file=out)
                return EXIT_INTERNAL
            continue  # docker not available: nothing of ours can be running there
        for item in stopped:
            print(f"{kind}: stopped {item}", file=out)
        if not stopped:
            print(f"{kind}: nothing left running by earlier runs", file=out)
    return EXIT_OK


# ---------------------------------------------------------------------------------------- regression detection
# `autotuner baseline update SPEC RESULTS.json` and `autotuner compare BASELINE.json RESULTS.json` (issue 8).
# Exit codes of compare (and of tune --baseline): 0 unchanged or improved, 6 regressed, 7 inconclusive, 2 invalid
# input or a baseline from another environment without --allow-mismatch.


def _add_regression_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    baseline = commands.add_parser("baseline", help="manage main's baselines (reports/<spec>/baseline.json)")
    actions = baseline.add_subparsers(dest="action", required=True, metavar="ACTION")
    update = actions.add_parser("update", help="write reports/<spec>/baseline.json from a run's results.json")
    update.add_argument("spec", metavar="SPEC", help="the spec file the run tuned (its current text)")
    update.add_argument("results", metavar="RESULTS.json", help="the run's results.json")
    update.add_argument("--reports-dir", default="reports", metavar="DIR", help="where baselines live (reports)")
    update.set_defaults(run=cmd_baseline_update)

    compare = commands.add_parser(
        "compare", help="compare a run with main's baseline: verdict table; exit 6 regressed, 7 inconclusive"
    )
    compare.add_argument("baseline", metavar="BASELINE.json", help="main's baseline (or any results.json)")
    compare.add_argument("results", metavar="RESULTS.json", help="the run to judge")
    compare.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="compare although hardware or engine differ (every output then carries a warning)",
    )
    compare.add_argument(
        "--threshold",
        default=None,
        metavar="PCT",
        help="override the threshold (default: the one the run was judged with, else the spec's regression.threshold, else 5%%)",
    )
    compare.add_argument(
        "--confidence",
        default=None,
        metavar="PCT",
        help="override the confidence (default: the run's, else the spec's regression.confidence, else 95%%)",
    )
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare.set_defaults(run=cmd_compare)


def cmd_baseline_update(args: argparse.Namespace, out: TextIO) -> int:
    from pathlib import Path

    from .baseline import BaselineError, update

    item = _load_or_report(args.spec, out)
    if item is None:
        return EXIT_INVALID
    try:
        path = update(item.spec.name, item.digest, Path(args.results), Path(args.reports_dir))
    except BaselineError as exc:
        print(f"autotuner baseline update: {exc}", file=out)
        return EXIT_INVALID
    print(path, file=out)
    return EXIT_OK


def _regression_settings(args: argparse.Namespace, result: StudyResult) -> tuple[float, float]:
    """--threshold/--confidence, else what the run was judged with, else its spec's, else 5% / 95%."""
    from pathlib import Path

    from .spec import Regression
    from .units import parse_fraction

    settings = Regression()
    if result.comparison is not None:
        settings = Regression(threshold=result.comparison.threshold, confidence=result.comparison.confidence)
    elif Path(result.spec_file).is_file():
        try:
            settings = load_spec(result.spec_file).spec.regression
        except SpecError:
            pass
    threshold = parse_fraction(args.threshold) if args.threshold else settings.threshold
    confidence = parse_fraction(args.confidence) if args.confidence else settings.confidence
    return threshold, confidence


def cmd_compare(args: argparse.Namespace, out: TextIO) -> int:
    from pathlib import Path

    from .baseline import BaselineError, read_baseline
    from .compare import compare_results, environment_mismatch, exit_code, format_comparison

    try:
        baseline = read_baseline(Path(args.baseline))
    except BaselineError as exc:
        print(f"autotuner compare: {exc}", file=out)
        return EXIT_INVALID
    result = _read_results(args.results, out)
    if result is None:
        return EXIT_INVALID
    mismatch = environment_mismatch(baseline.environment, result.environment)
    if mismatch and not args.allow_mismatch:
        print(
            "autotuner compare: refused: the baseline was measured elsewhere: "
            + "; ".join(mismatch)
            + " (pass --allow-mismatch to compare anyway, with a warning)",
            file=out,
        )
        return EXIT_INVALID
    try:
        threshold, confidence = _regression_settings(args, result)
    except ValueError as exc:
        print(f"autotuner compare: {exc}", file=out)
        return EXIT_INVALID
    recorded = result.comparison
    base_best = baseline.best()
    by_number = {t.number: t for t in result.trials}
    ab = (
        recorded is not None
        and recorded.mode == "ab"
        and base_best is not None
        and recorded.baseline_config_hash == base_best.config_hash
        and all(n in by_number for n in (*recorded.baseline_trials, *recorded.current_trials))
    )
    try:
        comparison = compare_results(
            baseline,
            result,
            threshold=threshold,
            confidence=confidence,
            mode="ab" if ab else "stored",
            baseline_records=[by_number[n] for n in recorded.baseline_trials] if ab and recorded else None,
            current_records=[by_number[n] for n in recorded.current_trials] if ab and recorded else None,
            allow_mismatch=args.allow_mismatch,
            source=args.baseline,
        )
    except ValueError as exc:
        print(f"autotuner compare: {exc}", file=out)
        return EXIT_INVALID
    if args.json:
        json.dump(comparison.model_dump(mode="json"), out, indent=2)
        out.write("\n")
    else:
        print(format_comparison(comparison), file=out)
    return exit_code(comparison)


# ---------------------------------------------------------------------------------------------- GitHub (issue 9)
# `autotuner github publish`: job summary, step outputs and the sticky PR comment from a run's files
# (autotuner/github/publish.py). PyGithub is imported only when the command runs.


def _add_github_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from pathlib import Path

    github = commands.add_parser("github", help="publish runs to GitHub: job summary, outputs, sticky PR comment")
    actions = github.add_subparsers(dest="github_command", required=True, metavar="COMMAND")
    p = actions.add_parser("publish", help="write the job summary and outputs; post or update the PR comment")
    p.add_argument("--report-dir", type=Path, default=Path("reports"), metavar="DIR", help="where the runs are")
    p.add_argument(
        "--results", type=Path, action="append", default=[], metavar="FILE", help="a results.json (repeatable)"
    )
    p.add_argument("--baseline-dir", type=Path, default=None, metavar="DIR", help="main's <spec>/baseline.json files")
    p.add_argument("--key", default="default", help="names the sticky comment: one comment per key (spec set)")
    p.add_argument("--no-comment", dest="comment", action="store_false", help="write summary and outputs only")
    p.add_argument("--no-assets", dest="assets", action="store_false", help="push no charts (Mermaid instead)")
    p.add_argument(
        "--assets-branch",
        default="autotuner-assets",
        metavar="BRANCH",
        help="branch the chart PNGs are committed to (empty: never push; the comment shows Mermaid instead)",
    )
    p.add_argument("--artifact-url", default=None, metavar="URL", help="link to the uploaded artifact")
    p.add_argument(
        "--pr-file", type=Path, default=None, metavar="PR.json", help="workflow_run: the tuning job's pr.json"
    )
    p.add_argument("--author", default=None, help="the token's login when GET /user cannot tell (GitHub Apps)")
    p.add_argument("--pytest-exit", type=int, default=None, metavar="CODE", help="the tuning step's exit code")
    p.add_argument(
        "--fail-on-regression",
        choices=("true", "false"),
        default="true",
        help="exit non-zero on a regressed or inconclusive verdict (false: report it only)",
    )
    p.add_argument("--ref-name", default=None, help="names the assets folder outside PRs (default GITHUB_REF_NAME)")
    p.set_defaults(run=cmd_github_publish)


def cmd_github_publish(args: argparse.Namespace, out: TextIO) -> int:
    from .github.publish import cmd_github_publish as publish

    return publish(args, out)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """The ``autotuner`` program (``argv`` None: the command line; the console script and ``python -m autotuner``),
    or a command run in-process (tests, benchmarks) with ``argv`` given.

    The program's exit status must be the one chosen here, even if an interrupt lands after this returns: the
    work is done then (results and report written, engines stopped), yet the interpreter still tears itself down,
    and CPython puts SIGINT back to its default action before it unloads modules. A Ctrl-C (or a CI runner's
    SIGINT) landing there killed the process by the signal (exit -2) after a complete run, or after the
    "interrupted, resume with ..." message. So the program's last exit handler ignores SIGINT/SIGTERM/SIGHUP.
    Exit handlers run in reverse order: it runs after every handler registered while the command ran; before it,
    an interrupt is a KeyboardInterrupt, which Python reports and ignores while exiting. In-process calls
    (``argv`` given) leave the caller's signal handling alone.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    stream = out if out is not None else sys.stdout
    if argv is None:
        atexit.register(_ignore_stop_signals)
    try:
        return int(args.run(args, stream))
    except KeyboardInterrupt:
        print("autotuner: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        if not is_disk_full(exc):
            return _internal_error(exc)
        where = exc.filename or f"into {os.getcwd()}"
        print(f"autotuner: no space left on device: cannot write {where}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users by default
        return _internal_error(exc)


def _internal_error(exc: Exception) -> int:
    """A bug: one line for users, the traceback with AUTOTUNER_DEBUG=1."""
    if os.environ.get("AUTOTUNER_DEBUG"):
        traceback.print_exception(exc)
    print(
        f"autotuner: internal error: {type(exc).__name__}: {exc} (set AUTOTUNER_DEBUG=1 for the traceback; "
        "please report it)",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


def _ignore_stop_signals() -> None:
    """The program's last exit handler (see ``main``): its exit status can no longer be replaced by a signal."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
