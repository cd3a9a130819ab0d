"""Read a genai-bench experiment folder into one result per expected level, by genai-bench's own rules.

What the original autotuner got wrong, and what this module does instead (see reference/genai-bench.md):
- it globbed ``D*.json`` (dropping N/U scenarios and reading the metadata file): run files are matched by
  genai-bench's file-name pattern and identified by the ``scenario`` / ``num_concurrency`` inside them;
- it trusted ``error_rate`` (always 0 in saved files): the rate is recomputed from the per-request records;
- it ignored ``_time_unit``: ``ms`` files are scaled back to seconds (only the four latencies are in ms);
- a level without a file, or with genai-bench's ``debug_for_run_*`` file, is a failed level with its reason,
  never silently absent; levels after such a failure were not run at all, and say so.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .measurement import LATENCIES, LevelFailure, LevelKey, LevelResult, Measurement, RequestSample

RUN_FILE = re.compile(r"^.+_.+_(?:concurrency|batch_size)_\d+_time_\d+s\.json$")
DEBUG_FILE = re.compile(r"^debug_for_run_.+\.json$")


def read_experiment(folder: Path, expected: Iterable[LevelKey]) -> dict[LevelKey, LevelResult]:
    """One result per expected level, in the order given (which is the order genai-bench ran them)."""
    found: dict[LevelKey, LevelResult] = {}
    for path in sorted(folder.rglob("*.json")):
        if RUN_FILE.match(path.name) or DEBUG_FILE.match(path.name):
            result = _read_file(path, debug=bool(DEBUG_FILE.match(path.name)))
            if result is not None:
                previous = found.get(result.key)
                if previous is None or isinstance(previous, LevelFailure):
                    found[result.key] = result
    results: dict[LevelKey, LevelResult] = {}
    stopped_at: LevelKey | None = None
    for key in expected:
        result = found.get(key)
        if result is None:
            reason = (
                f"not run: genai-bench stopped after level {stopped_at} failed"
                if stopped_at
                else "no result file: no request finished (succeeded or failed) within the level's time limit "
                "(requests too slow or the engine hung)"
            )
            result = LevelFailure(key, reason)
        elif isinstance(result, LevelFailure) and stopped_at is None:
            stopped_at = key  # a debug file: genai-bench raised and exited 1, later levels never ran
        results[key] = result
    return results


def _read_file(path: Path, *, debug: bool) -> LevelResult | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        metrics = data["aggregated_metrics"]
        key = LevelKey(str(metrics["scenario"]), int(metrics["num_concurrency"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not a run file after all (or torn): the level is then reported missing, with its reason
    scale = 1e-3 if data.get("_time_unit", "s") == "ms" else 1.0
    samples = tuple(_sample(raw, scale) for raw in data.get("individual_request_metrics") or [])
    if debug:
        errors = sum(1 for s in samples if not s.ok)
        first = next((s.error_message for s in samples if s.error_message), None)
        detail = f"; first error: {_shorten(first)}" if first else ""
        return LevelFailure(
            key,
            f"genai-bench could not aggregate this level ({len(samples)} requests, {errors} failed{detail})",
            samples,
        )
    return Measurement(
        key=key,
        samples=samples,
        run_duration=_number(metrics.get("run_duration")),
        output_throughput=_number(metrics.get("mean_output_throughput_tokens_per_s")),
        total_throughput=_number(metrics.get("mean_total_tokens_throughput_tokens_per_s")),
        requests_per_second=_number(metrics.get("requests_per_second")),
        error_codes={str(k): int(v) for k, v in (metrics.get("error_codes_frequency") or {}).items()},
        reference_stats=_stats(metrics.get("stats") or {}, scale),
    )


def _sample(raw: Mapping[str, Any], scale: float) -> RequestSample:
    def latency(name: str) -> float | None:
        value = raw.get(name)
        return None if value is None else float(value) * scale

    code = raw.get("error_code")
    return RequestSample(
        ttft=latency("ttft"),
        tpot=latency("tpot"),
        e2e_latency=latency("e2e_latency"),
        output_latency=latency("output_latency"),
        input_tokens=_int(raw.get("num_input_tokens")),
        output_tokens=_int(raw.get("num_output_tokens")),
        error_code=None if code is None else int(code),
        error_message=raw.get("error_message"),
    )


def _stats(stats: Mapping[str, Any], scale: float) -> dict[str, dict[str, float | None]]:
    result: dict[str, dict[str, float | None]] = {}
    for name, values in stats.items():
        if not isinstance(values, Mapping):
            continue
        factor = scale if name in LATENCIES else 1.0
        result[name] = {k: (None if v is None else float(v) * factor) for k, v in values.items()}
    return result


def _shorten(message: str) -> str:
    """Keep the start and the end of a long error: the cause ("Connection refused") is usually at the end."""
    return message if len(message) <= 300 else f"{message[:100]} ... {message[-180:]}"


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
