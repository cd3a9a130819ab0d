"""Baselines: written from a run, read back unchanged, refused when they cannot describe main; fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autotuner.ab import BaselineMismatch, check_environment
from autotuner.baseline import BaselineError, baseline_path, make_baseline, read_baseline, update
from autotuner.cli import main
from autotuner.results import EstimateRecord, IntervalRecord, RankingRecord, SampleSet, StudyResult

from .test_compare import ENV, A, B, main_baseline, record, result


def run_with_repeats() -> StudyResult:
    """A run: the baseline config B, the best A (measured three times, with per-request samples), one more."""
    records = [record(0, B, 80.0), record(1, A, 100.0), record(2, {"n-parallel": 1}, None)]
    records += [record(3, A, 104.0, repeat=1), record(4, A, 96.0, repeat=2)]
    records[1].levels[0].samples = SampleSet(ttft=[0.4, 0.5], e2e_latency=[1.0, 1.1], output_tokens=[64, 64])
    interval = IntervalRecord(estimate=100.0, low=95.0, high=105.0, confidence=0.95, n=3, method="t")
    ranking = RankingRecord(
        best=records[1].config_hash, leader=records[1].config_hash,
        tie_set=[records[1].config_hash, records[0].config_hash], separated=False, confidence=0.95,
        rule="difference", tie_break="baseline",
        estimates=[
            EstimateRecord(config_hash=records[1].config_hash, config_id=records[1].config_id, trials=[1, 3, 4],
                           values=[100.0, 104.0, 96.0], mean=100.0, interval=interval),
            EstimateRecord(config_hash=records[0].config_hash, config_id=records[0].config_id, trials=[0],
                           values=[80.0], mean=80.0, interval=interval),
        ],
    )  # fmt: skip
    run = result(records, 1)
    run.ranking, run.baseline_trial = ranking, 0
    return run


def test_update_round_trip(tmp_path: Path) -> None:
    run = run_with_repeats()
    results = tmp_path / "run" / "results.json"
    run.write(results)
    path = update("cpu", "d1", results, tmp_path / "reports")
    assert path == baseline_path(tmp_path / "reports", "cpu") == tmp_path / "reports" / "cpu" / "baseline.json"
    back = read_baseline(tmp_path / "reports", "cpu")  # a folder is searched for <spec>/baseline.json
    assert back == read_baseline(path)
    best = back.best()
    assert best is not None and best.config == {"n-parallel": 4}
    assert [(t.number, t.repeat) for t in back.trials] == [(1, 0), (3, 1), (4, 2)]  # every measurement of the best
    assert back.trials[0].levels[0].samples.ttft == [0.4, 0.5]  # per-request samples kept
    assert back.environment == ENV and back.spec_digest == "d1" and back.baseline_trial is None
    assert back.ranking is not None and back.ranking.tie_set == [best.config_hash]
    assert [e.config_hash for e in back.ranking.estimates] == [best.config_hash]
    assert "baseline of cpu" in back.notes[0]
    assert json.loads(path.read_text())["schema_version"] == 2  # a results file: every results reader reads it


def test_update_refuses_what_cannot_describe_main(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    run_with_repeats().write(results)
    with pytest.raises(BaselineError, match="run of spec 'cpu', not 'gpu'"):
        update("gpu", "d1", results, tmp_path)
    with pytest.raises(BaselineError, match="another version of cpu"):
        update("cpu", "d2", results, tmp_path)
    with pytest.raises(BaselineError, match="no config met the SLOs"):
        make_baseline(result([record(0, A, None)], None), source="x")
    with pytest.raises(BaselineError, match="not a readable"):
        update("cpu", "d1", tmp_path / "missing.json", tmp_path)


def test_cli_baseline_update_checks_the_spec(tmp_path: Path) -> None:
    spec = tmp_path / "cpu.yaml"
    from .specs import BASE

    spec.write_text(BASE)
    results = tmp_path / "results.json"
    run_with_repeats().write(results)
    lines: list[str] = []

    class Out:
        def write(self, text: str) -> int:
            lines.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    code = main(["baseline", "update", str(spec), str(results), "--reports-dir", str(tmp_path)], out=Out())  # type: ignore[arg-type]
    assert code == 2 and "not 'smollm2-cpu'" in "".join(lines)


def test_fingerprint_mismatch_is_refused_before_measuring() -> None:
    other = ENV.model_copy(update={"cpu": "EPYC", "engine": "llamacpp (xllamacpp 0.3)"})
    with pytest.raises(BaselineMismatch) as raised:
        check_environment(main_baseline(), other, allow_mismatch=False)
    text = str(raised.value)
    assert "CPU: 2 x Xeon on main, 2 x EPYC now" in text and "engine:" in text and "--allow-mismatch" in text
    assert len(check_environment(main_baseline(), other, allow_mismatch=True)) == 2
    assert check_environment(main_baseline(), ENV.model_copy(update={"host": "b"}), allow_mismatch=False) == []


def compare_cli(tmp_path: Path, current: StudyResult, *args: str) -> tuple[int, str]:
    base, now = tmp_path / "baseline.json", tmp_path / "results.json"
    main_baseline().write(base)
    current.write(now)
    lines: list[str] = []

    class Out:
        def write(self, text: str) -> int:
            lines.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    code = main(["compare", str(base), str(now), *args], out=Out())  # type: ignore[arg-type]
    return code, "".join(lines)


def test_cli_compare_exit_codes(tmp_path: Path) -> None:
    same = result([record(0, A, 100.0), record(1, A, 101.0, repeat=1), record(2, A, 99.0, repeat=2)], 0)
    code, text = compare_cli(tmp_path, same)
    assert code == 0 and "verdict: UNCHANGED" in text and "stored numbers" in text
    slower = result([record(0, A, 70.0), record(1, A, 71.0, repeat=1), record(2, A, 69.0, repeat=2)], 0)
    code, text = compare_cli(tmp_path, slower)
    assert code == 6 and "verdict: REGRESSED" in text
    unsure = result([record(0, A, 88.0)], 0)  # -12% from one measurement: cannot be confirmed
    code, text = compare_cli(tmp_path, unsure)
    assert code == 7 and "INCONCLUSIVE" in text and "rerun with more repeats" in text


def test_cli_compare_refuses_another_machine_unless_allowed(tmp_path: Path) -> None:
    elsewhere = result([record(0, A, 100.0)], 0, env=ENV.model_copy(update={"gpus": ["GPU 0: NVIDIA L4"]}))
    code, text = compare_cli(tmp_path, elsewhere)
    assert code == 2 and "refused" in text and "GPUs: 0 (none) on main, 1 (GPU 0: NVIDIA L4) now" in text
    code, text = compare_cli(tmp_path, elsewhere, "--allow-mismatch", "--json")
    data = json.loads(text)
    assert data["warnings"] and data["warnings"][0].startswith("WARNING") and data["mismatch"]
    assert code in (0, 7)
