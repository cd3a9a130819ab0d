"""The ``autotuner`` command line. Exit codes: 0 success, 1 internal error, 2 invalid input (argparse's too)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO

from . import __version__
from .space import planned_strategy
from .spec import SpecError
from .validation import LoadedSpec, load_spec, load_specs

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
    space.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="list at most N configs")
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
        type=_positive_int,
        default=30,
        metavar="SECONDS",
        help="trial heartbeat interval on SQL storages; a dead worker's trial is retried after 2x+1 s (default 30)",
    )
    tune.add_argument("--max-trials", type=_positive_int, default=None, metavar="N", help="override search.max_trials")
    tune.add_argument("--timeout", default=None, metavar="DURATION", help="override search.timeout (e.g. 30m)")
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

    reap = commands.add_parser("reap", help="stop engines that killed runs of the tool left running")
    reap.add_argument(
        "--launcher",
        choices=("process", "docker", "kubernetes"),
        action="append",
        help="which launchers to check (default: process, and docker when a daemon answers)",
    )
    reap.set_defaults(run=cmd_reap)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


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

    from .launch import InfrastructureError
    from .storage import StorageError
    from .study import StudyExists
    from .summary import summarize
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
    )
    try:
        result = tune(item, options, progress=lambda text: print(text, file=out, flush=True))
    except InfrastructureError as exc:
        print(f"autotuner tune: {exc}", file=out)
        return EXIT_INFRASTRUCTURE
    except (StudyExists, StorageError) as exc:
        print(f"autotuner tune: {exc}", file=out)
        return EXIT_INVALID
    except KeyboardInterrupt:
        where = latest_results(Path(args.report_dir), item.spec.name)
        how = (
            f"resume with: autotuner tune {args.spec} --storage {args.storage} --resume"
            if args.storage
            else "to make a study resumable, run it with --storage sqlite:///study.db (or a PostgreSQL URL)"
        )
        print(f"interrupted: what was measured is in {where}; {how}", file=out)
        return 130
    print(summarize(result), file=out)
    return EXIT_OK if result.best_trial is not None else EXIT_NO_FEASIBLE


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


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    stream = out if out is not None else sys.stdout
    try:
        return int(args.run(args, stream))
    except KeyboardInterrupt:
        print("autotuner: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users by default
        if os.environ.get("AUTOTUNER_DEBUG"):
            traceback.print_exc()
        print(
            f"autotuner: internal error: {type(exc).__name__}: {exc} (set AUTOTUNER_DEBUG=1 for the traceback; "
            "please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
