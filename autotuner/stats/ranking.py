"""The best config and its tie-set: the configs the measurements cannot tell apart from it (pure).

The leader is the config with the best mean (highest for maximize). Another config is *tied* with it unless the
data show it is worse. Two rules:

- ``"difference"`` (default): a Welch t-test of ``leader - other`` on the repeat values (prior-shrunk noise, the
  prior alone for one repeat; see repeats.py), Holm-adjusted over the ``k - 1`` comparisons. Two-sided although
  the question is one-sided, because the leader is chosen by the data: of two equal configs one is always ahead,
  by ``|d|``, and a one-sided test on that gap rejects twice as often as its nominal level. Holm's
  step-down procedure keeps the family-wise error at ``1 - confidence``: the chance that any config truly as good
  as the leader is declared worse is at most 5% at 95% confidence, so the tie-set contains the truly best config
  with probability ~95% (exact for a fixed reference; the leader is picked from the data, and the winner's
  curse makes it look better than it is, which racing corrects by re-measuring it). The price of Holm over
  unadjusted tests is small: clearly worse configs have tiny p-values and are rejected first, at strict levels,
  which loosens the level for the close ones.
- ``"overlap"``: tied when the other's interval reaches the leader's (upper end >= leader's lower end for
  maximize). Simple to explain but conservative: two 95% intervals of equal width overlap until the difference
  is ~2.8 standard errors (a ~0.3% one-sided test per pair), with no control over many comparisons.

Order of the tie-set (the first is the recommended config), deterministic:
1. ``prefer`` (the baseline) if tied: when no config is shown better, not changing anything is the safest advice;
2. lower ``secondary`` value (e.g. a latency, lower is better) if given;
3. better mean; 4. ``str(key)``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from .distributions import t_sf
from .repeats import ConfigEstimate, difference

K = TypeVar("K", bound=Hashable)
Direction = Literal["maximize", "minimize"]
TieRule = Literal["difference", "overlap"]


@dataclass(frozen=True)
class Ranking(Generic[K]):
    best: K  # the recommended config: the first of the tie-set after the tie-break
    leader: K  # the config with the best mean: the reference of the tie test
    tie_set: tuple[K, ...]  # configs not shown worse than the leader (leader included), tie-break order
    separated: bool  # the leader is shown better than every other config
    p_values: Mapping[K, float]  # p-value of "as good as the leader" (rule "difference"; else empty)
    estimates: Mapping[K, ConfigEstimate]


def _sign(direction: Direction) -> float:
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be maximize or minimize, got {direction!r}")
    return 1.0 if direction == "maximize" else -1.0


def _leader(estimates: Mapping[K, ConfigEstimate], sign: float) -> K:
    return min(estimates, key=lambda k: (-sign * estimates[k].mean, str(k)))


def worse_p_value(leader: ConfigEstimate, other: ConfigEstimate, direction: Direction) -> float:
    """p-value of the null "other is as good as the leader" (Welch t, two-sided: see the module notes)."""
    diff = difference(other, leader)  # leader - other
    gap = _sign(direction) * diff.estimate  # > 0: the leader looks better
    if gap <= 0:
        return 1.0
    if not math.isfinite(diff.se):
        return 1.0  # an unknown noise level cannot show anything worse
    if diff.se == 0:
        return 0.0
    return min(1.0, 2.0 * t_sf(gap / diff.se, diff.df))


def rank(
    estimates: Mapping[K, ConfigEstimate],
    direction: Direction = "maximize",
    *,
    confidence: float = 0.95,
    rule: TieRule = "difference",
    prefer: K | None = None,
    secondary: Mapping[K, float] | None = None,
) -> Ranking[K]:
    """Name the leader, its tie-set (see the module notes for the rule and its error rate) and the best config."""
    if not estimates:
        raise ValueError("nothing to rank")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    sign = _sign(direction)
    leader = _leader(estimates, sign)
    top = estimates[leader]
    others = [k for k in estimates if k != leader]
    p_values: dict[K, float] = {}
    if rule == "difference":
        p_values = {k: worse_p_value(top, estimates[k], direction) for k in others}
        alpha = 1.0 - confidence
        tied = set(others)
        for step, key in enumerate(sorted(others, key=lambda k: (p_values[k], str(k)))):
            if p_values[key] > alpha / (len(others) - step):
                break  # Holm: the first non-rejection stops; it and all larger p-values stay tied
            tied.discard(key)
    elif rule == "overlap":
        if sign > 0:
            tied = {k for k in others if estimates[k].interval.high >= top.interval.low}
        else:
            tied = {k for k in others if estimates[k].interval.low <= top.interval.high}
    else:
        raise ValueError(f"unknown tie rule {rule!r}")

    def order(key: K) -> tuple[int, float, float, str]:
        extra = secondary.get(key, math.inf) if secondary is not None else math.inf
        extra = math.inf if math.isnan(extra) else extra
        return (0 if prefer is not None and key == prefer else 1, extra, -sign * estimates[key].mean, str(key))

    tie_set = tuple(sorted([leader, *tied], key=order))
    return Ranking(tie_set[0], leader, tie_set, len(tie_set) == 1, p_values, dict(estimates))
