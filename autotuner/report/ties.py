"""The study's ranking as the report reads it: each config's mean objective with its interval, and the tie-set.

``StudyResult.ranking`` (written by the study from ``autotuner.estimates``) names the best config over every
measurement, first and repeats, and the configs the measurements cannot tell apart from it. The report shows
those figures; it never re-ranks. Results without a ranking (schema version 1, several objectives) have none,
and the report falls back to single measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..results import StudyResult


@dataclass(frozen=True)
class ConfigEstimate:
    config_hash: str
    config_id: str
    mean: float
    low: float | None
    high: float | None
    measurements: int
    p_value: float | None  # of "as good as the leader" (None for the leader)


@dataclass(frozen=True)
class Ties:
    tie_set: tuple[str, ...]  # config hashes, best first
    separated: bool  # the best is shown better than every other config
    confidence: float
    rule: str
    tie_break: str
    estimates: tuple[ConfigEstimate, ...]  # best mean first

    def estimate(self, config_hash: str) -> ConfigEstimate | None:
        return next((e for e in self.estimates if e.config_hash == config_hash), None)


def ties_of(result: StudyResult) -> Ties | None:
    ranking = result.ranking
    if ranking is None:
        return None
    return Ties(
        tie_set=tuple(ranking.tie_set),
        separated=ranking.separated,
        confidence=ranking.confidence,
        rule=ranking.rule,
        tie_break=ranking.tie_break,
        estimates=tuple(
            ConfigEstimate(
                config_hash=e.config_hash,
                config_id=e.config_id,
                mean=e.mean,
                low=e.interval.low,
                high=e.interval.high,
                measurements=len(e.values),
                p_value=e.p_value,
            )
            for e in ranking.estimates
        ),
    )
