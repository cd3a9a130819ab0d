"""StudyResults built in code for report tests, shaped like real runs (see tests/fixtures/report/ for one).

The SLOs are the embedded default's (ttft.p90 <= 2 s, tpot.p90 <= 80 ms soft, e2e_latency.p99 <= 10 s, errors
<= 1%) on one scenario at concurrency 1 and 4; checks are computed from the figures the same way slo.py judges,
so "why it lost" tests read realistic records.
"""

from __future__ import annotations

import random

from autotuner.results import (
    CheckRecord,
    Environment,
    EstimateRecord,
    IntervalRecord,
    LevelRecord,
    ObjectiveRecord,
    Outcome,
    RankingRecord,
    SampleSet,
    Stage,
    StudyResult,
    TrialRecord,
)

SCENARIO = "D(64,64)"
LIMITS = (("ttft.p90", 2.0, True), ("tpot.p90", 0.08, False), ("e2e_latency.p99", 10.0, True))
ERROR_LIMIT = 0.01
OBJECTIVE = "maximize output_throughput"
T0 = 1_795_347_594.0  # 2026-11-22, like the real fixture


def level(
    concurrency: int,
    throughput: float,
    ttft: float,
    tpot: float = 0.02,
    e2e: float = 2.0,
    *,
    errors: int = 0,
    requests: int = 12,
    over: float = 0.0,
) -> LevelRecord:
    stats = {
        "ttft.mean": ttft * 0.8,
        "ttft.p50": ttft * 0.7,
        "ttft.p90": ttft,
        "ttft.p99": ttft * 1.2,
        "tpot.mean": tpot * 0.9,
        "tpot.p50": tpot * 0.85,
        "tpot.p90": tpot,
        "tpot.p99": tpot * 1.1,
        "e2e_latency.mean": e2e * 0.7,
        "e2e_latency.p50": e2e * 0.65,
        "e2e_latency.p90": e2e * 0.9,
        "e2e_latency.p99": e2e,
    }
    checks = []
    for metric, limit, hard in LIMITS:
        measured = stats[metric]
        checks.append(
            CheckRecord(
                metric=metric,
                bound="max",
                limit=limit,
                measured=measured,
                hard=hard,
                passed=measured <= limit,
                violation_rate=over if measured > limit else 0.0,
            )
        )
    error_rate = errors / requests if requests else 0.0
    checks.append(
        CheckRecord(
            metric="error_rate",
            bound="max",
            limit=ERROR_LIMIT,
            measured=error_rate,
            hard=True,
            passed=error_rate <= ERROR_LIMIT,
        )
    )
    rng = random.Random(concurrency * 1000 + int(throughput * 10))
    ok = requests - errors
    return LevelRecord(
        scenario=SCENARIO,
        concurrency=concurrency,
        feasible=all(c.passed for c in checks if c.hard),
        requests=requests,
        errors=errors,
        error_rate=error_rate,
        run_duration=requests * 64 / throughput,
        output_throughput=throughput,
        total_throughput=throughput * 2.45,
        requests_per_second=throughput / 64,
        stats=stats,
        checks=checks,
        samples=SampleSet(
            ttft=[round(ttft * rng.uniform(0.5, 1.0), 6) for _ in range(ok)],
            tpot=[round(tpot * rng.uniform(0.6, 1.0), 6) for _ in range(ok)],
            e2e_latency=[round(e2e * rng.uniform(0.5, 1.0), 6) for _ in range(ok)],
            output_tokens=[64] * ok,
        ),
        raw_dir=f"trial/bench/0{concurrency}_D64_64_c{concurrency}",
    )


def failed_level(concurrency: int, reason: str) -> LevelRecord:
    return LevelRecord(
        scenario=SCENARIO, concurrency=concurrency, feasible=False, failure=reason, requests=12, errors=12
    )


def stages(number: int, levels: list[LevelRecord], *, ready_ok: bool = True) -> list[Stage]:
    start = T0 + number * 30.0
    out = [Stage(name="launch", started=start, ended=start + 0.2)]
    out.append(Stage(name="ready", started=start + 0.2, ended=start + 2.0, ok=ready_ok, detail="ready in 1.8s"))
    if ready_ok and levels:
        clock = start + 2.0
        out.append(Stage(name="bench", started=clock, ended=clock + 4.0 + 9.0 * len(levels)))
        out.append(Stage(name="warmup", started=clock, ended=clock + 4.0))
        clock += 4.0
        for lv in levels:
            out.append(
                Stage(
                    name=f"level {lv.scenario}@{lv.concurrency}",
                    started=clock,
                    ended=clock + 8.5,
                    ok=lv.failure is None,
                )
            )
            clock += 9.0
        out.append(Stage(name="judge", started=clock, ended=clock + 0.01))
        start = clock
    else:
        start += 2.0
    out.append(Stage(name="teardown", started=start + 0.01, ended=start + 0.3))
    return out


def trial(
    number: int,
    config: dict[str, int],
    levels: list[LevelRecord],
    *,
    baseline: bool = False,
    outcome: Outcome | None = None,
    reason: str = "",
    failure_kind: str | None = None,
) -> TrialRecord:
    config_id = ",".join(f"{k}={v}" for k, v in sorted(config.items()))
    feasible = [lv for lv in levels if lv.feasible and lv.output_throughput is not None]
    best = max(feasible, key=lambda lv: lv.output_throughput or 0.0) if feasible else None
    if outcome is None:
        outcome = "feasible" if best is not None else "infeasible"
    objectives = []
    if outcome in ("feasible", "infeasible"):
        objectives = [
            ObjectiveRecord(
                name=OBJECTIVE,
                value=best.output_throughput if best else None,
                level=f"{best.scenario}@{best.concurrency}" if best else None,
            )
        ]
    return TrialRecord(
        number=number,
        config=dict(config),
        config_id=config_id,
        config_hash=f"c{number:09d}",
        baseline=baseline,
        outcome=outcome,
        reason=reason,
        failure_kind=failure_kind,
        objectives=objectives,
        levels=levels,
        stages=stages(number, levels, ready_ok=outcome != "failed"),
        engine_log=f"/runs/smollm2-cpu/run-1/trial-{number:03d}-c{number:09d}/trial-{number:03d}.engine.log",
    )


def environment() -> Environment:
    return Environment(
        host="vm",
        cpu="AMD EPYC",
        cpus=2,
        memory_gib=23.5,
        python="3.11.7",
        engine="llamacpp (xllamacpp 2026.10.11549)",
        genai_bench="0.0.5",
        tool_version="0.1.0",
    )


def study(trials: list[TrialRecord], *, best: int | None, baseline: int | None = 0) -> StudyResult:
    return StudyResult(
        spec_name="smollm2-cpu",
        spec_file="tuning_specs/smollm2-cpu.yaml",
        spec_digest="5a350643b4f7de0e",
        study_name="smollm2-cpu-5a350643",
        strategy="grid",
        started="2026-11-22T11:39:54+00:00",
        finished="2026-11-22T11:46:12+00:00",
        environment=environment(),
        objectives=[OBJECTIVE],
        trials=trials,
        best_trial=best,
        baseline_trial=baseline,
        best_command="/usr/bin/python3 -m autotuner.engines.llamacpp_server --model /models/SmolLM2-135M-Instruct.Q4_1.gguf "
        "--alias smollm2 --host 127.0.0.1 --port 8000 --n-ctx 4096 --n-batch 2048 --n-parallel 4 --threads 2",
        notes=["grid of 48 sampled down to 6 without bias"],
    )


def sample_study() -> StudyResult:
    """Six trials: the baseline, the best, a slower feasible one, an SLO miss, an OOM and a readiness timeout."""
    trials = [
        trial(
            0,
            {"n-parallel": 1, "threads": 2},
            [level(1, 68.5, 0.23), level(4, 76.75, 3.849, 0.0091, 4.47, over=0.4)],
            baseline=True,
        ),
        trial(
            1,
            {"n-parallel": 4, "threads": 2},
            [level(1, 99.5, 0.16, 0.0077, 0.65), level(4, 126.3, 0.92, 0.0365, 3.22)],
        ),
        trial(2, {"n-parallel": 2, "threads": 1}, [level(1, 70.5, 0.39), level(4, 90.1, 1.7, 0.09, 5.1)]),
        trial(
            3,
            {"n-parallel": 1, "threads": 1},
            [level(1, 40.2, 2.6, 0.03, 10.42, over=0.25)],
            reason="D(64,64)@1: ttft.p90 2.60s <= 2.00s: MISSED, 25% of requests over (+1 more)",
        ),
        trial(
            4,
            {"n-parallel": 8, "threads": 2},
            [],
            outcome="failed",
            failure_kind="oom",
            reason="oom: engine exited with code 1 before it was ready (pid 5891)",
        ),
        trial(
            5,
            {"n-parallel": 8, "threads": 1},
            [],
            outcome="failed",
            failure_kind="timeout",
            reason="timeout: not ready after 120s",
        ),
    ]
    return study(trials, best=1)


def large_study(count: int, *, seed: int = 7) -> StudyResult:
    """``count`` trials with every outcome, for truncation and sorting at scale."""
    rng = random.Random(seed)
    trials: list[TrialRecord] = []
    for number in range(count):
        config = {
            "n-batch": 256 * (1 + number % 8),
            "n-parallel": 1 + number % 5,
            "threads": 1 + number % 2,
            "ubatch": number,
        }
        roll = rng.random()
        if roll < 0.1:
            trials.append(
                trial(
                    number, config, [], outcome="failed", failure_kind="oom", reason="oom: out of memory " + "x" * 300
                )
            )
        elif roll < 0.3:
            trials.append(
                trial(number, config, [level(1, rng.uniform(30, 60), rng.uniform(2.1, 5.0), over=0.3)], reason="ttft")
            )
        else:
            trials.append(
                trial(
                    number,
                    config,
                    [
                        level(1, rng.uniform(50, 100), rng.uniform(0.1, 1.0)),
                        level(4, rng.uniform(60, 140), rng.uniform(0.5, 3.0)),
                    ],
                )
            )
    trials[0] = trials[0].model_copy(update={"baseline": True})
    feasible = [t for t in trials if t.outcome == "feasible" and t.objective is not None]
    best = max(feasible, key=lambda t: t.objective or 0.0)
    return study(trials, best=best.number)


def with_ranking(result: StudyResult, *, tie_set: list[str], separated: bool = False) -> StudyResult:
    """The ranking the study writes (estimates.ranking), built from the result's feasible measurements: each
    config's mean with a +-5% interval; tied configs get p=0.42, the others p=0.01."""
    by_config: dict[str, list[TrialRecord]] = {}
    for t in sorted(result.trials, key=lambda t: (t.repeat, t.number)):
        by_config.setdefault(t.config_hash, []).append(t)
    estimates = []
    for config_hash, measured in by_config.items():
        if not all(t.outcome == "feasible" and t.objective is not None for t in measured):
            continue
        values = [t.objective or 0.0 for t in measured]
        mean = sum(values) / len(values)
        estimates.append(
            EstimateRecord(
                config_hash=config_hash,
                config_id=measured[0].config_id,
                trials=[t.number for t in measured],
                values=values,
                mean=mean,
                interval=IntervalRecord(
                    estimate=mean, low=mean * 0.95, high=mean * 1.05, confidence=0.95, n=len(values), method="t"
                ),
            )
        )
    estimates.sort(key=lambda e: -e.mean)
    leader = estimates[0].config_hash
    for e in estimates[1:]:
        e.p_value = 0.42 if e.config_hash in tie_set else 0.01
    result.ranking = RankingRecord(
        best=tie_set[0],
        leader=leader,
        tie_set=tie_set,
        separated=separated,
        confidence=0.95,
        rule="difference",
        tie_break="the baseline if tied; then lower e2e_latency.p90 at the objective's level; then the better mean",
        estimates=estimates,
    )
    result.best_trial = by_config[tie_set[0]][0].number
    return result
