"""Turn a sweep dir into results.csv, results.md, a metric plot and learning curves.

One row per configuration (the swept overrides other than the seed), metrics as mean ± std over the
completed seeds, with the number of seeds, failures and missing jobs shown, so a partly finished or
partly failed sweep still gives an honest table.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from litlab.sweeps.collect import SEED_KEY, Group, Job, group_jobs, load_sweep, short, swept_keys
from litlab.sweeps.plots import plot_curves, plot_metric

DEFAULT_METRICS = ("test/acc", "val/acc_best", "train/acc", "gap", "wall_time_s")
PERCENT = ("acc", "gap")  # metrics shown in % in the markdown table


def fmt(metric: str, mean: float, std: float, n: int) -> str:
    if math.isnan(mean):
        return "—"
    scale = 100.0 if any(p in metric for p in PERCENT) else 1.0
    digits = 2 if scale == 100.0 or abs(mean) < 100 else 0
    return f"{scale * mean:.{digits}f}" + (f" ± {scale * std:.{digits}f}" if n > 1 else "")


def markdown(
    sweep_dir: Path,
    jobs: list[Job],
    groups: list[Group],
    keys: list[str],
    metrics: list[str],
    figures: list[str],
) -> str:
    counts = {
        s: sum(j.status == s for j in jobs) for s in ("completed", "failed", "unfinished", "not started")
    }
    fixed = sorted({f"{k}={v}" for j in jobs for k, v in j.params.items() if k not in keys and k != SEED_KEY})
    lines = [
        f"# Sweep report: `{sweep_dir.name}`",
        "",
        f"{len(jobs)} jobs: {counts['completed']} completed, {counts['failed']} failed, "
        f"{counts['unfinished']} unfinished, {counts['not started']} not started.",
    ]
    if fixed:
        lines.append(f"Common overrides: `{' '.join(fixed)}`.")
    lines += [
        "Accuracies and the train-test gap (final train accuracy minus test accuracy) in %, "
        "mean ± std over the completed seeds.",
        "",
    ]
    header = [*keys, "seeds", "failed", "missing", *metrics]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group in groups:
        n = group.count("completed")
        cells = [
            *(short(v) for v in group.params.values()),
            str(n),
            str(group.count("failed")),
            str(group.count("unfinished", "not started")),
        ]
        cells += [fmt(m, *group.mean_std(m), len(group.values(m))) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    problems = [j for j in jobs if j.status != "completed"]
    if problems:
        lines += ["", "## Failed and missing jobs", ""]
        for job in problems:
            where = f"`{job.path.name}` " if job.path else ""
            detail = (
                job.error.splitlines()[0]
                if job.error
                else {
                    "unfinished": "started, no metrics.json (killed or still running)",
                    "not started": "no job dir yet",
                }.get(job.status, "")
            )
            params = job.params
            shown = " ".join(f"{k}={params[k]}" for k in [*keys, SEED_KEY] if k in params)
            lines.append(f"- {where}{job.status}: `{shown or ' '.join(job.overrides)}` — {detail}")
        lines += ["", "Rerun the same command with `resume=true` (same `hydra.sweep.dir`) to run only these."]
    lines += [""] + [f"![{name}]({name})" for name in figures]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, jobs: list[Job], keys: list[str]) -> None:
    metric_names = sorted({m for j in jobs for m in j.metrics})
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["job", "status", *keys, *([SEED_KEY] if SEED_KEY not in keys else []), *metric_names, "error"]
        )
        for job in jobs:
            params = job.params
            writer.writerow(
                [
                    job.path.name if job.path else "",
                    job.status,
                    *(params.get(k, "") for k in keys),
                    *([params.get(SEED_KEY, "")] if SEED_KEY not in keys else []),
                    *(job.metrics.get(m, "") for m in metric_names),
                    job.error.splitlines()[0] if job.error else "",
                ]
            )


def write_report(
    sweep_dir: Path,
    out_dir: Path | None = None,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    primary: str = "test/acc",
    curves: int = 3,
) -> Path:
    """Write the four outputs into ``out_dir`` (default: the sweep dir); returns results.md."""
    out_dir = out_dir or sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = load_sweep(sweep_dir)
    keys = [k for k in swept_keys(jobs) if k != SEED_KEY]
    groups = group_jobs(jobs, keys)
    shown = [m for m in metrics if any(m in j.metrics for j in jobs)] or [primary]
    write_csv(out_dir / "results.csv", jobs, keys)
    figures = []
    if plot_metric(out_dir / "results.png", groups, keys, primary):
        figures.append("results.png")
    ranked = sorted((g for g in groups if g.values(primary)), key=lambda g: -g.mean_std(primary)[0])
    if curves and plot_curves(out_dir / "curves.png", ranked[:curves]):
        figures.append("curves.png")
    path = out_dir / "results.md"
    path.write_text(markdown(sweep_dir, jobs, groups, keys, shown, figures))
    return path
