"""Figures for sweep reports: the primary metric per configuration, and learning curves from CSV logs."""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from pathlib import Path

from litlab.sweeps.collect import Group, short
from litlab.sweeps.summary import Summary, scale

COLUMN = 3.4  # inches: one column of a two-column paper; fonts stay legible at 100 %


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> None:
    """PNG for the README, PDF (vector) for the paper, side by side."""
    fig.savefig(path.with_suffix(".png"), dpi=200, bbox_inches="tight")
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight")


def plot_arms(path: Path, summary: Summary) -> bool:
    """Dot-and-whisker: one row per arm (labels never overlap), mean with its 95 % CI, the baseline's
    mean as a dashed line, the value axis fitted to the data (not forced to 0), the best arm filled."""
    arms = [a for a in summary.arms if not math.isnan(a.mean)]
    if not arms:
        return False
    plt = _pyplot()
    unit = scale(summary.metric)
    fig, ax = plt.subplots(figsize=(COLUMN, 0.28 * len(arms) + 0.9))
    for y, arm in enumerate(arms):
        low, high = (arm.low, arm.high) if math.isfinite(arm.low) else (arm.mean, arm.mean)
        colour = "tab:red" if arm.is_baseline else "tab:blue"
        ax.errorbar(
            unit * arm.mean,
            y,
            xerr=[[unit * (arm.mean - low)], [unit * (high - arm.mean)]],
            fmt="o",
            color=colour,
            mfc=colour if arm.best else "white",
            ms=4,
            capsize=2,
            lw=1,
        )
    base = next((a for a in arms if a.is_baseline), None)
    if base is not None and len(summary.baseline) == len(base.group.params):
        ax.axvline(unit * base.mean, color="tab:red", ls="--", lw=0.8, label="baseline")
        ax.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False)  # above the axes
    ax.set_yticks(range(len(arms)), [label(a.group.params) for a in arms], fontsize=7)
    ax.invert_yaxis()  # the table's order, top to bottom
    ax.tick_params(axis="x", labelsize=7)
    units = " (%)" if unit == 100.0 else ""
    ax.set_xlabel(f"{summary.metric}{units}, mean and 95 % CI", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    save(fig, path)
    plt.close(fig)
    return True


def label(params: dict[str, str], skip: str | None = None, sep: str = ", ") -> str:
    return sep.join(f"{k.split('.')[-1]}={short(v)}" for k, v in params.items() if k != skip) or "all"


def grouped_bars(ax, groups: list[Group], keys: list[str], metric: str) -> None:
    """Two categorical keys: the one with more values on the x axis, one bar colour per value of the other."""
    x_key, series_key = sorted(keys, key=lambda k: -len({g.params[k] for g in groups}))
    xs = list(dict.fromkeys(g.params[x_key] for g in groups))
    series = list(dict.fromkeys(g.params[series_key] for g in groups))
    width = 0.8 / len(series)
    for i, value in enumerate(series):
        members = {g.params[x_key]: g for g in groups if g.params[series_key] == value}
        stats = [members[x].mean_std(metric) if x in members else (math.nan, 0.0) for x in xs]
        positions = [j + (i - (len(series) - 1) / 2) * width for j in range(len(xs))]
        ax.bar(
            positions,
            [m for m, _ in stats],
            width,
            yerr=[s for _, s in stats],
            capsize=2,
            label=f"{series_key.split('.')[-1]}={short(value)}",
        )
    ax.set_xticks(range(len(xs)), [short(x) for x in xs], rotation=30, ha="right", fontsize=8)
    ax.set_xlabel(x_key)
    ax.legend(fontsize=7)


def numeric_keys(groups: list[Group], keys: list[str], metric: str) -> list[str]:
    """Swept keys whose every value is a number (a learning rate, a width): worth a trend line."""
    groups = [g for g in groups if g.values(metric)]
    return [k for k in keys if groups and all(_number(g.params[k]) is not None for g in groups)]


def plot_metric(path: Path, groups: list[Group], keys: list[str], metric: str) -> bool:
    """Lines with error bars against a numeric swept parameter (one line per value of the others), bars
    with error bars for categorical sweeps. Returns False when nothing completed."""
    groups = [g for g in groups if g.values(metric)]
    if not groups:
        return False
    plt = _pyplot()
    numeric = [k for k in keys if all(_number(g.params[k]) is not None for g in groups)]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(groups) + 2), 4.2))
    if numeric and len(keys) <= 2:
        x_key = numeric[-1]
        lines: dict[str, list[Group]] = defaultdict(list)
        for group in groups:
            lines[label(group.params, skip=x_key)].append(group)
        for name, members in lines.items():
            members.sort(key=lambda g: _number(g.params[x_key]))
            stats = [g.mean_std(metric) for g in members]
            ax.errorbar(
                [_number(g.params[x_key]) for g in members],
                [m for m, _ in stats],
                yerr=[s for _, s in stats],
                marker="o",
                capsize=3,
                label=name if len(lines) > 1 else None,
            )
        xs = [_number(g.params[x_key]) for g in groups]
        if min(xs) > 0 and max(xs) / min(xs) >= 20:
            ax.set_xscale("log")
        ax.set_xlabel(x_key)
        if len(lines) > 1:
            ax.legend(fontsize=8)
    elif len(keys) == 2:
        grouped_bars(ax, groups, keys, metric)
    else:
        stats = [g.mean_std(metric) for g in groups]
        ax.bar(
            range(len(groups)), [m for m, _ in stats], yerr=[s for _, s in stats], capsize=4, color="tab:blue"
        )
        ax.set_xticks(range(len(groups)), [label(g.params, sep="\n") for g in groups], fontsize=7)
    ax.set_ylabel(f"{metric} (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, path)
    plt.close(fig)
    return True


def read_curves(job_dir: Path) -> dict[str, dict[int, float]]:
    """Per-epoch series from a job's Lightning CSV log (csv/metrics.csv): {metric: {epoch: value}}."""
    logs = sorted(job_dir.glob("**/metrics.csv"))
    series: dict[str, dict[int, float]] = defaultdict(dict)
    if not logs:
        return series
    with logs[-1].open() as handle:
        for row in csv.DictReader(handle):
            epoch = _number(row.get("epoch", ""))
            for key, text in row.items():
                if (
                    epoch is not None
                    and key not in ("epoch", "step")
                    and (value := _number(text or "")) is not None
                ):
                    series[key][int(epoch)] = value
    return series


def plot_curves(path: Path, groups: list[Group], panels: tuple[str, ...] = ("val/acc", "train/loss")) -> bool:
    """Mean learning curves over seeds of the given configurations."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(COLUMN * len(panels) / 1.3, 2.6))
    drawn = False
    for group in groups:
        runs = [read_curves(j.path) for j in group.jobs if j.status == "completed" and j.path]
        for ax, metric in zip(axes, panels, strict=True):
            epochs = sorted({e for run in runs for e in run.get(metric, {})})
            if not epochs:
                continue
            means = [statistics.fmean([r[metric][e] for r in runs if e in r.get(metric, {})]) for e in epochs]
            ax.plot([e + 1 for e in epochs], means, marker=".", label=label(group.params))
            drawn = True
    for ax, metric in zip(axes, panels, strict=True):
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel(metric, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if drawn:  # one legend for both panels, below them: every arm, none hidden behind a curve
        fig.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2)
        fig.suptitle("learning curves (mean over seeds)", fontsize=9)
        fig.tight_layout()
        save(fig, path)
    plt.close(fig)
    return drawn
