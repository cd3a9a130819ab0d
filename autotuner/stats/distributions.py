"""The few distribution functions the intervals need: normal, Student t (any real df), binomial.

Written on the standard library and numpy rather than scipy because scipy is not a dependency of the project and
these are a few dozen lines: the normal comes from ``statistics.NormalDist``; Student's t from the regularized
incomplete beta function (Lentz's continued fraction, as in Numerical Recipes) because Welch tests need
non-integer degrees of freedom; the binomial CDF is computed in log space so that thousands of requests neither
overflow nor underflow.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

_STANDARD_NORMAL = NormalDist()  # immutable


def normal_cdf(x: float) -> float:
    return _STANDARD_NORMAL.cdf(x)


def normal_quantile(p: float) -> float:
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability must lie in (0, 1), got {p}")
    return _STANDARD_NORMAL.inv_cdf(p)


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the CDF of a Beta(a, b) variable at x."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (``inf``: the normal). Exact in the far tail."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isinf(df):
        return 1.0 - normal_cdf(t) if t < 0 else normal_cdf(-t)
    tail = 0.5 * regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def t_cdf(t: float, df: float) -> float:
    return 1.0 - t_sf(t, df)


def _t_pdf(t: float, df: float) -> float:
    log_pdf = (
        math.lgamma((df + 1) / 2)
        - math.lgamma(df / 2)
        - 0.5 * math.log(df * math.pi)
        - (df + 1) / 2 * math.log1p(t * t / df)
    )
    return math.exp(log_pdf)


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t. Newton's method from the normal quantile, which lies between 0 and the
    root for p > 0.5; the CDF is concave there, so the iterates increase monotonically to the root."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability must lie in (0, 1), got {p}")
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isinf(df) or df > 1e7:
        return normal_quantile(p)
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    x = normal_quantile(p)
    upper_tail = 1.0 - p
    for _ in range(200):
        step = (t_sf(x, df) - upper_tail) / _t_pdf(x, df)  # = (p - cdf) / pdf
        x += step
        if abs(step) <= 1e-13 * max(1.0, abs(x)):
            break
    return x


def binomial_cdf(n: int, p: float) -> NDArray[np.float64]:
    """``[P(B <= k) for k in 0..n]`` for B ~ Binomial(n, p), 0 < p < 1."""
    if n < 0 or not 0.0 < p < 1.0:
        raise ValueError(f"binomial needs n >= 0 and 0 < p < 1, got n={n}, p={p}")
    k = np.arange(n + 1, dtype=np.float64)
    steps = np.log(n - k[:-1]) - np.log(k[:-1] + 1.0)  # log C(n, k+1) - log C(n, k)
    log_comb = np.concatenate(([0.0], np.cumsum(steps)))
    log_pmf = log_comb + k * math.log(p) + (n - k) * math.log1p(-p)
    cdf: NDArray[np.float64] = np.minimum(np.cumsum(np.exp(log_pmf)), 1.0)
    return cdf
