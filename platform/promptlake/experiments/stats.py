"""The statistics experiments need, on numpy (a pandas dependency) with scipy optional:
bootstrap confidence intervals of a mean and of a paired mean difference, the exact sign
test (binomial), a Wilcoxon signed-rank test (scipy's when it is installed, else a normal
approximation), and Welch's t-test for the change detector of :mod:`.trends`.

Everything takes plain lists of floats and is deterministic: the bootstrap draws from a
numpy generator seeded by the caller, so a comparison gives the same interval twice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

BOOTSTRAP_SAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval (``low``/``high`` None for n < 2)."""

    estimate: float | None
    low: float | None
    high: float | None
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "n": self.n}


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def bootstrap_mean(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of the mean (numpy, resampled in chunks so that
    memory stays bounded for large experiments)."""
    import numpy as np

    n = len(values)
    if n == 0:
        return Interval(None, None, None, 0)
    data = np.asarray(values, dtype=np.float64)
    estimate = float(data.mean())
    if n == 1:
        return Interval(estimate, None, None, 1)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(samples, 2_000_000 // n))
    means = np.concatenate(
        [
            data[rng.integers(0, n, size=(min(chunk, samples - done), n))].mean(axis=1)
            for done in range(0, samples, chunk)
        ]
    )
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    # a constant sample has a degenerate interval at the estimate, not float noise around it
    if data.min() == data.max():
        low = high = estimate
    return Interval(estimate, float(low), float(high), n)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test: P(a split at least this uneven | no difference), ties
    left out. 1.0 when there are no untied pairs."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    # P(X <= k) for X ~ Binomial(n, 1/2), doubled; exact with integers
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**n)


def wilcoxon(differences: Sequence[float]) -> tuple[float, str]:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (zeros dropped) and
    the method used: scipy's exact/approximate test when scipy is installed, otherwise the
    normal approximation with tie correction."""
    nonzero = [d for d in differences if d != 0]
    if not nonzero:
        return 1.0, "none"
    try:
        from scipy.stats import wilcoxon as scipy_wilcoxon
    except ImportError:
        return _wilcoxon_normal(nonzero), "wilcoxon (normal approximation)"
    result = scipy_wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided")
    return float(result.pvalue), "wilcoxon (scipy)"


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _wilcoxon_normal(nonzero: Sequence[float]) -> float:
    n = len(nonzero)
    ranks = _ranks([abs(d) for d in nonzero])
    w_plus = sum(r for r, d in zip(ranks, nonzero, strict=True) if d > 0)
    expected = n * (n + 1) / 4
    ties: dict[float, int] = {}
    for r in ranks:
        ties[r] = ties.get(r, 0) + 1
    variance = n * (n + 1) * (2 * n + 1) / 24 - sum(t**3 - t for t in ties.values()) / 48
    if variance <= 0:
        return 1.0
    z = (w_plus - expected) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))


def normal_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean with a t-based interval (cheap: for the many points of a time series)."""
    n = len(values)
    if n == 0:
        return Interval(None, None, None, 0)
    m = sum(values) / n
    if n == 1:
        return Interval(m, None, None, 1)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    half = t_quantile(1 - (1 - confidence) / 2, n - 1) * sd / math.sqrt(n)
    return Interval(m, m - half, m + half, n)


def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t (scipy when installed; else Cornish-Fisher from the normal)."""
    try:
        from scipy.stats import t as student_t

        return float(student_t.ppf(p, df))
    except ImportError:
        z = _normal_quantile(p)
        g1 = (z**3 + z) / 4
        g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
        return z + g1 / df + g2 / df**2


def _normal_quantile(p: float) -> float:
    """Inverse of the standard normal CDF by bisection on erf (plenty for intervals)."""
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2)) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def welch_one_sided(
    before: Sequence[float], after: Sequence[float]
) -> tuple[float | None, float | None]:
    """(t, p) of Welch's test that ``after`` has a lower mean than ``before`` (one-sided).
    None when either side has fewer than two values."""
    n1, n2 = len(before), len(after)
    if n1 < 2 or n2 < 2:
        return None, None
    m1, m2 = sum(before) / n1, sum(after) / n2
    v1 = sum((v - m1) ** 2 for v in before) / (n1 - 1)
    v2 = sum((v - m2) ** 2 for v in after) / (n2 - 1)
    return welch_summary(n1, m1, v1, n2, m2, v2)


def welch_summary(
    n1: int, m1: float, v1: float, n2: int, m2: float, v2: float
) -> tuple[float | None, float | None]:
    """Welch's one-sided test (second mean lower) from counts, means and variances."""
    if n1 < 2 or n2 < 2:
        return None, None
    se2 = v1 / n1 + v2 / n2
    if se2 == 0:
        if m1 == m2:
            return None, None
        return math.copysign(math.inf, m2 - m1), 0.0 if m2 < m1 else 1.0
    t = (m2 - m1) / math.sqrt(se2)
    df = se2**2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
    return t, _t_cdf(t, df)


def pooled(groups: Sequence[tuple[int, float, float]]) -> tuple[int, float, float]:
    """(n, mean, variance) of the union of groups given as (n, mean, variance)."""
    n = sum(g[0] for g in groups)
    if n == 0:
        return 0, 0.0, 0.0
    m = sum(g[0] * g[1] for g in groups) / n
    m2 = sum((g[0] - 1) * g[2] + g[0] * (g[1] - m) ** 2 for g in groups if g[0] > 0)
    return n, m, m2 / (n - 1) if n > 1 else 0.0


def t_interval(n: int, m: float, variance: float, confidence: float = 0.95) -> Interval:
    """Mean with a t interval from summary statistics."""
    if n < 2:
        return Interval(m if n else None, None, None, n)
    half = t_quantile(1 - (1 - confidence) / 2, n - 1) * math.sqrt(max(variance, 0.0) / n)
    return Interval(m, m - half, m + half, n)


def _t_cdf(t: float, df: float) -> float:
    try:
        from scipy.stats import t as student_t

        return float(student_t.cdf(t, df))
    except ImportError:  # normal approximation, fine for the df a daily series has
        return 0.5 * math.erfc(-t / math.sqrt(2))


def wilson(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """A proportion with its Wilson score interval (sound near 0 and 1, unlike Wald's)."""
    if n == 0:
        return Interval(None, None, None, 0)
    z = _normal_quantile(1 - (1 - confidence) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n)
