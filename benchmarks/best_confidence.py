"""Naming the best with confidence, replayed: how soon and how reliably the tool names a truly best config.

One measurement of a config is not enough to call it best: on this machine the same config's throughput varies
from one measurement to the next by far more than the gaps at the top of the grid. The study therefore races
(``autotuner.study.Study.race``): after the search it measures the best so far and its tie-set again, and names
the best from all measurements (``autotuner.estimates``). This script checks that this works on the real noise,
replayed, and compares it with plain single-measurement selection (the highest single value wins)::

    python benchmarks/best_confidence.py                  # the table (a few seconds)
    python benchmarks/best_confidence.py --seeds 5 --budget 24

What is replayed: the recorded landscape of ``benchmarks/sample_efficiency.py`` (every config of the embedded
default's grid, measured in several passes). Its noise is each config's own record (``sample_efficiency.Noise``): a
replayed measurement misses the SLOs as often as the config's recorded ones did, and otherwise is the mean of its
feasible values times ``1 + e``, ``e`` drawn (seeded) from its own relative residuals (the pooled ones for a config
with fewer than 3 feasible values). The true best's tie-set is the ranking the study itself would make
(``estimates.ranking``, i.e. ``stats.race_ranking``) on all recorded values of every feasible config
(``sample_efficiency.FEASIBLE_RULE``): the configs the recording cannot tell apart from the best. Naming any of
them is right; naming the one with the highest mean would be asking the tool to know more than the recording does.

For each seed, the real Study runs the spec's strategy (``auto``) with a budget of 16 trials (13 searching, 3
racing: the default share of 15%, rounded up) on the noisy draws. After every measurement k, the named best is what the
study would name from its first k records (``estimates.race_state`` + ``estimates.ranking``, exactly what
``Study._choose_best`` does). Reported: (a) the median number of trials until the named best is in the true
tie-set and stays there to the end (the baseline trial counted; a seed that ends outside counts as never), and
(b) the share of seeds whose final named best is in the true tie-set. The baseline method is plain
single-measurement selection on the same draws and seeds: racing off (all 16 trials search), the named best the
highest single value so far. Targets (issue 12): (a) <= 25% of the grid (12 trials), (b) >= 90%.

Draws are keyed by (seed, config, repeat), so both methods see the same value for the same measurement: with one
seed their first 12 trials are the same configs with the same values, and they differ only in what they do with
the last 4 and in how they name the best.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for path in (REPO, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import sample_efficiency as se  # noqa: E402

from autotuner.estimates import RaceState, race_state, ranking  # noqa: E402
from autotuner.results import RankingRecord, TrialRecord  # noqa: E402
from autotuner.space import Config  # noqa: E402
from autotuner.spec import TuningSpec  # noqa: E402
from autotuner.validation import LoadedSpec, load_spec  # noqa: E402

BUDGET = 16  # 13 searching + 3 racing (racing's default share, 15%, rounded up)
TARGET_SHARE = se.TARGET_SHARE  # (a): the named best is settled in the tie-set within 25% of the grid (median)
TOLERANCE = 0.05  # "practically as good as the best" for --tie-set equivalent (see ``equivalent``)
TARGET_CORRECT = 0.90  # (b): the final named best is in the true tie-set for at least 90% of seeds


# ---------------------------------------------------------------------------------------------------- the truth
def true_ranking(loaded: LoadedSpec, landscape: se.Landscape) -> RankingRecord:
    """The ranking of every feasible config on all its recorded values, by the study's own rule.

    Built as ``estimates.ranking`` builds it for a study (same policy: the leader is named), from a
    ``RaceState`` of the recorded values; no within-run intervals or latencies are recorded, so none are used.
    """
    feasible = landscape.feasible()
    if not feasible:
        raise ValueError("the landscape has no feasible config")
    state = RaceState(
        values={p.hash: list(p.measurements) for p in feasible},
        within=None,
        trials={p.hash: list(range(len(p.measurements))) for p in feasible},
        config_ids={p.hash: se._config_id(p) for p in feasible},
    )
    ranked = ranking(loaded.spec, state)
    if ranked is None:  # not reachable with feasible configs; keeps the type honest
        raise ValueError("no ranking")
    return ranked


def equivalent(landscape: se.Landscape, tolerance: float) -> set[str]:
    """The configs whose true objective (``sample_efficiency.OBJECTIVE_RULE``) is within ``tolerance`` of the best's.

    The stricter truth (``--tie-set equivalent``) beside the default statistical tie-set: a config within a few
    percent of the best is what a user would accept as the best, whatever the recording can tell apart.
    (With the noise pooled over all configs, the statistical tie-set held most of the grid, the baseline
    included; with each config's own spread, as the study now estimates it, it holds the 8 configs with
    4 parallel slots and 2 threads, which the recording cannot tell from the best (9 after eight passes: one
    more with a single slot).)"""
    return landscape.hits(tolerance)


def _baseline_hash(spec: TuningSpec) -> str | None:
    return Config.of(spec.search.baseline).hash if spec.search.baseline is not None else None


# ---------------------------------------------------------------------------------------------------- known noise
class Drawer(Protocol):
    """What the replays draw measurements from: the recorded noise (``sample_efficiency.Noise``) or a known one."""

    def draw(self, seed: int) -> se.Draw: ...


@dataclass(frozen=True)
class KnownNoise:
    """Measurements drawn from a known distribution: a config's true mean times ``1 + e``, ``e`` normal with the
    config's relative spread ``cv(config)``, seeded by (seed, config, repeat) like ``sample_efficiency.Noise``.

    For the synthetic landscapes (``SYNTHETIC``): there the truth is the mean itself, not an estimate from a
    recording, so whether the named config is right does not depend on what one recording could tell apart."""

    cv: Callable[[Mapping[str, Any]], float]

    def draw(self, seed: int) -> se.Draw:
        def measure(point: se.Point, repeat: int) -> se.Measured:
            if point.objective is None:
                return se.Measured("infeasible", None, "infeasible in the synthetic landscape")
            spread = self.cv({**se.BASELINE_DEFAULTS, **point.config})
            e = random.Random(f"{seed}/{point.hash}/{repeat}").gauss(0.0, spread)
            return se.Measured("feasible", max(0.0, point.objective * (1.0 + e)))

        return measure


def _steady_best(c: Mapping[str, Any]) -> float:
    """Four parallel slots best, n-batch 1024 a little better than its neighbours; two threads 4% worse."""
    value = 80.0 + 10.0 * se._log2(c["n-parallel"]) - 3.0 * abs(se._log2(float(c["n-batch"]) / 1024))
    return value * (0.96 if int(c["threads"]) == 2 else 1.0)


@dataclass(frozen=True)
class Synthetic:
    """A made-up landscape with known noise: the true means (``shape``) and each config's spread (``noise``)."""

    name: str
    shape: Callable[[Mapping[str, Any]], float | None]
    noise: KnownNoise
    why: str


SYNTHETIC = (
    Synthetic(
        "steady best, erratic rivals",
        _steady_best,
        KnownNoise(lambda c: 0.03 if int(c["threads"]) == 1 else 0.25),
        "the one-thread configs repeat within 3%, the two-thread ones (4% worse on average) spread 25%: the best "
        "single measurement is nearly always a lucky two-thread one",
    ),
    Synthetic(
        "even noise (winner's curse)",
        se.SYNTHETIC["interior optimum"],
        KnownNoise(lambda _c: 0.10),
        "every config spreads 10%, several are within a few percent of the best: the best single measurement is "
        "the luckiest of them",
    ),
)
SYNTHETIC_TOLERANCE = 0.03  # a synthetic run names the best right when its true mean is within 3% of the best's


def print_synthetic(loaded: LoadedSpec, recorded: se.Landscape, seeds: int, budgets: Sequence[int]) -> None:
    """Racing against plain selection where the noise is known and uneven: what racing is for.

    On the recorded landscape the top configs are all erratic and the statistical tie-set keeps every one of them,
    so the best single value is nearly always in it and racing has little to correct. These landscapes have a
    known truth (right: within ``SYNTHETIC_TOLERANCE`` of the best mean) and the noise shapes of issue 12's
    motivation; the same study, budgets and seeds."""
    print(
        f"synthetic landscapes with known noise (right: the named config's true mean is within "
        f"{SYNTHETIC_TOLERANCE:.0%} of the best's), share of {seeds} seeds named right:"
    )
    print(f"  {'landscape':<30} {'right':>5} {'budget':>6} {'racing':>14} {'plain':>14}")
    for synthetic in SYNTHETIC:
        land = se.synthetic_landscape(loaded, recorded, synthetic.shape)
        right = land.hits(SYNTHETIC_TOLERANCE)
        for budget in budgets:
            racing, plain = evaluate(
                loaded, land, right, seeds=range(seeds), budget=budget, methods=(RACING, PLAIN), noise=synthetic.noise
            )
            cells = [f"{o.correct(right)}/{seeds} ({o.correct(right) / seeds:.0%})" for o in (racing, plain)]
            print(f"  {synthetic.name:<30} {len(right):>5} {budget:>6} {cells[0]:>14} {cells[1]:>14}")
        print(f"    ({synthetic.why})")


# ---------------------------------------------------------------------------------------------------- naming
def named_by_study(spec: TuningSpec, records: Sequence[TrialRecord]) -> list[str | None]:
    """After each measurement k, the config the study names from its first k records (None: nothing feasible).

    The same steps as ``Study._choose_best``: the ranking over every measurement (``race_state`` + ``ranking``,
    the leader named), or the best single feasible value when the ranking has nothing to rank."""
    sign = 1.0 if spec.objective[0].direction == "maximize" else -1.0
    named: list[str | None] = []
    for k in range(1, len(records) + 1):
        prefix = records[:k]
        feasible = [r for r in prefix if r.met_slos]
        if not feasible:
            named.append(None)
            continue
        ranked = ranking(spec, race_state(spec, prefix))
        if ranked is not None:
            named.append(ranked.best)
        else:
            named.append(max(feasible, key=lambda r: sign * (r.objective or 0.0)).config_hash)
    return named


def named_by_single(records: Sequence[TrialRecord], direction: str = "maximize") -> list[str | None]:
    """After each measurement k, the config with the best single feasible value so far (the first one on ties)."""
    sign = 1.0 if direction == "maximize" else -1.0
    named: list[str | None] = []
    best: TrialRecord | None = None
    for record in records:
        if record.outcome == "feasible" and record.objective is not None:  # met_slos, narrowed for mypy
            if best is None or sign * record.objective > sign * (best.objective or 0.0):
                best = record
        named.append(best.config_hash if best is not None else None)
    return named


def settled_at(named: Sequence[str | None], tie_set: set[str]) -> int | None:
    """1-based trial from which the named best is in the tie-set to the end; None when the last one is not."""
    if not named or named[-1] not in tie_set:
        return None
    position = len(named)
    while position > 1 and named[position - 2] in tie_set:
        position -= 1
    return position


# ---------------------------------------------------------------------------------------------------- the replays
@dataclass(frozen=True)
class Method:
    """One row of the table: a way to run the study and name the best, over every seed."""

    label: str
    racing: bool
    namer: str  # "study": estimates' ranking on the records so far; "single": the best single value so far


@dataclass(frozen=True)
class Outcome:
    method: Method
    resolved: str
    budget: int
    settled: list[int | None]  # per seed: trial from which the named best stays in the tie-set (None: never)
    final: list[str | None]  # per seed: the named best at the end
    runs: list[se.Run]

    def correct(self, tie_set: set[str]) -> int:
        return sum(1 for f in self.final if f in tie_set)

    def named_baseline(self, baseline: str | None) -> int:
        """Seeds whose final named best is the baseline: the study's advice "change nothing" when it is tied."""
        return sum(1 for f in self.final if baseline is not None and f == baseline)

    def worth(self, landscape: se.Landscape) -> float:
        """Median over seeds of the final named config's true objective relative to the best's (0 for none).

        Beside the tie-set's yes/no, how much a user following the advice gets: under noise this uneven the
        tie-set keeps configs whose spread is wide whatever their mean, and leaves out steady ones close below
        the best."""
        best = landscape.best
        points = landscape.points
        return statistics.median((points[f].objective or 0.0) / best if f in points else 0.0 for f in self.final)

    def reached(self, tie_set: set[str]) -> int:
        """Seeds whose study measured a config of the tie-set at all: naming one needs the search to find one."""
        return sum(1 for run in self.runs if any(r.config_hash in tie_set for r in run.measured))

    @property
    def row(self) -> se.Row:
        return se.Row(self.method.label, self.resolved, self.budget, self.settled)


RACING = Method("racing (the study)", racing=True, namer="study")
PLAIN = Method("plain (best single)", racing=False, namer="single")
# What the study itself names with `racing: false` (its ranking's leader, the best mean): shown beside
# the baseline method because the two differ, and the README's "names the single best measurement" is plain's.
RACING_OFF = Method("racing: false (study)", racing=False, namer="study")
METHODS = (RACING, PLAIN, RACING_OFF)


def evaluate(
    loaded: LoadedSpec,
    landscape: se.Landscape,
    tie_set: set[str],
    *,
    seeds: Sequence[int],
    budget: int = BUDGET,
    methods: Sequence[Method] = METHODS,
    noise: Drawer | None = None,
    progress: Callable[[str], None] = lambda _text: None,
) -> list[Outcome]:
    """Replay every method for every seed on the noisy landscape; methods with the same racing share replays."""
    drawer: Drawer = noise if noise is not None else se.Noise.of(landscape)
    strategy = loaded.spec.search.strategy
    replays: dict[bool, list[se.Run]] = {}
    outcomes = []
    for method in methods:
        began = time.monotonic()
        if method.racing not in replays:
            replays[method.racing] = [
                se.replay(
                    loaded,
                    landscape,
                    strategy=strategy,
                    seed=seed,
                    max_trials=budget,
                    racing=method.racing,
                    draw=drawer.draw(seed),
                )
                for seed in seeds
            ]
        runs = replays[method.racing]
        settled, final = [], []
        for run in runs:
            if method.namer == "study":
                named = named_by_study(loaded.spec, run.measured)
            else:
                named = named_by_single(run.measured, loaded.spec.objective[0].direction)
            settled.append(settled_at(named, tie_set))
            final.append(named[-1] if named else None)
        resolved = "/".join(sorted({r.resolved for r in runs}))
        outcomes.append(Outcome(method, resolved, budget, settled, final, runs))
        progress(f"  {method.label}: {len(runs)} seeds in {time.monotonic() - began:.1f} s")
    return outcomes


# ---------------------------------------------------------------------------------------------------- printing
def print_truth(truth: RankingRecord, landscape: se.Landscape, noise: se.Noise) -> None:
    feasible = landscape.feasible()
    values = sum(len(p.measurements) for p in feasible)
    print(
        f"landscape: {len(landscape.points)} configs ({landscape.grid_size} in the grid), {len(feasible)} feasible "
        f"({se.FEASIBLE_RULE}), {values} feasible values from {len(landscape.passes)} passes "
        f"({', '.join(landscape.passes)})"
    )
    repeated = sum(1 for p in feasible if len(p.measurements) > 1)
    print(
        f"noise replayed: pooled CV {noise.cv:.1%} per measurement ({len(noise.residuals)} relative residuals of "
        f"{repeated} feasible configs measured more than once, resampled)"
    )
    tied = set(truth.tie_set)
    print(
        f"the true best's tie-set: {len(tied)} config(s) the recording cannot tell apart from the leader "
        f"({truth.rule} rule, {truth.confidence:.0%} confidence), recommended first:"
    )
    by_hash = {e.config_hash: e for e in truth.estimates}
    outside = [e for e in truth.estimates if e.config_hash not in tied][:3]
    for estimate in [by_hash[h] for h in truth.tie_set] + outside:
        interval = estimate.interval
        tag = "  " if estimate.config_hash in tied else "x "
        leader = " (leader)" if estimate.config_hash == truth.leader else ""
        p_value = f" p={estimate.p_value:.3f}" if estimate.p_value is not None else ""
        shown = ", ".join(f"{v:.1f}" for v in estimate.values)
        print(
            f"  {tag}{estimate.config_id:<36} mean {estimate.mean:6.1f} [{interval.low or 0:6.1f}, "
            f"{interval.high or 0:6.1f}] n={len(estimate.values)}{p_value}  ({shown}){leader}"
        )
    print(f"  (x: the next {len(outside)} configs by mean, shown worse than the leader)")


def print_table(outcomes: Sequence[Outcome], landscape: se.Landscape, tie_set: set[str], seeds: int) -> bool:
    """The table and the verdicts; returns whether racing meets both targets."""
    target_trials = TARGET_SHARE * landscape.grid_size
    baseline = next((p.hash for p in landscape.points.values() if p.baseline), None)
    print(
        f"trials until the named best is in the true tie-set for good (baseline trial counted), and the share of "
        f"seeds whose final named best is in it, over {seeds} seeds:"
    )
    header = (
        f"  {'method':<22} {'runs as':<8} {'budget':>6} {'median':>7} {'p25':>5} {'p75':>5} {'max':>5} "
        f"{'never':>5} {'reached':>7} {'baseline':>8} {'named/best':>10} {'final in tie-set':>16}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for outcome in outcomes:
        row = outcome.row
        correct = outcome.correct(tie_set)
        share = correct / len(outcome.final) if outcome.final else 0.0
        print(
            f"  {row.label:<22} {row.resolved:<8} {row.budget:>6} {se._fmt(row.quantile(0.5)):>7} "
            f"{se._fmt(row.quantile(0.25)):>5} {se._fmt(row.quantile(0.75)):>5} {se._fmt(row.quantile(1.0)):>5} "
            f"{row.misses:>5} {outcome.reached(tie_set):>7} {outcome.named_baseline(baseline):>8} "
            f"{outcome.worth(landscape):>10.0%} "
            f"{f'{correct}/{len(outcome.final)} ({share:.0%})':>16}"
        )
    repeats = [sum(1 for r in run.measured if r.repeat) for o in outcomes if o.method.racing for run in o.runs]
    if repeats:
        print(f"  (racing measured again {statistics.mean(repeats):.1f} times per seed on average)")
    print(
        "  ('never': the final named best is outside the tie-set; it counts as more trials than any budget. "
        "'reached': seeds whose study measured a config of the tie-set at all; 'baseline': seeds whose final "
        "named best is the baseline (its mean, repeated by racing, was the best measured: the search found nothing "
        "better); 'named/best': the "
        "median over seeds of the final named config's true objective over the best's. "
        "'racing: false (study)' is what the study names with racing off: its ranking's leader, the best mean, "
        "which for single measurements is the best single value, so it matches plain)"
    )
    verdict = True
    for outcome in outcomes:
        if outcome.method not in (RACING, PLAIN):
            continue
        median = outcome.row.quantile(0.5)
        share = outcome.correct(tie_set) / len(outcome.final) if outcome.final else 0.0
        fast = median <= target_trials
        right = share >= TARGET_CORRECT
        print(
            f"{outcome.method.label}: median {se._fmt(median)} trials -> {'met' if fast else 'NOT met'} "
            f"(target <= {TARGET_SHARE:.0%} of the grid, {target_trials:g} trials); {share:.0%} of seeds name a "
            f"config of the tie-set -> {'met' if right else 'NOT met'} (target >= {TARGET_CORRECT:.0%})"
        )
        if outcome.method == RACING:
            verdict = fast and right
    return verdict


# ---------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=se.DATA)
    parser.add_argument("--seeds", type=int, default=se.SEEDS)
    parser.add_argument("--budget", type=int, default=BUDGET, help="max_trials of each replay (searching + racing)")
    parser.add_argument(
        "--tie-set",
        choices=("statistical", "equivalent"),
        default="statistical",
        help="the truth to score against: the study's own statistical tie-set on the recorded values (default, "
        "the issue's definition), or the configs within --tolerance of the best true objective",
    )
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="also replay made-up landscapes with known, uneven noise (racing against plain where it should matter), "
        "at the budget and at half the grid",
    )
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore")  # optuna's ExperimentalWarning for multivariate TPE, once per replay
    landscape = se.Landscape.read(args.data)
    loaded = load_spec(se.SPEC)
    noise = se.Noise.of(landscape)
    truth = true_ranking(loaded, landscape)
    print_truth(truth, landscape, noise)
    if not noise.residuals:
        print("no config was measured twice: the noise is unknown, so there is nothing to replay")
        return 1
    tie_set = set(truth.tie_set) if args.tie_set == "statistical" else equivalent(landscape, args.tolerance)
    if args.tie_set == "equivalent":
        names = ", ".join(sorted(se._config_id(landscape.points[h]) for h in tie_set))
        print(f"scored against the configs within {args.tolerance:.0%} of the best ({len(tie_set)}): {names}")
    outcomes = evaluate(
        loaded,
        landscape,
        tie_set,
        seeds=range(args.seeds),
        budget=args.budget,
        noise=noise,
        progress=lambda text: print(text, flush=True),
    )
    ok = print_table(outcomes, landscape, tie_set, args.seeds)
    if args.synthetic:
        print_synthetic(loaded, landscape, args.seeds, sorted({args.budget, landscape.grid_size // 2}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
