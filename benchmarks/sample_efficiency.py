"""Sample efficiency of the search strategies, replayed on a landscape measured for real once.

Measuring a config of the embedded default takes 15-20 s, so comparing strategies over many seeds by measuring
is out of reach; and a synthetic landscape would only say how the strategies do on a shape we made up. So the
full grid of ``tuning_specs/smollm2-cpu.yaml`` (48 configs, plus the spec's baseline) was measured once, with
the real engine and real genai-bench, and stored as data in ``benchmarks/data/smollm2-cpu-landscape.json``.
This script replays that landscape through the real study code (:class:`autotuner.study.Study`: its samplers,
its grid plan, its duplicate handling and its budget), with every trial answered from the recording instead of
launching anything, and reports for each strategy over 20 seeds how many trials (the baseline trial counted) it
needs to measure a config within 2% of the best feasible objective::

    python benchmarks/sample_efficiency.py                       # the table (about 10 s)
    python benchmarks/sample_efficiency.py --seeds 5 --budget 30
    python benchmarks/sample_efficiency.py record <results.json> --spec <grid copy> --load "..."  # re-record

The issue's target: ``auto`` needs at most 25% of the grid (median). The landscape's own spread is printed
first, because the target means little when many configs are within 2% of the best.

Replay seam: ``Study.run_trial`` (the trial pipeline by default) is given a function that looks the config up
in the landscape; the context's launcher and bench raise if anything tries to launch or benchmark.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from autotuner.launch.base import Deployment, Launcher, LaunchRequest  # noqa: E402
from autotuner.results import ObjectiveRecord, Outcome, StudyResult, TrialRecord  # noqa: E402
from autotuner.space import Config  # noqa: E402
from autotuner.study import Study, StudyOptions  # noqa: E402
from autotuner.trial import TrialContext  # noqa: E402
from autotuner.validation import LoadedSpec, load_spec  # noqa: E402

SPEC = REPO / "tuning_specs" / "smollm2-cpu.yaml"
DATA = REPO / "benchmarks" / "data" / "smollm2-cpu-landscape.json"
STRATEGIES = ("grid", "random", "tpe", "auto")  # nsga2 is for several objectives: this spec has one
TOLERANCE = 0.02  # "within 2% of the best feasible objective"
TARGET_SHARE = 0.25  # the target for auto: at most 25% of the grid (median)
SEEDS = 20
DATA_VERSION = 1

RunTrial = Callable[..., TrialRecord]


# ---------------------------------------------------------------------------------------------------- the landscape
@dataclass(frozen=True)
class Point:
    """One recorded config: what a replayed trial of it returns."""

    config: dict[str, bool | int | float | str]
    hash: str
    outcome: Outcome
    objective: float | None  # output throughput under the SLOs (tokens/s); None when infeasible or failed
    reason: str = ""
    baseline: bool = False


@dataclass(frozen=True)
class Landscape:
    """Every config a study of the spec can measure, with its recorded result, keyed by config hash."""

    points: dict[str, Point]
    grid_size: int  # configs of the spec's grid (the baseline may lie outside it)
    repeats: tuple[tuple[str, float | None, float | None], ...] = ()  # (config id, in the grid, measured again)

    @classmethod
    def of(cls, points: Sequence[Point], grid_size: int) -> Landscape:
        return cls({p.hash: p for p in points}, grid_size)

    @classmethod
    def read(cls, path: Path) -> Landscape:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != DATA_VERSION:
            raise ValueError(f"{path}: landscape version {data.get('version')}, this script reads {DATA_VERSION}")
        points = [
            Point(
                config=c["config"],
                hash=c["hash"],
                outcome=c["outcome"],
                objective=c["objective"],
                reason=c.get("reason", ""),
                baseline=c.get("baseline", False),
            )
            for c in data["configs"]
        ]
        repeats = tuple((r["id"], r["objective_in_grid"], r["objective_again"]) for r in data.get("repeats", []))
        return cls({p.hash: p for p in points}, int(data["grid_size"]), repeats)

    def feasible(self) -> list[Point]:
        return sorted(
            (p for p in self.points.values() if p.outcome == "feasible" and p.objective is not None),
            key=lambda p: -(p.objective or 0.0),
        )

    @property
    def best(self) -> float:
        feasible = self.feasible()
        if not feasible:
            raise ValueError("the landscape has no feasible config")
        return feasible[0].objective or 0.0

    def hits(self, tolerance: float = TOLERANCE) -> set[str]:
        """Hashes of the configs whose objective is within ``tolerance`` of the best (the best included)."""
        floor = self.best * (1.0 - tolerance)
        return {p.hash for p in self.feasible() if (p.objective or 0.0) >= floor}


# ---------------------------------------------------------------------------------------------------- the replay
class _NoDeployment(Launcher):
    """The replay launches nothing: a launcher that is reached means the replay seam was bypassed."""

    kind = "replay"

    def start(self, request: LaunchRequest) -> Deployment:
        raise AssertionError(f"the replay must not launch anything (asked to start {request.name})")


def _no_bench(**_kwargs: Any) -> Any:
    raise AssertionError("the replay must not run a benchmark")


def replay_trial(landscape: Landscape, objective_name: str, log: list[TrialRecord]) -> RunTrial:
    """A stand-in for ``autotuner.trial.run_trial``: the recorded outcome of the config, as a TrialRecord.

    Every record it hands out is also appended to ``log``: the order in which the study really measured configs,
    whatever order or numbering the study's own result uses (a baseline outside the space, say, has number -1).
    """

    def run(ctx: TrialContext, number: int, config: Config, *, baseline: bool = False, repeat: int = 0) -> TrialRecord:
        point = landscape.points.get(config.hash)
        if point is None:
            raise KeyError(f"{config.id} ({config.hash}) is not in the recorded landscape")
        value = point.objective if point.outcome == "feasible" else None
        record = TrialRecord(
            number=number,
            config=config.as_dict(),
            config_id=config.id,
            config_hash=config.hash,
            baseline=baseline,
            outcome=point.outcome,
            reason=point.reason,
            objectives=[ObjectiveRecord(name=objective_name, value=value)],
            repeat=repeat,
        )
        log.append(record)
        return record

    return run


def with_search(
    loaded: LoadedSpec, *, strategy: str, seed: int, max_trials: int | None, racing: bool = False
) -> LoadedSpec:
    """The spec with another strategy, seed and budget (the rest, space and baseline included, unchanged).

    Racing (repeats of the leaders after the search) is off unless asked: this table measures the search alone,
    how soon it first measures a near-best config, and racing would only take budget from it."""
    update = {"strategy": strategy, "seed": seed, "max_trials": max_trials}
    search = loaded.spec.search.model_copy(
        update={**update, "racing": loaded.spec.search.racing.model_copy(update={"enabled": racing})}
    )
    spec = loaded.spec.model_copy(update={"search": search})
    return dataclasses.replace(loaded, spec=spec)


@dataclass(frozen=True)
class Run:
    """One replayed study: what ``auto`` became, and the configs measured in order."""

    strategy: str
    resolved: str
    seed: int
    measured: list[TrialRecord]  # in the order the study measured them
    notes: list[str]


def replay(loaded: LoadedSpec, landscape: Landscape, *, strategy: str, seed: int, max_trials: int | None) -> Run:
    """Run the real Study on the landscape; nothing is launched and nothing is written."""
    spec = with_search(loaded, strategy=strategy, seed=seed, max_trials=max_trials)
    objective_name = str(spec.spec.objective[0])
    log: list[TrialRecord] = []
    with tempfile.TemporaryDirectory(prefix="replay-") as scratch:
        context = TrialContext(
            loaded=spec, run_id="replay", out_dir=Path(scratch), launcher=_NoDeployment(), bench=_no_bench
        )
        study = Study(
            spec, context, StudyOptions(timeout=3600.0), run_trial=replay_trial(landscape, objective_name, log)
        )
        result: StudyResult = study.run()
    return Run(strategy, study.strategy, seed, log, list(result.notes))


def trials_to_hit(run: Run, hits: set[str]) -> int | None:
    """1-based position of the first measured config within the tolerance (the baseline is trial 1); None: never."""
    for position, record in enumerate(run.measured, start=1):
        if record.config_hash in hits:
            return position
    return None


# ---------------------------------------------------------------------------------------------------- figures
@dataclass(frozen=True)
class Row:
    label: str
    resolved: str
    budget: int | None
    counts: list[int | None]  # per seed; None = not found within the budget

    def _filled(self) -> list[float]:
        """Misses count as infinitely many trials: they push the percentiles up, never down."""
        return sorted(math.inf if c is None else float(c) for c in self.counts)

    def quantile(self, q: float) -> float:
        values = self._filled()
        position = q * (len(values) - 1)
        low, high = math.floor(position), math.ceil(position)
        if values[low] == values[high]:
            return values[low]
        return values[low] + (values[high] - values[low]) * (position - low)

    @property
    def misses(self) -> int:
        return sum(1 for c in self.counts if c is None)


def efficiency(
    loaded: LoadedSpec,
    landscape: Landscape,
    *,
    seeds: Sequence[int],
    budget: int | None,
    strategies: Sequence[str] = STRATEGIES,
    tolerance: float = TOLERANCE,
    progress: Callable[[str], None] = lambda _text: None,
) -> list[Row]:
    """One row per strategy (and ``auto`` also at the spec's own budget, which is what a user gets by default)."""
    hits = landscape.hits(tolerance)
    plans: list[tuple[str, str, int | None]] = [(s, s, budget) for s in strategies]
    spec_budget = loaded.spec.search.max_trials
    if "auto" in strategies and spec_budget is not None and spec_budget != budget:
        plans.append((f"auto@{spec_budget}", "auto", spec_budget))
    rows = []
    for label, strategy, limit in plans:
        began = time.monotonic()
        runs = [replay(loaded, landscape, strategy=strategy, seed=seed, max_trials=limit) for seed in seeds]
        for run in runs:
            hashes = [r.config_hash for r in run.measured]
            if len(hashes) != len(set(hashes)):
                raise AssertionError(f"{label} seed {run.seed} measured a config twice")
        resolved = "/".join(sorted({r.resolved for r in runs}))
        rows.append(Row(label, resolved, limit, [trials_to_hit(run, hits) for run in runs]))
        progress(f"  {label}: {len(runs)} replays in {time.monotonic() - began:.1f} s")
    return rows


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "miss"
    return f"{value:g}"


def print_spread(landscape: Landscape, tolerance: float) -> None:
    feasible = landscape.feasible()
    hits = landscape.hits(tolerance)
    total = len(landscape.points)
    print(
        f"landscape: {total} configs recorded ({landscape.grid_size} in the grid"
        + (", plus the baseline" if total > landscape.grid_size else "")
        + f"), {len(feasible)} feasible"
    )
    for rank, point in enumerate(feasible[:3], start=1):
        config = ",".join(f"{k}={v}" for k, v in sorted(point.config.items()))
        tag = " (baseline)" if point.baseline else ""
        gap = "" if rank == 1 else f" ({(point.objective or 0.0) / landscape.best - 1:+.1%})"
        print(f"  #{rank}: {point.objective:.1f} tok/s{gap}  {config}{tag}")
    floor = landscape.best * (1 - tolerance)
    share = len(hits) / landscape.grid_size
    print(
        f"  within {tolerance:.0%} of the best (>= {floor:.1f} tok/s): {len(hits)} config(s), {share:.1%} of the grid"
    )
    print(f"  {uniform_reference(landscape, hits)}")
    for config_id, first, again in landscape.repeats:
        change = f" ({again / first - 1:+.1%})" if first and again else ""
        print(f"  measured again later: {config_id}: {first or 0:.1f} -> {again or 0:.1f} tok/s{change}")
    wider = ", ".join(f"{len(landscape.hits(t))} within {t:.0%}" for t in (0.05, 0.10))
    print(f"  (for scale: {wider})")
    spread = [p.objective or 0.0 for p in feasible]
    if spread:
        print(
            f"  feasible objectives: min {min(spread):.1f}, median {statistics.median(spread):.1f}, max {max(spread):.1f} tok/s"
        )


def uniform_reference(landscape: Landscape, hits: set[str]) -> str:
    """What blind luck achieves: the expected trials of a uniformly random order, the baseline trial first.

    The first of k marked items in a random permutation of n sits at position (n + 1) / (k + 1) on average; a
    strategy that does no better than this has learnt nothing from the landscape.
    """
    baseline = next((p for p in landscape.points.values() if p.baseline), None)
    if baseline is not None and baseline.hash in hits:
        return "the baseline itself is within the tolerance: every strategy hits at trial 1"
    rest = len(landscape.points) - (1 if baseline is not None else 0)
    expected = (1 if baseline is not None else 0) + (rest + 1) / (len(hits) + 1)
    return (
        f"reference: a uniformly random order of the {rest} other configs reaches one after {expected:.1f} trials "
        f"on average (baseline trial counted)"
    )


def print_table(rows: Sequence[Row], landscape: Landscape, seeds: int, tolerance: float = TOLERANCE) -> bool:
    """The table; returns whether ``auto`` (at the replay budget) meets the target."""
    target = TARGET_SHARE * landscape.grid_size
    print(f"trials to reach a config within {tolerance:.0%} of the best, baseline trial counted, over {seeds} seeds:")
    header = f"  {'strategy':<10} {'runs as':<8} {'budget':>6} {'median':>7} {'p25':>5} {'p75':>5} {'max':>5} {'misses':>6} {'median/grid':>11}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    verdict = False
    for row in rows:
        median = row.quantile(0.5)
        share = median / landscape.grid_size
        print(
            f"  {row.label:<10} {row.resolved:<8} {row.budget if row.budget is not None else '-':>6} {_fmt(median):>7} "
            f"{_fmt(row.quantile(0.25)):>5} {_fmt(row.quantile(0.75)):>5} {_fmt(row.quantile(1.0)):>5} "
            f"{row.misses:>6} {'miss' if math.isinf(share) else f'{share:.1%}':>11}"
        )
        if row.label == "auto":
            verdict = median <= target
    print(
        "  ('runs as' is what the study chose: auto is the grid when a grid of at most 16 configs fits the "
        "budget, else TPE, so below that budget auto's figures are the tpe row's, cut at the budget; a full grid "
        "is measured in enumeration order, the same for every seed; misses count as more than any budget)"
    )
    for row in rows:
        if row.label.startswith("auto"):
            median = row.quantile(0.5)
            meets = "meets" if median <= target else "does NOT meet"
            print(
                f"{row.label} (runs as {row.resolved}, budget {row.budget}): median {_fmt(median)} trials -> {meets} "
                f"the target of <= {TARGET_SHARE:.0%} of the grid ({target:g} trials)"
            )
    return verdict


# ---------------------------------------------------------------------------------------------------- recording
def record(
    results: Path, out: Path, *, load: str, recorded_spec: Path | None, repeats: Path | None = None
) -> dict[str, Any]:
    """Turn the results.json of a full-grid study into the landscape file: small, no per-request samples.

    ``repeats`` is the results.json of a second, later measurement of a few of the grid's configs: stored next to
    the first values, it shows how much of the landscape's top is measurement noise.
    """
    from autotuner.fingerprint import environment

    result = StudyResult.read(results)
    original = load_spec(SPEC)
    used = load_spec(recorded_spec) if recorded_spec is not None else original
    grid = {c.hash for c in original.space.grid()}
    configs = []
    for trial in sorted(result.trials, key=lambda t: t.number):
        if trial.repeat != 0 or trial.outcome == "skipped":
            continue
        wall = (trial.stages[-1].ended - trial.stages[0].started) if trial.stages else None
        configs.append(
            {
                "config": trial.config,
                "hash": trial.config_hash,
                "id": trial.config_id,
                "trial": trial.number,  # measurement order: the machine's load varied over the run
                "baseline": trial.baseline,
                "in_grid": trial.config_hash in grid,
                "outcome": trial.outcome,
                "objective": trial.objective if trial.outcome == "feasible" else None,
                "objective_level": trial.objectives[0].level if trial.objectives else None,
                "reason": trial.reason,
                "levels": [
                    {
                        "concurrency": level.concurrency,
                        "feasible": level.feasible,
                        "output_throughput": _round(level.output_throughput),
                        "ttft_p90": _round(level.stats.get("ttft.p90")),
                        "tpot_p90": _round(level.stats.get("tpot.p90")),
                        "e2e_p99": _round(level.stats.get("e2e_latency.p99")),
                        "errors": level.errors,
                    }
                    for level in trial.levels
                ],
                "trial_seconds": _round(wall),
            }
        )
    missing = grid - {c["hash"] for c in configs}
    if missing:
        raise SystemExit(f"{results}: {len(missing)} grid configs were not measured; record the full grid")
    env = result.environment or environment(used.spec)
    data = {
        "version": DATA_VERSION,
        "what": "every config of tuning_specs/smollm2-cpu.yaml's grid (plus its baseline), measured once for real",
        "spec": str(SPEC.relative_to(REPO)),
        "spec_digest": original.digest,
        "recorded_spec_digest": used.digest,
        "recorded_with": "autotuner tune on a copy of the spec with search: {strategy: grid, timeout: 60m} and no "
        "max_trials (everything else identical)",
        "objective": result.objectives[0] if result.objectives else None,
        "date": result.started,
        "finished": result.finished,
        "run": result.study_name,
        "machine": {**env.model_dump(mode="json", exclude={"host"}), "load": load},
        "grid_size": len(grid),
        "configs": configs,
    }
    if repeats is not None:
        first = {c["hash"]: c for c in configs}
        again = StudyResult.read(repeats)
        data["repeats"] = [
            {
                "id": t.config_id,
                "hash": t.config_hash,
                "objective_in_grid": first[t.config_hash]["objective"],
                "objective_again": t.objective if t.outcome == "feasible" else None,
                "measured": again.started,
            }
            for t in again.trials
            if t.config_hash in first
        ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_compact_json(data), encoding="utf-8")
    return data


def _compact_json(data: dict[str, Any]) -> str:
    """Readable and small: the header indented, one line per config (a diff shows which configs changed)."""
    lines = []
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n".join(f"  {json.dumps(item, separators=(',', ':'))}" for item in value)
            lines.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _round(value: float | None) -> float | None:
    return None if value is None or value != value else round(value, 4)


# ---------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    rec = sub.add_parser("record", help="store a full-grid results.json as the landscape file")
    rec.add_argument("results", type=Path)
    rec.add_argument("--spec", type=Path, default=None, help="the spec copy the grid was measured with")
    rec.add_argument("--load", default="not recorded", help="how loaded the machine was while measuring")
    rec.add_argument("--out", type=Path, default=DATA)
    rec.add_argument("--repeats", type=Path, default=None, help="results.json re-measuring some configs later")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--budget", type=int, default=None, help="max_trials of each replay (default: the grid + 1)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    args = parser.parse_args(argv)

    if args.command == "record":
        data = record(args.results, args.out, load=args.load, recorded_spec=args.spec, repeats=args.repeats)
        print(f"wrote {args.out}: {len(data['configs'])} configs")
        return 0

    warnings.filterwarnings("ignore")  # optuna's ExperimentalWarning for multivariate TPE, once per replay
    landscape = Landscape.read(args.data)
    loaded = load_spec(SPEC)
    budget = args.budget or landscape.grid_size + 1
    print_spread(landscape, args.tolerance)
    rows = efficiency(
        loaded,
        landscape,
        seeds=range(args.seeds),
        budget=budget,
        tolerance=args.tolerance,
        progress=lambda text: print(text, flush=True),
    )
    ok = print_table(rows, landscape, args.seeds, args.tolerance)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
