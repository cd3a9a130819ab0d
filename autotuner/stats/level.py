"""Intervals for one level's figures, from its per-request samples (one run of one (scenario, concurrency)).

These intervals describe within-run noise only: which requests happened to land in this run. Between-run noise
(drift, other load on the machine) is larger on the machines we measured and is handled when repeats of a config
are combined (``repeats.py``), which takes the within-run interval as a floor.

Which method, when:

- Smooth statistics (throughput as a ratio of sums, mean latency) use a BCa bootstrap (bias-corrected and
  accelerated, Efron 1987): it corrects the skew of ratio and mean estimators on right-skewed latencies that the
  plain percentile bootstrap undercovers, and its jackknife acceleration is valid for smooth statistics.
- Percentiles use the distribution-free order-statistic interval: ``[x_(l), x_(u)]`` with ranks from the
  binomial distribution, exact (coverage >= confidence) for any continuous distribution, heavy tails included,
  and free of resampling noise. It exists only when the sample is large enough that the quantile lies, with the
  required probability, inside the sample range (``order_statistic_min_n``: 6 requests for p50, 36 for p90, 368
  for p99 at 95%). Below that, the percentile bootstrap is the fallback, named ``bootstrap-percentile``; it
  cannot reach beyond the sample maximum, so for high percentiles of small samples it undercovers (it says how
  the observed requests vary, not where the true p99 is).
- ``max`` uses the percentile bootstrap (the jackknife, hence BCa, is inconsistent for extremes); it reads as
  "the max of another run of this many requests", not as a bound on the worst request ever.
- Proportions (error rate, share of requests over an SLO limit) use the Wilson score interval, which behaves at
  0 errors where the normal approximation collapses to [0, 0].

Bootstraps are seeded (``seed``), so the same samples always give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..units import Percentile, parse_percentile
from .distributions import binomial_cdf, normal_cdf, normal_quantile, t_quantile
from .interval import Interval, unknown

RESAMPLES = 2000
_CHUNK_CELLS = 1 << 22  # resampled values held at once (32 MiB of float64)

FloatArray = NDArray[np.float64]
Values = Sequence[float] | NDArray[np.floating[Any]] | NDArray[np.integer[Any]]  # per-request values


def _array(values: Values, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of numbers")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values: pass successful requests only")
    return array


def _check(confidence: float, resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if resamples < 100:
        raise ValueError(f"use at least 100 resamples, got {resamples}")


def _bootstrap_indices(n: int, resamples: int, seed: int) -> list[NDArray[np.intp]]:
    """Resampled request indices, ``resamples`` rows of ``n``, in chunks that bound memory."""
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_CELLS // max(n, 1))
    chunks = []
    done = 0
    while done < resamples:
        take = min(rows, resamples - done)
        chunks.append(rng.integers(0, n, size=(take, n)))
        done += take
    return chunks


def _expanded_z(n: int, confidence: float) -> float:
    """Hesterberg's (2015) expansion: the bootstrap's plug-in variance is ``(n-1)/n`` of the unbiased one and it
    ignores the t-distribution of a studentized mean, so at 12 requests a nominal 95% BCa interval covers ~88%.
    Using ``sqrt(n/(n-1)) * t_{n-1}`` in place of ``z`` restores the coverage (tested at 12 requests)."""
    tail = 1.0 - (1.0 - confidence) / 2
    return math.sqrt(n / (n - 1)) * t_quantile(tail, n - 1)


def _bca_bounds(estimate: float, boot: FloatArray, jackknife: FloatArray, confidence: float) -> tuple[float, float]:
    if float(np.ptp(boot)) == 0.0:
        return float(boot[0]), float(boot[0])
    below = np.count_nonzero(boot < estimate) + 0.5 * np.count_nonzero(boot == estimate)
    share = min(max(below / boot.size, 0.5 / boot.size), 1 - 0.5 / boot.size)
    z0 = normal_quantile(share)
    spread = jackknife.mean() - jackknife
    denominator = 6.0 * float(np.sum(spread**2)) ** 1.5
    acceleration = float(np.sum(spread**3)) / denominator if denominator > 0 else 0.0
    z_expanded = _expanded_z(jackknife.size, confidence)
    levels = []
    for z in (-z_expanded, z_expanded):
        levels.append(normal_cdf(z0 + (z0 + z) / (1 - acceleration * (z0 + z))))
    low, high = np.quantile(boot, levels)
    return float(low), float(high)


def _ratio_interval(
    numerator: FloatArray, denominator: FloatArray, scale: float, confidence: float, resamples: int, seed: int
) -> tuple[float, float, float]:
    """``scale * sum(numerator) / sum(denominator)`` and its BCa interval, requests resampled jointly (pairs)."""
    total_num, total_den = float(numerator.sum()), float(denominator.sum())
    if total_den <= 0:
        raise ValueError("the denominator sums to zero")
    estimate = scale * total_num / total_den
    boot = np.concatenate(
        [
            scale * numerator[rows].sum(axis=1) / denominator[rows].sum(axis=1)
            for rows in _bootstrap_indices(numerator.size, resamples, seed)
        ]
    )
    jackknife = scale * (total_num - numerator) / (total_den - denominator)
    low, high = _bca_bounds(estimate, boot, jackknife, confidence)
    return estimate, low, high


def throughput_interval(
    output_tokens: Values,
    e2e_latency: Values,
    concurrency: int,
    *,
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """A closed-loop level's throughput, ``concurrency * sum(tokens) / sum(e2e)``, with a BCa bootstrap interval.

    Why this estimator: genai-bench's figure divides by the run duration, which plain genai-bench quantizes to
    1 s ticks (a 12-request level lasts a few seconds, so that is tens of percent) and which includes ramp-up and
    drain, when fewer than ``concurrency`` requests are in flight. Per-request samples have no start times, but in
    a closed loop each of the ``c`` clients always has one request in flight, so by Little's law
    ``L = lambda * W`` with ``L = c``: requests/s = ``c / mean(e2e)`` and tokens/s = ``c * sum(tokens) / sum(e2e)``.

    Assumptions and bias: every client sends its next request as soon as the previous one ends. Client-side gaps
    (tokenizing, HTTP overhead outside e2e) leave fewer than ``c`` requests in flight, so the estimate is an upper
    bound of the delivered rate; ramp-up and drain are excluded, so it is the steady-state rate at concurrency
    ``c``, higher than tokens / wall-clock for short runs. Keep genai-bench's figure beside it. Failed requests
    held a slot too: pass their e2e with 0 tokens if known, otherwise the estimate is optimistic.

    Other rates: pass 1 per request for requests/s, input+output tokens for total throughput, 1 for requests
    that met every SLO and 0 otherwise for goodput. Pairs (tokens, e2e) are resampled jointly, because long
    answers take long: resampling them apart would destroy that correlation and overstate the noise.
    """
    _check(confidence, resamples)
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    tokens = _array(output_tokens, "output_tokens")
    latency = _array(e2e_latency, "e2e_latency")
    if tokens.size != latency.size:
        raise ValueError(f"{tokens.size} token counts but {latency.size} latencies")
    if np.any(latency <= 0):
        raise ValueError("e2e latencies must be > 0")
    if tokens.size < 2:
        estimate = concurrency * float(tokens.sum()) / float(latency.sum()) if tokens.size else math.nan
        return unknown(estimate, confidence, int(tokens.size), "too-few-requests")
    estimate, low, high = _ratio_interval(tokens, latency, float(concurrency), confidence, resamples, seed)
    return Interval(estimate, low, high, confidence, int(tokens.size), "bca-bootstrap(little's law)")


def mean_interval(values: Values, *, confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """The mean latency with a BCa bootstrap interval (the mean is the ratio of sums with unit denominators)."""
    _check(confidence, resamples)
    array = _array(values, "values")
    if array.size < 2:
        return unknown(float(array.mean()) if array.size else math.nan, confidence, int(array.size), "too-few-requests")
    estimate, low, high = _ratio_interval(array, np.ones_like(array), 1.0, confidence, resamples, seed)
    return Interval(estimate, low, high, confidence, int(array.size), "bca-bootstrap")


def order_statistic_ranks(n: int, q: float, confidence: float) -> tuple[int, int] | None:
    """1-based ranks ``(l, u)`` with ``P(x_(l) <= quantile_q < x_(u)) >= confidence``, equal tails; None if the
    sample is too small for either bound to exist.

    The number of samples below the true quantile is Binomial(n, q) whatever the distribution, so the coverage of
    ``[x_(l), x_(u)]`` is ``P(l <= B <= u - 1)``: the largest l with ``P(B < l) <= alpha/2`` and the smallest u
    with ``P(B >= u) <= alpha/2``.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must lie in (0, 1), got {q}")
    if n < 1:
        return None
    tail = (1.0 - confidence) / 2
    cdf = binomial_cdf(n, q)
    eps = 1e-12
    lower = int(np.count_nonzero(cdf[:n] <= tail + eps))
    upper_hits = np.flatnonzero(cdf[:n] >= 1.0 - tail - eps)
    if lower < 1 or upper_hits.size == 0:
        return None
    return lower, int(upper_hits[0]) + 1


def order_statistic_min_n(q: float, confidence: float = 0.95) -> int:
    """The fewest samples for which the distribution-free interval of the q-quantile exists (both bounds inside
    the sample): ``max(q, 1-q)**n <= (1 - confidence) / 2``. For 95%: p50 6, p90 36, p99 368."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must lie in (0, 1), got {q}")
    n = max(1, math.ceil(math.log((1 - confidence) / 2) / math.log(max(q, 1 - q))))
    while order_statistic_ranks(n, q, confidence) is None:
        n += 1
    while n > 1 and order_statistic_ranks(n - 1, q, confidence) is not None:
        n -= 1
    return n


def _percentile_bootstrap(
    array: FloatArray,
    statistic: Callable[[FloatArray], FloatArray],
    confidence: float,
    resamples: int,
    seed: int,
) -> tuple[float, float]:
    boot = np.concatenate([statistic(array[rows]) for rows in _bootstrap_indices(array.size, resamples, seed)])
    tail = normal_cdf(-_expanded_z(array.size, confidence))
    low, high = np.quantile(boot, [tail, 1 - tail])
    return float(low), float(high)


def quantile_interval(
    values: Values, q: float, *, confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """The q-quantile (linear interpolation, as genai-bench and the SLO checks compute it) with the
    distribution-free order-statistic interval when the sample allows it, else the percentile bootstrap."""
    _check(confidence, resamples)
    array = _array(values, "values")
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must lie in (0, 1), got {q}")
    if array.size < 2:
        return unknown(float(array[0]) if array.size else math.nan, confidence, int(array.size), "too-few-requests")
    estimate = float(np.quantile(array, q))
    ranks = order_statistic_ranks(array.size, q, confidence)
    if ranks is not None:
        ordered = np.sort(array)
        low, high = float(ordered[ranks[0] - 1]), float(ordered[ranks[1] - 1])
        return Interval(estimate, low, high, confidence, int(array.size), "order-statistic")
    low, high = _percentile_bootstrap(array, lambda rows: np.quantile(rows, q, axis=1), confidence, resamples, seed)
    return Interval(estimate, low, high, confidence, int(array.size), "bootstrap-percentile")


def statistic_interval(
    values: Values,
    statistic: Percentile | str,
    *,
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """The interval of an SLO statistic (``mean``, ``max``, ``pN``) of a latency's per-request values."""
    kind = parse_percentile(statistic)
    if kind.name == "mean":
        return mean_interval(values, confidence=confidence, resamples=resamples, seed=seed)
    if kind.quantile is not None and kind.quantile < 1.0:
        return quantile_interval(values, kind.quantile, confidence=confidence, resamples=resamples, seed=seed)
    _check(confidence, resamples)
    array = _array(values, "values")
    if array.size < 2:
        return unknown(float(array[0]) if array.size else math.nan, confidence, int(array.size), "too-few-requests")
    low, high = _percentile_bootstrap(array, lambda rows: rows.max(axis=1), confidence, resamples, seed)
    return Interval(float(array.max()), low, high, confidence, int(array.size), "bootstrap-percentile")


def proportion_interval(successes: int, n: int, *, confidence: float = 0.95) -> Interval:
    """A share (error rate, violation rate) with the Wilson score interval: sane at 0 of n and n of n."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Interval(math.nan, 0.0, 1.0, confidence, 0, "wilson")
    z = normal_quantile(1 - (1 - confidence) / 2)
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return Interval(share, max(0.0, centre - half), min(1.0, centre + half), confidence, n, "wilson")
