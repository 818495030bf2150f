"""Turn a sweep dir into results.md, results.tex, results.csv (one row per job), summary.csv (one row per
configuration) and figures, each as PNG and PDF: results (dot-and-whisker, 95 % CIs), trend (against a
numeric swept key) and curves (learning curves).

One row per configuration (the swept overrides other than the seed and the k-fold fold). The primary metric gets n,
mean ± std, a 95 % t-interval, and, when the study names a baseline arm, Δ vs the baseline with its CI
and a Holm-corrected p-value (litlab.sweeps.summary); failed and missing jobs are counted, so a partly
finished or partly failed sweep still gives an honest table.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from omegaconf import OmegaConf

from litlab.sweeps.collect import (
    REPLICATE_KEYS,
    Group,
    Job,
    group_jobs,
    load_sweep,
    mixed_commits,
    public,
    swept_keys,
)
from litlab.sweeps.latex import write_latex, write_summary_csv
from litlab.sweeps.plots import numeric_keys, plot_arms, plot_curves, plot_metric
from litlab.sweeps.summary import Summary, parse_baseline, summarise
from litlab.sweeps.tables import legend, markdown_table, table_rows

DEFAULT_METRICS = ("test/acc", "val/acc_best", "train/acc", "gap", "wall_time_s")


def markdown(
    sweep_dir: Path,
    jobs: list[Job],
    groups: list[Group],
    keys: list[str],
    metrics: list[str],
    figures: list[str],
    summary: Summary,
) -> str:
    counts = {
        s: sum(j.status == s for j in jobs) for s in ("completed", "failed", "unfinished", "not started")
    }
    fixed = sorted(
        {public(k, v) for j in jobs for k, v in j.params.items() if k not in keys and k not in REPLICATE_KEYS}
    )
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
        "mean ± std over the completed seeds (and k-fold folds).",
        *legend(summary),
        "",
    ]
    header, rows, best = table_rows(summary, groups, keys, metrics)
    lines += markdown_table(header, rows, best, header.index(f"{summary.metric} (mean ± std)"))
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
            shown = " ".join(public(k, params[k]) for k in [*keys, *REPLICATE_KEYS] if k in params)
            lines.append(f"- {where}{job.status}: `{shown}` — {detail}")
        lines += ["", "Rerun the same command with `resume=true` (same `hydra.sweep.dir`) to run only these."]
    lines += [""] + [f"![{name}]({name})" for name in figures]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, jobs: list[Job], keys: list[str]) -> None:
    """The tidy per-run table: one row per job, its swept overrides, seed, all its overrides (machine
    paths replaced), every final metric and the error."""
    metric_names = sorted({m for j in jobs for m in j.metrics})
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        replicate = [k for k in REPLICATE_KEYS if k == "seed" or any(k in j.params for j in jobs)]
        writer.writerow(["job", "status", *keys, *replicate, "overrides", *metric_names, "error"])
        for job in jobs:
            params = job.params
            writer.writerow(
                [
                    job.path.name if job.path else "",
                    job.status,
                    *(params.get(k, "") for k in keys),
                    *(params.get(k, "") for k in replicate),
                    " ".join(public(k, v) for k, v in params.items()),
                    *(job.metrics.get(m, "") for m in metric_names),
                    job.error.splitlines()[0] if job.error else "",
                ]
            )


def study_baseline(sweep_dir: Path) -> dict[str, str]:
    """The ``baseline`` a study config put into the sweep's composed config (multirun.yaml)."""
    path = sweep_dir / "multirun.yaml"
    return parse_baseline(OmegaConf.load(path).get("baseline")) if path.exists() else {}


def write_report(
    sweep_dir: Path,
    out_dir: Path | None = None,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    primary: str = "test/acc",
    curves: int = 3,
    baseline: dict[str, str] | None = None,
) -> Path:
    """Write the outputs into ``out_dir`` (default: the sweep dir); returns results.md. ``baseline``
    (key -> value) defaults to the study's own, read from multirun.yaml."""
    out_dir = out_dir or sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = load_sweep(sweep_dir)
    keys = [k for k in swept_keys(jobs) if k not in REPLICATE_KEYS]
    groups = group_jobs(jobs, keys)
    shown = [m for m in metrics if any(m in j.metrics for j in jobs)] or [primary]
    if primary not in shown:
        shown.insert(0, primary)
    summary = summarise(groups, primary, study_baseline(sweep_dir) if baseline is None else baseline)
    write_csv(out_dir / "results.csv", jobs, keys)
    write_summary_csv(out_dir / "summary.csv", summary, groups, shown)
    write_latex(out_dir / "results.tex", summary, groups, keys, shown)
    figures = []
    if plot_arms(out_dir / "results.png", summary):
        figures.append("results.png")
    if numeric_keys(groups, keys, primary) and plot_metric(out_dir / "trend.png", groups, keys, primary):
        figures.append("trend.png")
    ranked = sorted((g for g in groups if g.values(primary)), key=lambda g: -g.mean_std(primary)[0])
    if curves and plot_curves(out_dir / "curves.png", ranked[:curves]):
        figures.append("curves.png")
    text = markdown(sweep_dir, jobs, groups, keys, shown, figures, summary)
    if warning := mixed_commits(jobs):
        print(f"litlab: {warning}", file=sys.stderr)
        title, rest = text.split("\n", 1)
        text = f"{title}\n\n> {warning.capitalize()}.\n{rest}"
    path = out_dir / "results.md"
    path.write_text(text)
    return path
