"""Statistics that let the tuner name the best config with confidence, not from one lucky measurement (pure).

- ``level``: intervals of one run's figures from its per-request samples (throughput by Little's law, latency
  percentiles, means, error rates);
- ``repeats``: a config's objective over its repeats (between-repeat noise, with a prior for one repeat),
  differences between configs and relative change (regression comparison, gain over the baseline);
- ``ranking``: the best config, its tie-set and the tie-break;
- ``racing``: which configs to measure again, and when to stop.

Everything is an ``Interval``, so the SLO verdict, the tie-set and the regression comparison read the same numbers.
"""

from .interval import Interval, unknown
from .level import (
    mean_interval,
    order_statistic_min_n,
    order_statistic_ranks,
    proportion_interval,
    quantile_interval,
    statistic_interval,
    throughput_interval,
)
from .racing import CONFIRM_REPEATS, MAX_REPEATS, RacePolicy, next_repeats, race_ranking
from .ranking import Direction, Ranking, TieRule, rank, worse_p_value
from .repeats import (
    PRIOR_CV,
    PRIOR_DF,
    ConfigEstimate,
    Difference,
    config_interval,
    difference,
    estimate_config,
    pooled_cv,
    relative_change,
    relative_change_of,
    typical_cv,
)

__all__ = [
    "CONFIRM_REPEATS",
    "MAX_REPEATS",
    "PRIOR_CV",
    "PRIOR_DF",
    "ConfigEstimate",
    "Difference",
    "Direction",
    "Interval",
    "RacePolicy",
    "Ranking",
    "TieRule",
    "config_interval",
    "difference",
    "estimate_config",
    "mean_interval",
    "next_repeats",
    "pooled_cv",
    "typical_cv",
    "order_statistic_min_n",
    "order_statistic_ranks",
    "proportion_interval",
    "quantile_interval",
    "race_ranking",
    "rank",
    "relative_change",
    "relative_change_of",
    "statistic_interval",
    "throughput_interval",
    "unknown",
    "worse_p_value",
]
