"""Which configs to measure again: racing between the incumbent and the configs that could still beat it (pure).

After the search has measured every config once, a single measurement cannot name the best (on the CPU default
the grid's #1 averaged 22% below its own first measurement over three repeats). Re-measuring everything wastes
the budget on configs that are clearly worse; re-measuring nothing names noise. Racing (Maron & Moore's
Hoeffding races, successive halving) spends repeats only where they can change the answer:

- the candidates are the tie-set of the current ranking (``ranking.rank``, the same rule the final result uses):
  the leader and every config not yet shown worse. A config shown worse is never measured again;
- each call returns one round, each candidate once, in an order that alternates between rounds (A B C, then
  C B A): within a round drift hits the candidates alike, and over two rounds a linear drift cancels;
- racing stops (empty list) when the leader is separated from every other config, when the budget is spent, or
  when every tied candidate has ``max_repeats`` repeats: a true tie is then reported as a tie-set instead of
  eating the whole budget;
- ``min_repeats`` (``search.repeats``) is a floor for the final best and for every config in the tie-set;
- a leader that looks separated after one measurement is measured again before racing stops
  (``confirm_repeats``): with one value its noise is the prior's normal model, and a lucky first measurement is
  exactly what that model underrates (on the CPU default the grid's #1 averaged 22% below its first measurement).

Error rates: the tie test runs after every round (up to ``max_repeats`` looks), and repeated looks inflate the
chance of declaring truly equal configs apart: about 8% instead of 5% in simulation (two equal configs, CV 7%,
tests/unit/test_stats_racing.py). A dominating config costs one confirming repeat.

The caller measures the returned configs in order, appends each repeat's objective value to the state, and
calls again. Infeasible repeats are the caller's to handle (leave them out, or drop the config).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .interval import Interval
from .ranking import Direction, K, Ranking, TieRule, rank
from .repeats import PRIOR_CV, PRIOR_DF, estimate_config, typical_cv

MAX_REPEATS = 5
CONFIRM_REPEATS = 2


@dataclass(frozen=True)
class RacePolicy:
    direction: Direction = "maximize"
    confidence: float = 0.95
    prior_cv: float = PRIOR_CV
    prior_df: float = PRIOR_DF
    max_repeats: int = MAX_REPEATS  # per config, unless min_repeats asks for more
    confirm_repeats: int = CONFIRM_REPEATS  # the leader's repeats before a separation is believed
    rule: TieRule = "difference"
    pool: bool = True  # learn the machine's noise level from every config's repeats (see race_ranking)


def race_ranking(
    state: Mapping[K, Sequence[float]],
    *,
    policy: RacePolicy = RacePolicy(),
    within: Mapping[K, Sequence[Interval]] | None = None,
    prefer: K | None = None,
    secondary: Mapping[K, float] | None = None,
) -> Ranking[K]:
    """The ranking racing works from; call it once racing stops for the result (best, tie-set).

    With ``policy.pool`` (default) the prior's noise level is learnt from the repeats in ``state`` (``noise``):
    the typical config's spread, so a noisy machine widens every interval; each config's own repeats then
    widen (or narrow) its own."""
    prior_cv, prior_df = noise(state, policy)
    estimates = {
        key: estimate_config(
            values,
            within.get(key) if within is not None else None,
            confidence=policy.confidence,
            prior_cv=prior_cv,
            prior_df=prior_df,
        )
        for key, values in state.items()
    }
    return rank(
        estimates, policy.direction, confidence=policy.confidence, rule=policy.rule, prefer=prefer, secondary=secondary
    )


def noise(state: Mapping[K, Sequence[float]], policy: RacePolicy) -> tuple[float, float]:
    """The noise prior every config's repeats are shrunk toward: ``(cv, prior degrees of freedom)``.

    Its level is ``policy``'s prior updated with the typical config's spread (``typical_cv``, one vote per
    repeated config), so a uniformly noisy machine widens every interval. Its weight stays ``policy.prior_df``
    whatever the number of repeats: a config's own repeats must be able to outweigh it, because configs differ in
    how erratic they are (a config whose repeats range from 24 to 145 tok/s is not as well known as one whose
    repeats agree within 5%), while two repeats that agree by chance still do not look precise."""
    if not policy.pool:
        return policy.prior_cv, policy.prior_df
    typical, configs = typical_cv(state.values())
    if configs == 0:
        return policy.prior_cv, policy.prior_df
    total = policy.prior_df + configs
    return math.sqrt((policy.prior_df * policy.prior_cv**2 + configs * typical**2) / total), policy.prior_df


def next_repeats(
    state: Mapping[K, Sequence[float]],
    budget_left: int,
    min_repeats: int = 1,
    *,
    policy: RacePolicy = RacePolicy(),
    within: Mapping[K, Sequence[Interval]] | None = None,
    prefer: K | None = None,
    secondary: Mapping[K, float] | None = None,
    reference: K | None = None,
) -> list[K]:
    """The next round of re-measurements (each config at most once, in measuring order); empty means stop.

    ``state`` maps each feasible config to its objective values so far, in measuring order; ``budget_left`` is
    how many more measurements may be made. ``reference`` (the baseline config) is measured until it has
    ``confirm_repeats`` values, tied or not: the best is reported relative to it, and one unlucky measurement of
    it (a two-thread llama.cpp run that collapsed to a quarter of its speed) would make the headline's gain a
    measure of that luck. Until it has them it comes right after the leader when the budget cannot take the
    whole round; after them it queues like any tied config (least measured first), so a short budget is not
    spent on a baseline far below the leaders while a contender measured once is named.
    """
    if min_repeats < 1 or policy.max_repeats < 1 or policy.confirm_repeats < 1:
        raise ValueError("min_repeats, max_repeats and confirm_repeats must be >= 1")
    if budget_left <= 0 or not state:
        return []
    ranking = race_ranking(state, policy=policy, within=within, prefer=prefer, secondary=secondary)
    counts = {key: len(values) for key, values in state.items()}
    if ranking.separated:
        floor = max(min_repeats, policy.confirm_repeats if len(state) > 1 else 1)
        need = [ranking.best] if counts[ranking.best] < floor else []
    else:
        cap = max(policy.max_repeats, min_repeats)
        need = [key for key in ranking.tie_set if counts[key] < cap]
    if reference in counts and reference not in need and counts[reference] < policy.confirm_repeats:
        need.append(reference)
    if not need:
        return []
    if len(need) > budget_left:  # the leader, the reference, the least measured, the closest to it (highest p)
        priority = sorted(
            need,
            key=lambda k: (
                k != ranking.leader,
                k != reference or counts[k] >= policy.confirm_repeats,  # the reference's place: its confirm repeats
                counts[k],
                -ranking.p_values.get(k, 1.0),
                str(k),
            ),
        )
        need = priority[:budget_left]
    order = sorted(need, key=str)  # a stable order, so that alternating it really reverses the previous round
    round_number = min(counts[key] for key in need)  # 1 for the first re-measurement round
    return order if round_number % 2 == 1 else order[::-1]
