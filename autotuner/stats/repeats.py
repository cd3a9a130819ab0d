"""A config's objective over its repeats, differences between configs, and relative change (pure).

Each repeat of a config is one measurement of its objective. On the machines we measured, the same config's
throughput varied 4-17% between repeats (median CV 7%) while the within-run bootstrap intervals were narrower:
drift and background load between runs dominate. So a config-level interval is built on the between-repeat
spread, never on the within-run interval alone:

- ``n >= 2``: a t-interval on the repeat values whose standard deviation is shrunk toward a prior,
  ``s_post^2 = (prior_df * (prior_cv * mean)^2 + (n - 1) * s^2) / (prior_df + n - 1)`` with
  ``prior_df + n - 1`` degrees of freedom (the conjugate normal / scaled-inverse-chi^2 update). Why a prior: a
  standard deviation from 2 or 3 values is itself very noisy (from 2 values, its 95% range spans a factor of
  70) and the plain t-interval then has t = 12.7 at n = 2, so a second measurement would make the interval
  wider than the first one: racing would chase noise. The machine's noise level is common to all configs, so
  it is honest prior knowledge. ``prior_df=0`` gives the textbook t-interval.
- ``n == 1``: the prior alone, ``value ± z * prior_cv * |value|``, widened to the within-run interval if that is
  wider (a run with few requests can be noisier than the machine's drift).
- The within-run intervals are also a floor for ``n >= 2``: repeats that agree by accident (a quantized run
  duration gives identical throughputs) must not claim zero uncertainty.

Assumption: repeat values are independent and roughly normal around the config's true value, with a noise level
proportional to it (constant CV). Interleaving repeats of competing configs (see racing.py) is what makes drift
hit them alike instead of biasing one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from .distributions import normal_quantile, t_quantile
from .interval import Interval

PRIOR_CV = 0.07  # median between-repeat CV of throughput measured on the CPU default (issue 12)
PRIOR_DF = 4.0  # the prior counts like 5 repeats; the data outweigh it from the 6th repeat on


@dataclass(frozen=True)
class ConfigEstimate:
    """What the repeats of one config say: mean, per-repeat noise (``sd``, with ``df`` degrees of freedom) and
    the interval. ``sd``/``df`` are what difference tests between configs need; ``interval`` is what reports show."""

    values: tuple[float, ...]
    mean: float
    sd: float  # per-repeat standard deviation used for intervals and tests (prior-shrunk, floored by within-run)
    df: float  # degrees of freedom of sd; inf when it is the prior alone (n == 1)
    interval: Interval

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def se(self) -> float:
        """Standard error of the mean."""
        return self.sd / math.sqrt(self.n)


def _within_sd(interval: Interval) -> float:
    """The standard deviation a (roughly normal) within-run interval implies."""
    z = normal_quantile(1 - (1 - interval.confidence) / 2)
    return interval.width / (2 * z)


def estimate_config(
    values: Sequence[float],
    within: Sequence[Interval] | None = None,
    *,
    confidence: float = 0.95,
    prior_cv: float = PRIOR_CV,
    prior_df: float = PRIOR_DF,
) -> ConfigEstimate:
    """Combine a config's repeat values (and optionally each repeat's within-run interval) into an estimate."""
    if not values:
        raise ValueError("a config estimate needs at least one value")
    if any(not math.isfinite(v) for v in values):
        raise ValueError("repeat values must be finite (leave infeasible repeats out)")
    if within is not None and len(within) != len(values):
        raise ValueError(f"{len(values)} values but {len(within)} within-run intervals")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if prior_cv < 0 or prior_df < 0:
        raise ValueError("prior_cv and prior_df must be >= 0")
    n = len(values)
    mean = math.fsum(values) / n
    prior_sd = prior_cv * abs(mean)
    within_sd = math.sqrt(math.fsum(_within_sd(w) ** 2 for w in within) / n) if within else 0.0
    if n == 1:
        sd, df = max(prior_sd, within_sd), math.inf
        method = f"prior-cv({prior_cv:g})" if sd == prior_sd else "within-run"
        half = normal_quantile(1 - (1 - confidence) / 2) * sd
    else:
        s = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
        s = max(s, within_sd)
        df = prior_df + n - 1
        sd = math.sqrt((prior_df * prior_sd**2 + (n - 1) * s**2) / df)
        method = "t-repeats" + (f"+prior(cv={prior_cv:g},df={prior_df:g})" if prior_df > 0 else "")
        half = t_quantile(1 - (1 - confidence) / 2, df) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    if n == 1 and within:  # the wider of the prior and the (possibly asymmetric) within-run interval
        low, high = min(low, within[0].low), max(high, within[0].high)
    interval = Interval(mean, low, high, confidence, n, method)
    return ConfigEstimate(tuple(float(v) for v in values), mean, sd, df, interval)


def pooled_cv(groups: Iterable[Sequence[float]]) -> tuple[float, float]:
    """The machine's noise level, pooled over every config measured more than once: ``(cv, degrees of freedom)``.

    Each config's relative residuals ``(v - mean) / mean`` are pooled (sum of squares over ``sum(n - 1)``), under
    the same constant-CV assumption as the prior. Two or three repeats of one config say little about its noise;
    a dozen repeats spread over several configs say a lot about the machine's, and on a loaded machine that is
    far above the 7% prior (30% was measured with other jobs sharing 2 cores). ``(nan, 0)`` when nothing was
    repeated.
    """
    squares = 0.0
    df = 0
    for values, mean in _repeated(groups):
        squares += math.fsum(((v - mean) / mean) ** 2 for v in values)
        df += len(values) - 1
    return (math.sqrt(squares / df), float(df)) if df else (math.nan, 0.0)


def _repeated(groups: Iterable[Sequence[float]]) -> Iterator[tuple[Sequence[float], float]]:
    """Each group measured more than once, with its mean (groups whose mean is 0 have no relative spread)."""
    for values in groups:
        n = len(values)
        mean = math.fsum(values) / n if n else 0.0
        if n >= 2 and mean != 0:
            yield values, mean


def typical_cv(groups: Iterable[Sequence[float]]) -> tuple[float, int]:
    """The noise level of a typical config, robust to a few erratic ones: ``(cv, configs repeated)``.

    Each config measured more than once gives a variance estimate ``s^2 / mean^2``, made median-unbiased (scaled
    by ``k / median(chi^2_k)``, ``k = n - 1``, Wilson-Hilferty); the level is the median over configs. Why not
    pool every residual (``pooled_cv``): noise is not the same for every config. On the 2-core CPU default,
    one-thread configs repeat within ~6% while two-thread ones sometimes collapse (llama.cpp's threads spin
    while anything else holds a core): pooled, the collapses set a 30% level for every config, the steady ones
    included, and the ranking cannot tell anything apart. The typical level is the prior; each config's own
    repeats then show how erratic it is (see ``noise`` in racing.py). ``(nan, 0)`` when nothing was repeated.
    """
    scaled = []
    for values, mean in _repeated(groups):
        k = len(values) - 1
        variance = math.fsum((v - mean) ** 2 for v in values) / k / mean**2
        median_chi2 = k * (1.0 - 2.0 / (9.0 * k)) ** 3
        scaled.append(variance * k / median_chi2)
    if not scaled:
        return math.nan, 0
    scaled.sort()
    middle = len(scaled) // 2
    median = scaled[middle] if len(scaled) % 2 else (scaled[middle - 1] + scaled[middle]) / 2
    return math.sqrt(median), len(scaled)


def config_interval(
    values: Sequence[float],
    within: Sequence[Interval] | None = None,
    confidence: float = 0.95,
    prior_cv: float = PRIOR_CV,
    *,
    prior_df: float = PRIOR_DF,
) -> Interval:
    """The interval of a config's objective from its repeats; see ``estimate_config`` and the module notes."""
    return estimate_config(values, within, confidence=confidence, prior_cv=prior_cv, prior_df=prior_df).interval


@dataclass(frozen=True)
class Difference:
    """``b.mean - a.mean`` with its standard error and Welch-Satterthwaite degrees of freedom."""

    estimate: float
    se: float
    df: float


def _welch_df(parts: Sequence[tuple[float, float]]) -> float:
    """Welch-Satterthwaite: ``(sum v_i)^2 / sum(v_i^2 / df_i)`` for variances ``v_i`` with ``df_i``."""
    total = math.fsum(v for v, _ in parts)
    if not math.isfinite(total):
        return math.inf
    spread = math.fsum(v * v / df for v, df in parts if math.isfinite(df) and v > 0)
    if spread == 0:
        return math.inf
    return total * total / spread


def difference(a: ConfigEstimate, b: ConfigEstimate) -> Difference:
    """Welch's comparison of two configs' means: their repeats are independent and their noise may differ."""
    va, vb = a.se**2, b.se**2
    return Difference(b.mean - a.mean, math.sqrt(va + vb), _welch_df([(va, a.df), (vb, b.df)]))


def relative_change(
    a_values: Sequence[float],
    b_values: Sequence[float],
    *,
    within_a: Sequence[Interval] | None = None,
    within_b: Sequence[Interval] | None = None,
    confidence: float = 0.95,
    prior_cv: float = PRIOR_CV,
    prior_df: float = PRIOR_DF,
) -> Interval:
    """The relative change ``(b - a) / a`` of b (e.g. this run, a candidate) against a (the baseline).

    Computed on the log ratio: ``log(mean_b / mean_a) ± t * sqrt(cv_a^2/n_a + cv_b^2/n_b)`` (delta method),
    back-transformed, so the interval is asymmetric as ratios are, and never crosses -100%. The per-config
    noise is the same prior-shrunk between-repeat noise as ``config_interval`` uses (Welch-Satterthwaite
    degrees of freedom), so the regression verdict, the gain over the baseline and the tie-set agree.

    Why not a bootstrap over repeats: with the 1-5 repeats a config gets, a bootstrap has at most 126 distinct
    resamples, gives a zero-width interval for one repeat, and undercovers badly; between-run drift, not which
    requests landed in a run, is the noise that matters, so a bootstrap over per-request samples alone would be
    overconfident. Per-request information enters through ``within_a``/``within_b`` (a floor on the noise).
    Requires positive values (throughputs, latencies).
    """
    a = estimate_config(a_values, within_a, confidence=confidence, prior_cv=prior_cv, prior_df=prior_df)
    b = estimate_config(b_values, within_b, confidence=confidence, prior_cv=prior_cv, prior_df=prior_df)
    return relative_change_of(a, b, confidence=confidence)


def relative_change_of(a: ConfigEstimate, b: ConfigEstimate, *, confidence: float = 0.95) -> Interval:
    """``relative_change`` from two estimates already made (see there)."""
    if a.mean <= 0 or b.mean <= 0:
        raise ValueError("relative change needs positive means")
    va, vb = (a.se / a.mean) ** 2, (b.se / b.mean) ** 2
    se = math.sqrt(va + vb)
    df = _welch_df([(va, a.df), (vb, b.df)])
    log_ratio = math.log(b.mean / a.mean)
    half = t_quantile(1 - (1 - confidence) / 2, df) * se
    return Interval(
        b.mean / a.mean - 1,
        math.expm1(log_ratio - half),
        math.expm1(log_ratio + half),
        confidence,
        a.n + b.n,
        "log-ratio-t(welch)",
    )
