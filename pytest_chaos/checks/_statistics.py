"""The statistics behind ``compare``: rank and proportion tests, effect sizes, summaries.

Pure functions on lists of numbers, no dependency (no scipy): the check ships with the
plugin and must run wherever ``pip install`` works.

- :func:`mann_whitney_u`: do the experiment's latencies tend to be larger than the
  control's? One-sided Mann-Whitney U test. Exact null distribution for small samples
  without ties, otherwise the normal approximation with tie correction and continuity
  correction (the same numbers as ``scipy.stats.mannwhitneyu(x, y,
  alternative="greater")``).
- :func:`two_proportions`: is the experiment's error rate higher than the control's?
  One-sided pooled two-proportion z-test; Fisher's exact test (one-sided) when an
  expected cell count is under 5, where the normal approximation is poor.
- Effect sizes: Cliff's delta (equal to the rank-biserial correlation of the U test),
  its conventional magnitude label, and the difference of proportions.
- :func:`summarize` and :func:`histogram`: the quantiles and the binned distribution of
  a group, for messages and report charts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MannWhitney",
    "Proportions",
    "cliffs_delta",
    "effect_label",
    "histogram",
    "mann_whitney_u",
    "normal_sf",
    "quantile",
    "summarize",
    "two_proportions",
]

#: the exact U distribution is used up to this many values per group (and no ties)
EXACT_MAX = 20


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z (the survival function)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Average ranks (1-based) of ``values``, and the sizes of the tie groups."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    ties: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        average = (i + j + 2) / 2.0  # ranks i+1 .. j+1
        for k in range(i, j + 1):
            ranks[order[k]] = average
        if j > i:
            ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def _exact_sf(u: float, n1: int, n2: int) -> float:
    """P(U >= u) under the null for samples of n1 and n2 values without ties.

    Counts the arrangements by the recurrence c(m, n, u) = c(m-1, n, u-n) + c(m, n-1, u)
    (the largest value belongs to the first sample, adding n to U, or to the second).
    """
    top = n1 * n2
    # table[n][u] for the current m, over n = 0..n2
    prev = [[1] + [0] * top for _ in range(n2 + 1)]  # m = 0: U = 0 in one way
    for _ in range(n1):  # m = 1 .. n1
        cur = [[0] * (top + 1) for _ in range(n2 + 1)]
        cur[0][0] = 1  # n = 0: U = 0
        for n in range(1, n2 + 1):
            row, left, down = cur[n], prev[n], cur[n - 1]
            for k in range(top + 1):
                row[k] = (left[k - n] if k >= n else 0) + down[k]
        prev = cur
    counts = prev[n2]
    total = math.comb(n1 + n2, n1)
    start = max(0, math.ceil(u - 1e-9))
    return sum(counts[start:]) / total


@dataclass(frozen=True)
class MannWhitney:
    """The result of a one-sided Mann-Whitney U test (is ``x`` larger than ``y``?).

    ``u`` is U of ``x`` (the number of pairs where x > y, ties counting half); ``z`` is
    None for the exact method; ``delta`` is Cliff's delta (rank-biserial correlation).
    """

    u: float
    p_value: float
    z: float | None
    method: str  # "exact" or "normal"
    delta: float
    n1: int
    n2: int


def mann_whitney_u(x: Sequence[float], y: Sequence[float], *, method: str = "auto") -> MannWhitney:
    """One-sided Mann-Whitney U test that ``x`` tends to be larger than ``y``.

    ``method``: ``"exact"`` (no ties allowed), ``"normal"`` (tie-corrected variance,
    continuity correction), or ``"auto"``: exact when both samples have at most
    :data:`EXACT_MAX` values and there are no ties, normal otherwise.
    """
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("mann_whitney_u needs at least one value in each sample")
    if method not in ("auto", "exact", "normal"):
        raise ValueError(f"method={method!r}: choose 'auto', 'exact' or 'normal'")
    ranks, ties = _ranks([*x, *y])
    u = sum(ranks[:n1]) - n1 * (n1 + 1) / 2.0
    delta = 2.0 * u / (n1 * n2) - 1.0
    if method == "auto":
        method = "exact" if not ties and max(n1, n2) <= EXACT_MAX else "normal"
    if method == "exact":
        if ties:
            raise ValueError("the exact Mann-Whitney test needs samples without ties")
        return MannWhitney(u, _exact_sf(u, n1, n2), None, "exact", delta, n1, n2)
    n = n1 + n2
    mean = n1 * n2 / 2.0
    tie_term = sum(t**3 - t for t in ties) / (n * (n - 1)) if n > 1 else 0.0
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if variance <= 0:  # every value equal: no evidence either way
        return MannWhitney(u, 1.0, 0.0, "normal", delta, n1, n2)
    z = (u - mean - 0.5) / math.sqrt(variance)
    return MannWhitney(u, normal_sf(z), z, "normal", delta, n1, n2)


def cliffs_delta(x: Sequence[float], y: Sequence[float]) -> float:
    """Cliff's delta: P(x > y) - P(x < y) over every pair, from -1 to 1."""
    if not x or not y:
        raise ValueError("cliffs_delta needs at least one value in each sample")
    greater = sum(1 for a in x for b in y if a > b)
    less = sum(1 for a in x for b in y if a < b)
    return (greater - less) / (len(x) * len(y))


def effect_label(delta: float) -> str:
    """The conventional magnitude of a Cliff's delta (Romano et al. 2006 thresholds)."""
    size = abs(delta)
    if size < 0.147:
        return "negligible"
    if size < 0.33:
        return "small"
    if size < 0.474:
        return "medium"
    return "large"


@dataclass(frozen=True)
class Proportions:
    """A one-sided test that the first group's proportion is larger than the second's.

    ``diff`` is p1 - p2; ``z`` is None when Fisher's exact test was used.
    """

    x1: int
    n1: int
    x2: int
    n2: int
    diff: float
    p_value: float
    z: float | None
    method: str  # "z", "fisher" or "none" (no variation: both 0% or both 100%)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _fisher_greater(x1: int, n1: int, x2: int, n2: int) -> float:
    """One-sided Fisher exact p-value: P(X >= x1) for X hypergeometric, margins fixed."""
    total = x1 + x2
    n = n1 + n2
    high = min(total, n1)
    log_all = _log_comb(n, total)
    p = 0.0
    for k in range(x1, high + 1):
        p += math.exp(_log_comb(n1, k) + _log_comb(n2, total - k) - log_all)
    return min(1.0, p)


def two_proportions(x1: int, n1: int, x2: int, n2: int, *, method: str = "auto") -> Proportions:
    """One-sided test that x1/n1 is larger than x2/n2.

    ``method``: ``"z"`` (pooled two-proportion z-test), ``"fisher"`` (Fisher's exact
    test), or ``"auto"``: Fisher when an expected cell count is under 5, else z.
    """
    if n1 <= 0 or n2 <= 0 or not 0 <= x1 <= n1 or not 0 <= x2 <= n2:
        raise ValueError(f"two_proportions: need 0 <= x <= n and n > 0, got {x1}/{n1}, {x2}/{n2}")
    if method not in ("auto", "z", "fisher"):
        raise ValueError(f"method={method!r}: choose 'auto', 'z' or 'fisher'")
    p1, p2 = x1 / n1, x2 / n2
    diff = p1 - p2
    total = x1 + x2
    n = n1 + n2
    if total in (0, n):
        return Proportions(x1, n1, x2, n2, diff, 1.0, None, "none")
    if method == "auto":
        expected = min(n1, n2) * min(total, n - total) / n
        method = "fisher" if expected < 5 else "z"
    if method == "fisher":
        return Proportions(x1, n1, x2, n2, diff, _fisher_greater(x1, n1, x2, n2), None, "fisher")
    pooled = total / n
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = diff / se
    return Proportions(x1, n1, x2, n2, diff, normal_sf(z), z, "z")


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by the nearest-rank method (a value that occurred).

    The same definition as ``steady_state`` uses, so a compare's p99 and a steady
    state's p99 of the same calls agree.
    """
    if not values:
        raise ValueError("quantile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


#: the quantiles every group summary carries
QUANTILES = (50, 90, 95, 99)
#: the part of a summary a check's measured numbers carry (the rest is in the histogram)
SHOWN = ("p50", "p90", "p99", "max")


def summarize(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p95, p99, max and mean of ``values`` (empty dict for no values)."""
    if not values:
        return {}
    summary = {f"p{q}": quantile(values, q) for q in QUANTILES}
    summary["max"] = max(values)
    summary["mean"] = sum(values) / len(values)
    return summary


def histogram(groups: Sequence[Sequence[float]], *, bins: int = 20) -> dict[str, Any]:
    """Counts of each group over the same ``bins`` equal-width bins spanning all values.

    Returns ``{"edges": [bins + 1 numbers], "counts": [[...] per group]}``; values equal
    to the top edge fall in the last bin.
    """
    if bins < 1:
        raise ValueError(f"bins={bins!r} must be >= 1")
    every = [v for group in groups for v in group]
    if not every:
        return {"edges": [], "counts": [[] for _ in groups]}
    low, high = min(every), max(every)
    if high <= low:
        high = low + (abs(low) * 0.01 or 1e-6)
    width = (high - low) / bins
    edges = [low + width * i for i in range(bins)] + [high]
    counts = []
    for group in groups:
        row = [0] * bins
        for v in group:
            row[min(bins - 1, int((v - low) / width))] += 1
        counts.append(row)
    return {"edges": edges, "counts": counts}
