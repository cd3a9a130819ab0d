"""Main's baseline for a spec: ``reports/<spec>/baseline.json``, committed to the repository (I/O at the edge).

A baseline is a subset of a ``StudyResult`` in the same schema (``SCHEMA_VERSION``): the spec's name and digest,
the environment fingerprint (which carries the tool's version), the best config's every measurement (first and
repeats, with per-level figures, intervals and per-request samples), ``best_trial`` and a ranking reduced to the
best. Being a results file, every reader of results (``autotuner report --baseline``, ``pytest --tune-baseline``,
``autotuner compare``) reads it unchanged. Only what the comparison needs is kept, so it stays small enough to
commit and to review in a diff.
"""

from __future__ import annotations

from pathlib import Path

from .results import StudyResult, now

FILE_NAME = "baseline.json"


class BaselineError(ValueError):
    """A baseline that cannot be written or used (no best config, another spec, a missing file)."""


def baseline_path(reports_dir: Path, spec_name: str) -> Path:
    return reports_dir / spec_name / FILE_NAME


def make_baseline(result: StudyResult, *, source: str) -> StudyResult:
    """The baseline subset of ``result``: its best config's measurements, with what makes them comparable."""
    best = result.best()
    if best is None:
        raise BaselineError(f"{source}: no config met the SLOs, so there is no best config to make a baseline of")
    records = sorted(
        (t for t in result.trials if t.config_hash == best.config_hash), key=lambda t: (t.repeat, t.number)
    )
    ranking = None
    if result.ranking is not None:
        estimate = result.ranking.estimate(best.config_hash)
        ranking = result.ranking.model_copy(
            update={
                "leader": best.config_hash,
                "best": best.config_hash,
                "tie_set": [best.config_hash],
                "estimates": [estimate] if estimate is not None else [],
            }
        )
    return result.model_copy(
        update={
            "trials": records,
            "best_trial": best.number,
            "baseline_trial": None,
            "ranking": ranking,
            "comparison": None,
            "notes": [
                f"baseline of {result.spec_name}: {best.config_id} ({len(records)} measurement(s)), "
                f"from {source}, written {now()}"
            ],
        },
        deep=True,
    )


def update(spec_name: str, spec_digest: str, results_path: Path, reports_dir: Path) -> Path:
    """Write ``<reports_dir>/<spec>/baseline.json`` from a run's ``results.json`` of that spec (its current text).

    A run of another spec, or of an older version of this spec, is refused: main's baseline must describe main's
    spec, or every pull request would be reported as a spec change."""
    try:
        result = StudyResult.read(results_path)
    except (OSError, ValueError) as exc:
        raise BaselineError(f"{results_path}: not a readable results file: {exc}") from exc
    if result.spec_name != spec_name:
        raise BaselineError(f"{results_path} is a run of spec {result.spec_name!r}, not {spec_name!r}")
    if result.spec_digest != spec_digest:
        raise BaselineError(
            f"{results_path} was measured with another version of {spec_name} (digest {result.spec_digest[:12]}, "
            f"the spec now {spec_digest[:12]}): tune the current spec and update from that run"
        )
    baseline = make_baseline(result, source=str(results_path))
    path = baseline_path(reports_dir, spec_name)
    baseline.write(path)
    return path


def read_baseline(path: Path, spec_name: str | None = None) -> StudyResult:
    """A baseline (or any results file) with a best config; a folder is searched for ``<spec>/baseline.json``."""
    if path.is_dir() and spec_name is not None:
        path = baseline_path(path, spec_name)
    try:
        result = StudyResult.read(path)
    except (OSError, ValueError) as exc:
        raise BaselineError(f"{path}: not a readable baseline: {exc}") from exc
    if result.best() is None:
        raise BaselineError(f"{path}: the baseline has no best config")
    if spec_name is not None and result.spec_name != spec_name:
        raise BaselineError(f"{path} is the baseline of spec {result.spec_name!r}, not {spec_name!r}")
    return result
