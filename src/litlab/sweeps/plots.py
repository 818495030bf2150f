"""Figures for sweep reports: the primary metric per configuration, and learning curves from CSV logs."""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from pathlib import Path

from litlab.sweeps.collect import Group, short


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
    fig.savefig(path, dpi=120)
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
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6))
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
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    if drawn:
        fig.suptitle("learning curves (mean over seeds)", fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    plt.close(fig)
    return drawn
