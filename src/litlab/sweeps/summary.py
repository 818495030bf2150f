"""A study's arms on its primary metric: n, mean ± std, 95 % CI, Δ vs the named baseline, Holm p, power.

The baseline is named by the study (``baseline: regulariser=none`` in conf/ablation/<study>.yaml, saved
into the sweep's multirun.yaml). It may fix only some swept keys: each arm is then compared with the
baseline arm that agrees with it on the others (``model.activation=relu`` at the same depth).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from omegaconf import OmegaConf

from litlab.sweeps.collect import Group, replicate_id
from litlab.sweeps.stats import Comparison, compare, holm, seeds_needed, t_interval

LOWER_IS_BETTER = ("loss", "time", "error", "gap", "perplexity")
PERCENT = ("acc", "gap")  # metrics shown in points (%)


def scale(metric: str) -> float:
    return 100.0 if any(p in metric for p in PERCENT) else 1.0


def higher_is_better(metric: str) -> bool:
    return not any(word in metric for word in LOWER_IS_BETTER)


def parse_baseline(value: object) -> dict[str, str]:
    """``"key=value"`` or a mapping ``{key: value}``; empty when the study names none."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        key, sep, rest = value.partition("=")
        if not sep:
            raise ValueError(f"baseline={value!r}: write it as key=value, e.g. regulariser=none")
        return {key.strip(): rest.strip()}
    container = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    assert isinstance(container, Mapping), f"baseline must be key=value or a mapping, got {value!r}"
    return {str(k): str(v) for k, v in container.items()}


def per_seed(group: Group, metric: str) -> dict[str, float]:
    return {
        replicate_id(job, str(i)): job.metrics[metric]
        for i, job in enumerate(group.jobs)
        if job.status == "completed" and metric in job.metrics
    }


@dataclass
class Arm:
    group: Group
    n: int
    mean: float
    std: float
    low: float
    high: float
    is_baseline: bool = False
    comparison: Comparison | None = None
    best: bool = False


@dataclass
class Summary:
    metric: str
    baseline: dict[str, str]
    arms: list[Arm] = field(default_factory=list)
    power_hint: str = ""

    @property
    def has_baseline(self) -> bool:
        return any(arm.is_baseline for arm in self.arms)


def baseline_of(group: Group, groups: list[Group], baseline: dict[str, str]) -> Group | None:
    wanted = {**group.params, **baseline}
    return next((g for g in groups if g.params == wanted), None)


def summarise(
    groups: list[Group], metric: str, baseline: dict[str, str], effect_points: float = 0.5
) -> Summary:
    summary = Summary(metric, baseline)
    usable = bool(baseline) and all(k in (groups[0].params if groups else {}) for k in baseline)
    diffs_sd: list[float] = []
    for group in groups:
        values = group.values(metric)
        mean = statistics.fmean(values) if values else math.nan
        std = statistics.stdev(values) if len(values) > 1 else math.nan
        arm = Arm(group, len(values), mean, std, *t_interval(values))
        base = baseline_of(group, groups, baseline) if usable else None
        arm.is_baseline = base is group
        if base is not None and not arm.is_baseline:
            mine, theirs = per_seed(group, metric), per_seed(base, metric)
            arm.comparison = compare(mine, theirs)
            shared = [s for s in mine if s in theirs]
            if len(shared) >= 2:
                diffs_sd.append(float(np.std([mine[s] - theirs[s] for s in shared], ddof=1)))
        summary.arms.append(arm)
    tested = [arm.comparison for arm in summary.arms if arm.comparison is not None]
    for comparison, p in zip(tested, holm([c.p for c in tested]), strict=True):
        comparison.p_holm = p
    ranked = [a for a in summary.arms if not math.isnan(a.mean)]
    if ranked:
        sign = 1.0 if higher_is_better(metric) else -1.0
        max(ranked, key=lambda a: sign * a.mean).best = True
    summary.power_hint = power_hint(summary, diffs_sd, effect_points)
    return summary


def power_hint(summary: Summary, diffs_sd: list[float], effect_points: float) -> str:
    """Seeds per arm for 80 % power at Δ = ``effect_points`` (in the table's units), from the spread seen."""
    unit = scale(summary.metric)
    paired = bool(diffs_sd)
    spreads = diffs_sd or [a.std for a in summary.arms if math.isfinite(a.std)]
    if not spreads:
        return ""
    sd = statistics.median(spreads)
    needed = seeds_needed(effect_points / unit, sd, paired=paired)
    seeds = max((a.n for a in summary.arms), default=0)
    what = "per-seed differences vs the baseline" if paired else "seeds within an arm"
    units = " points" if unit == 100.0 else ""
    count = f"{needed} seeds per arm" if needed else "more than 1000 seeds per arm"
    return (
        f"Power: with the median sd of {what} ({unit * sd:.2f}{units}), {count} detect "
        f"Δ = {effect_points:g}{units} at 80 % power ({'paired' if paired else 'Welch'} t-test, "
        f"α = 0.05); this study has {seeds}."
    )
