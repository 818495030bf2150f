"""Interval estimates and baseline comparisons for a study's arms (scipy does every test and distribution).

Arms that share seeds share the split and the label subset, so their per-seed differences are paired:
the comparison with the baseline is a paired t-test on the shared seeds (at least two), else Welch's
test. p-values are Holm-corrected across the arms of a study, because a study asks many questions at
once and an uncorrected 5 % test finds a "difference" in one arm of twenty by chance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8


def t_interval(values: Sequence[float], level: float = 1 - ALPHA) -> tuple[float, float]:
    """The t-interval of the mean; NaN for fewer than two values (no spread, no interval)."""
    if len(values) < 2:
        return math.nan, math.nan
    ci = stats.ttest_1samp(values, 0.0).confidence_interval(level)
    return float(ci.low), float(ci.high)


@dataclass
class Comparison:
    """An arm against the baseline: Δ = arm - baseline, its CI, the raw and Holm-corrected p-value."""

    delta: float = math.nan
    low: float = math.nan
    high: float = math.nan
    p: float = math.nan
    test: str = ""  # paired | welch | "" (too few runs)
    n: int = 0  # shared seeds (paired) or runs of the arm (welch)
    p_holm: float = math.nan

    @property
    def distinguishable(self) -> bool:
        return self.p_holm < ALPHA


def compare(arm: Mapping[str, float], baseline: Mapping[str, float]) -> Comparison:
    """``arm`` and ``baseline`` map seed -> value; paired on the shared seeds when there are two or more."""
    shared = [s for s in arm if s in baseline]
    if len(shared) >= 2:
        a, b = np.array([arm[s] for s in shared]), np.array([baseline[s] for s in shared])
        result = stats.ttest_rel(a, b)
        ci, test, n = result.confidence_interval(1 - ALPHA), "paired", len(shared)
        delta = float(np.mean(a - b))
    elif len(arm) >= 2 and len(baseline) >= 2:
        a, b = np.array(list(arm.values())), np.array(list(baseline.values()))
        result = stats.ttest_ind(a, b, equal_var=False)
        ci, test, n = result.confidence_interval(1 - ALPHA), "welch", len(arm)
        delta = float(np.mean(a) - np.mean(b))
    else:
        delta = (
            float(np.mean(list(arm.values())) - np.mean(list(baseline.values())))
            if arm and baseline
            else math.nan
        )
        return Comparison(delta=delta)
    return Comparison(delta, float(ci.low), float(ci.high), float(result.pvalue), test, n)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: the i-th smallest of m p-values is scaled by (m - i), kept monotone.
    NaN p-values (arms that could not be tested) are left out of m and stay NaN."""
    order = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def power(n: int, effect: float, sd: float, paired: bool = True) -> float:
    """Power of the two-sided t-test at ``n`` seeds per arm (noncentral t), for a true difference ``effect``."""
    if paired:
        df, noncentrality = n - 1, effect / sd * math.sqrt(n)
    else:
        df, noncentrality = 2 * n - 2, effect / sd * math.sqrt(n / 2)
    critical = stats.t.ppf(1 - ALPHA / 2, df)
    return float(stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality))


def seeds_needed(effect: float, sd: float, paired: bool = True, at_most: int = 1000) -> int | None:
    """The fewest seeds per arm that detect ``effect`` with 80 % power; None if sd is unknown or > at_most."""
    if not (sd > 0 and math.isfinite(sd)) or effect == 0:
        return None
    return next((n for n in range(2, at_most + 1) if power(n, abs(effect), sd, paired) >= POWER), None)
