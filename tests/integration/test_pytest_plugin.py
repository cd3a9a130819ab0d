"""``pytest --tune`` as users run it: pytester subprocesses against the ``sim`` engine double and real genai-bench.

The sim's latencies follow its flags (see ``autotuner.engines.sim_server``), so which configs meet an SLO is known
in advance: at concurrency 4, ``max-num-seqs: 1`` queues requests (TTFT p90 about 0.4 s at time-scale 0.2) while
``max-num-seqs: 4`` serves them together (TTFT about 10 ms); 64 sequences do not fit ``kv-cache-tokens`` and the
engine dies at start with an out-of-memory error. Each run takes seconds per config.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from autotuner.results import StudyResult

SPEC = """\
name: sim
model: {id: builtin:smollm2}
engine: {runtime: sim, args: {time-scale: 0.2, decode-step-ms: 20, kv-cache-tokens: 65536}, startup_timeout: 30s}
parameters:
  max-num-seqs: VALUES
workload: {scenarios: ["D(64,32)"], concurrency: [4], max_requests: 8, max_time: 1m, warmup_requests: 1}
slo:
  ttft: {p90: TTFT}
objective: {maximize: output_throughput}
search: {strategy: STRATEGY, seed: 3, baseline: {max-num-seqs: 1}MAX_TRIALS}
"""


def write_spec(
    pytester: pytest.Pytester,
    values: str = "[1, 4]",
    ttft: str = "250ms",
    strategy: str = "grid",
    max_trials: int | None = None,
    name: str = "sim",
) -> Path:
    text = SPEC.replace("VALUES", values).replace("TTFT", ttft).replace("STRATEGY", strategy)
    text = text.replace("MAX_TRIALS", f", max_trials: {max_trials}" if max_trials else "")
    folder = pytester.path / "tuning_specs"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text.replace("name: sim", f"name: {name}", 1))
    return path


@pytest.fixture(autouse=True)
def isolated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's engines are recorded in its own state folder; the rootdir is the test's folder."""
    monkeypatch.setenv("AUTOTUNER_STATE_DIR", str(pytester.path / "state"))
    pytester.makeini("[pytest]\n")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:randomly", *args, timeout=600)


def results(pytester: pytest.Pytester, spec: str = "sim") -> StudyResult:
    return StudyResult.read(pytester.path / "reports" / spec / "latest" / "results.json")


def measured_here(pytester: pytest.Pytester, spec: str = "sim") -> list[str]:
    """Config hashes measured by the newest run (each trial leaves its folder ``trial-NNN-<hash>``)."""
    run_dir = (pytester.path / "reports" / spec / "latest").resolve()
    return sorted(p.name.rsplit("-", 1)[1] for p in run_dir.glob("trial-*"))


# ------------------------------------------------------------------------------------------ collection only
def test_without_tune_specs_are_not_collected_and_nothing_starts(pytester: pytest.Pytester) -> None:
    write_spec(pytester)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = run(pytester, "tuning_specs", "test_plain.py")
    result.assert_outcomes(passed=1)
    assert "sim[" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()


def test_ids_one_per_config_a_baseline_and_a_verdict(pytester: pytest.Pytester) -> None:
    write_spec(pytester, values="[1, 2, 4]")
    write_spec(pytester, values="[1, 2, 4, 8]", strategy="random", max_trials=3, name="sampled")
    result = run(pytester, "--tune", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "tuning_specs/sampled.yaml::sampled[baseline]",
            "tuning_specs/sampled.yaml::sampled[trial-1]",
            "tuning_specs/sampled.yaml::sampled[trial-2]",
            "tuning_specs/sampled.yaml::sampled[verdict]",
            "tuning_specs/sim.yaml::sim[baseline]",
            "tuning_specs/sim.yaml::sim[max-num-seqs=2]",
            "tuning_specs/sim.yaml::sim[max-num-seqs=4]",
            "tuning_specs/sim.yaml::sim[verdict]",
        ]
    )
    assert "trial-3" not in result.stdout.str()  # max_trials counts the baseline
    selected = run(pytester, "--tune", "--collect-only", "-q", "-k", "sim and max-num-seqs:4")
    selected.stdout.fnmatch_lines(["tuning_specs/sim.yaml::sim[max-num-seqs=4]", "*1/8 tests collected*"])


def test_other_yaml_files_are_left_alone(pytester: pytest.Pytester) -> None:
    """Under a broad path, only YAML shaped like a spec (top-level name and engine) is collected."""
    write_spec(pytester)
    (pytester.path / "ci").mkdir()
    (pytester.path / "ci" / "workflow.yml").write_text("name: CI\non: push\njobs: {}\n")
    result = run(pytester, "--tune", "--collect-only", "-q", ".")
    assert result.ret == pytest.ExitCode.OK
    assert "workflow" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*3 tests collected*"])


def test_an_invalid_spec_is_a_collection_error_with_locations(pytester: pytest.Pytester) -> None:
    spec = write_spec(pytester)
    spec.write_text(spec.read_text().replace("runtime: sim", "runtime: simm"))
    result = run(pytester, "--tune")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # collection errors stop pytest
    result.stdout.fnmatch_lines(["*tuning_specs/sim.yaml:3:*: engine.runtime: unknown value 'simm'*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--tune-max-trials", "0"], "*--tune-max-trials: expected a positive integer, got 0*"),
        (["--tune-timeout", "soon"], "*--tune-timeout: invalid duration 'soon'*"),
        (["--tune-launcher", "podman"], "*--tune-launcher: expected one of process, docker, kubernetes, endpoint*"),
        (["--tune-storage", "study.db"], "*--tune-storage: expected a SQLAlchemy URL*"),
        (["--tune-gpus-per-worker", "-1"], "*--tune-gpus-per-worker: expected an integer >= 0*"),
    ],
)
def test_bad_option_values_are_refused(pytester: pytest.Pytester, args: list[str], expected: str) -> None:
    write_spec(pytester)
    result = run(pytester, "--tune", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])


def test_bad_ini_values_are_refused_with_the_ini_key(pytester: pytest.Pytester) -> None:
    write_spec(pytester)
    pytester.makeini("[pytest]\ntune_max_trials = many\n")
    result = run(pytester, "--tune")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option tune_max_trials = 'many': expected a positive integer*"])


def test_xdist_is_refused_without_a_shared_storage(pytester: pytest.Pytester) -> None:
    write_spec(pytester)
    result = run(pytester, "--tune", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest --tune with pytest-xdist needs a shared study: add --tune-storage*"])


# ------------------------------------------------------------------------------------------ running the sim
def test_outcomes_properties_summary_and_benchmark_json(pytester: pytest.Pytester) -> None:
    """Meets the SLOs: pass. Misses them, or dies at start: xfail with the measured reason. Verdict: passes."""
    write_spec(pytester, values="[1, 4, 64]")
    result = run(
        pytester, "--tune", "-rxX", "--junitxml=junit.xml", "--tune-benchmark-json=bench.json", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2, xfailed=2)  # max-num-seqs=4 and the verdict pass
    result.stdout.fnmatch_lines(
        [
            "*= autotuner =*",
            "sim (grid): trials 3 run (1 feasible, 1 infeasible, 1 failed), 0 skipped",
            "  best: max-num-seqs=4 [[]*]: maximize output_throughput = * tokens/s at D(64,32)@4",
            "  SLOs met at 1/1 levels (at D(64,32)@4: ttft.p90 *ms <= 250ms, error_rate 0.0% <= 0.0%)",
            "  verdict: passed; config tests: 1 passed, 2 xfailed",
            "XFAIL tuning_specs/sim.yaml::sim[[]baseline] - *max-num-seqs=1: infeasible: D(64,32)@4: ttft.p90 *ms > 250ms*",
            "XFAIL tuning_specs/sim.yaml::sim[[]max-num-seqs=64] - *max-num-seqs=64: failed: oom: engine exited *",
        ]
    )
    assert [t.config["max-num-seqs"] for t in results(pytester).trials] == [1, 4, 64]

    cases = {case.get("name"): case for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["sim[max-num-seqs=4]"].iter("property")}
    assert props["autotuner.outcome"] == "feasible"
    assert float(props["autotuner.objective.output_throughput"] or 0) > 0
    assert float(props["autotuner.level.D(64,32)@4.ttft.p90"] or 1) < 0.25
    assert (props["autotuner.level.D(64,32)@4.check.ttft.p90"] or "").startswith("ok: ttft.p90 ")
    verdict = {p.get("name"): p.get("value") for p in cases["sim[verdict]"].iter("property")}
    assert verdict["autotuner.best.config"] == "max-num-seqs=4"
    assert verdict["autotuner.trials.failed"] == "1" and verdict["autotuner.trials.infeasible"] == "1"

    ours = json.loads((pytester.path / "bench.json").read_text())
    names = [b["name"] for b in ours["benchmarks"]]
    assert names == ["sim[max-num-seqs=4]", "sim[best]"]  # feasible configs, then the best per spec
    entry = ours["benchmarks"][0]
    throughput = float(props["autotuner.objective.output_throughput"] or 0)
    assert entry["stats"]["ops"] == pytest.approx(throughput, rel=1e-4)  # what github-action-benchmark charts
    assert entry["stats"]["mean"] == pytest.approx(1 / throughput, rel=1e-4)  # seconds per output token
    assert entry["extra_info"]["unit"] == "tokens/s" and entry["extra_info"]["stats_unit"] == "s/token"

    # the same keys as pytest-benchmark's own file
    pytester.makepyfile(test_bench="def test_sum(benchmark):\n    benchmark(sum, [1, 2, 3])\n")
    theirs_run = run(pytester, "test_bench.py", "--benchmark-json=theirs.json", "-p", "no:cacheprovider")
    theirs_run.assert_outcomes(passed=1)
    theirs = json.loads((pytester.path / "theirs.json").read_text())
    assert set(ours) == set(theirs)
    assert set(ours["machine_info"]) == set(theirs["machine_info"])
    assert set(entry) == set(theirs["benchmarks"][0])
    assert set(entry["stats"]) == set(theirs["benchmarks"][0]["stats"])
    assert set(theirs["benchmarks"][0]["options"]) <= set(entry["options"])  # 5.3 added precision, confidence
    assert ours["version"] == theirs["version"]


def test_a_sampled_strategy_gets_trial_tests_and_the_verdict_races_the_best(pytester: pytest.Pytester) -> None:
    """max_trials 4 with racing's default share: 3 configs explored (baseline, trial-1, trial-2), 1 repeat."""
    write_spec(pytester, values="[1, 2, 4, 8]", ttft="2s", strategy="random", max_trials=4)
    result = run(pytester, "--tune", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["*sim[[]trial-2] PASSED*", "sim (random): trials 3 run (3 feasible, *), 0 skipped, 1 repeats"]
    )
    final = results(pytester)
    assert [t.repeat for t in final.trials].count(0) == 3 and len(final.trials) == 4
    assert final.trials[0].baseline and len({t.config_hash for t in final.trials}) == 3


def test_strict_fails_an_slo_miss_and_x_stops_measuring(pytester: pytest.Pytester) -> None:
    write_spec(pytester, values="[1, 2, 4]")
    result = run(pytester, "--tune", "--tune-strict", "-x", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "max-num-seqs=1: infeasible: D(64,32)@4: ttft.p90 *ms > 250ms (*% of requests over)",
            "FAILED tuning_specs/sim.yaml::sim[[]baseline] - Failed: max-num-seqs=1: infeas*",
        ]
    )
    assert [t.config["max-num-seqs"] for t in results(pytester).trials] == [1]  # -x: nothing else was launched
    assert results(pytester).finished is not None  # the study was finished at exit: results.json is complete


def test_verdict_fails_with_numbers_when_no_config_is_feasible(pytester: pytest.Pytester) -> None:
    write_spec(pytester, values="[1, 2]", ttft="1ms")
    result = run(pytester, "--tune", "-p", "no:cacheprovider")
    result.assert_outcomes(xfailed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*sim: no config met the SLOs; trials 2 run (0 feasible, 2 infeasible, 0 failed), 0 skipped",
            "*- baseline max-num-seqs=1: infeasible: D(64,32)@4: ttft.p90 *ms > 1ms (100% of requests over)*",
            "*- max-num-seqs=2: infeasible: D(64,32)@4: ttft.p90 *ms > 1ms*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_an_infrastructure_error_is_an_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Docker daemon behind DOCKER_HOST: every test of the spec errors with the reason, nothing is xfailed."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pytester.path / 'no-daemon.sock'}")
    write_spec(pytester)
    result = run(pytester, "--tune", "--tune-launcher", "docker", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["ERROR tuning_specs/sim.yaml::sim[[]baseline] - Failed: InfrastructureError: *"])
    assert "Docker daemon not reachable" in result.stdout.str()


def test_k_measures_only_the_selected_configs(pytester: pytest.Pytester) -> None:
    write_spec(pytester, values="[1, 2, 4]")
    result = run(pytester, "--tune", "-k", "max-num-seqs:4 or verdict", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert [t.config["max-num-seqs"] for t in results(pytester).trials] == [4]


def test_lf_reruns_what_failed_and_keeps_what_passed(pytester: pytest.Pytester) -> None:
    write_spec(pytester, values="[1, 4]")
    first = run(pytester, "--tune", "--tune-strict")
    first.assert_outcomes(passed=2, failed=1)  # the baseline misses the TTFT limit
    before = {t.config_hash: t for t in results(pytester).trials}

    again = run(pytester, "--tune", "--tune-strict", "--lf")
    again.assert_outcomes(failed=1)  # pytest runs only the failed test (passed ones are not collected)
    baseline_hash = next(h for h, t in before.items() if t.baseline)
    assert measured_here(pytester) == [baseline_hash]  # only the failed config was launched again
    kept = {t.config_hash: t for t in results(pytester).trials}
    assert kept.keys() == before.keys()  # the passed config still counts for the verdict and the report
    passed_hash = next(h for h in before if h != baseline_hash)
    assert kept[passed_hash].objective == before[passed_hash].objective
    assert len({t.number for t in kept.values()}) == 2


def test_lf_finds_a_failed_tuning_test_and_forgets_it_once_it_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest's cache keeps failures as node id strings, which pytest >= 9.2 parses back into path, names and
    ``[params]``: a tuning test's own id must compare equal to that, else ``--lf`` recognizes no failure (and
    runs every test) and a test that passes again is never struck off the cache's failures."""
    write_spec(pytester, values="[1, 4]")
    with monkeypatch.context() as no_docker:  # an error within a second, no engine launched
        no_docker.setenv("DOCKER_HOST", f"unix://{pytester.path / 'no-daemon.sock'}")
        run(pytester, "--tune", "--tune-launcher", "docker", "-k", "max-num-seqs:4").assert_outcomes(errors=1)
    selected = run(pytester, "--tune", "--lf", "--collect-only", "-q")
    assert [line for line in selected.stdout.lines if "::" in line] == ["tuning_specs/sim.yaml::sim[max-num-seqs=4]"]

    run(pytester, "--tune", "-k", "max-num-seqs:4").assert_outcomes(passed=1)  # the sim engine this time
    cleared = run(pytester, "--tune", "--lf", "--collect-only")
    cleared.stdout.fnmatch_lines(["run-last-failure: no previously failed tests, *", "*3 tests collected*"])


def test_xdist_workers_share_one_study_without_duplicates(pytester: pytest.Pytester) -> None:
    write_spec(pytester, values="[1, 2, 4, 8]", ttft="2s")
    pytester.makeconftest(
        "import os\n"
        "def pytest_sessionstart(session):\n"
        "    worker = os.environ.get('PYTEST_XDIST_WORKER', 'controller')\n"
        "    with open(f'gpus-{worker}.txt', 'w') as f:\n"
        "        f.write(os.environ.get('AUTOTUNER_GPU_DEVICES', '-'))\n"
    )
    storage = f"sqlite:///{pytester.path / 'study.db'}"
    args = ["--tune", "-n", "2", "--tune-storage", storage, "--tune-heartbeat", "5", "--tune-gpus-per-worker", "2"]
    result = run(pytester, *args, "-v")
    result.assert_outcomes(passed=5)
    assert (pytester.path / "gpus-gw0.txt").read_text() == "0,1"  # the launch plan hands these to the engines
    assert (pytester.path / "gpus-gw1.txt").read_text() == "2,3"
    assert (pytester.path / "gpus-controller.txt").read_text() == "-"
    result.stdout.fnmatch_lines(["*gw0*PASSED*", "*gw1*PASSED*"], consecutive=False)
    launched: list[str] = []
    for run_dir in (pytester.path / "reports" / "sim").iterdir():
        if run_dir.is_dir() and not run_dir.is_symlink():
            launched.extend(p.name.rsplit("-", 1)[1] for p in run_dir.glob("trial-*"))
    finals = [
        StudyResult.read(p)
        for p in (pytester.path / "reports" / "sim").glob("*/results.json")
        if not p.parent.is_symlink()
    ]
    final = max(finals, key=lambda r: len(r.trials))  # the verdict's: every worker's trials
    assert final.best() is not None
    assert len({t.config_hash for t in final.trials if t.repeat == 0}) == 4
    measurements = {(t.config_hash, t.repeat) for t in final.trials}
    assert len(measurements) == len(final.trials) == len(launched), launched  # nothing measured twice
    assert "sim (grid): trials 4 run (4 feasible, 0 infeasible, 0 failed), 0 skipped" in result.stdout.str()


def test_report_dir_option_and_ini(pytester: pytest.Pytester) -> None:
    write_spec(pytester, values="[1, 2, 4]", ttft="2s")
    pytester.makeini("[pytest]\ntune_report_dir = out/tuning\ntune_max_trials = 2\n")
    result = run(pytester, "--tune", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)  # budget 2: the baseline and one sampled grid point, and the verdict
    data: dict[str, Any] = json.loads(
        (pytester.path / "out" / "tuning" / "sim" / "latest" / "results.json").read_text()
    )
    assert [t["config"]["max-num-seqs"] for t in data["trials"]][0] == 1 and len(data["trials"]) == 2
    assert os.path.islink(pytester.path / "out" / "tuning" / "sim" / "latest")


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_embedded_default_for_real(pytester: pytest.Pytester) -> None:
    """llama.cpp serving SmolLM2-135M on this CPU, two configs: the shipped spec as users run it."""
    shipped = Path(__file__).resolve().parents[2] / "tuning_specs" / "smollm2-cpu.yaml"
    (pytester.path / "tuning_specs").mkdir()
    (pytester.path / "tuning_specs" / "smollm2-cpu.yaml").write_text(shipped.read_text())
    result = pytester.runpytest_subprocess(
        "--tune", "--tune-max-trials", "2", "--junitxml=junit.xml", "-p", "no:cacheprovider", timeout=1400
    )
    outcomes = result.parseoutcomes()
    assert not outcomes.get("errors") and not outcomes.get("error"), result.stdout.str()
    counted = ("passed", "xfailed", "failed", "skipped")  # skipped: the incumbent probe dropped the sampled config
    assert sum(outcomes.get(name, 0) for name in counted) == 3  # 2 configs, verdict
    measured = results(pytester, "smollm2-cpu")
    assert len(measured.trials) == 2 and measured.trials[0].baseline
    for trial in measured.trials:
        assert trial.outcome in ("feasible", "infeasible", "skipped"), trial.reason
        assert trial.outcome != "skipped" or trial.reason.startswith("probe at "), trial.reason
    result.stdout.fnmatch_lines(["*= autotuner =*", "smollm2-cpu (tpe): trials * run (*"])
