"""The study table as Markdown rows: the primary metric with its interval estimates, then the others.

Cells are built once (``table_rows``) so that the Markdown table, results.tex and summary.csv say the same.
"""

from __future__ import annotations

import math

from litlab.sweeps.collect import Group, short
from litlab.sweeps.summary import Arm, Summary, scale

NS = "n.s."  # not distinguishable from the baseline (Holm-corrected p >= 0.05)


def number(metric: str, value: float) -> str:
    if math.isnan(value):
        return "—"
    unit = scale(metric)
    digits = 2 if unit == 100.0 or abs(value) < 100 else 0
    return f"{unit * value:.{digits}f}"


def signed(metric: str, value: float) -> str:
    text = number(metric, value)
    return text if text.startswith("-") or text == "—" else f"+{text}"


def fmt(metric: str, mean: float, std: float, n: int) -> str:
    if math.isnan(mean):
        return "—"
    return number(metric, mean) + (f" ± {number(metric, std)}" if n > 1 else "")


def interval(metric: str, low: float, high: float) -> str:
    return "—" if math.isnan(low) else f"[{number(metric, low)}, {number(metric, high)}]"


def p_value(p: float) -> str:
    return "—" if math.isnan(p) else ("<0.001" if p < 0.001 else f"{p:.3f}")


def delta_cells(arm: Arm, metric: str) -> tuple[str, str]:
    """Δ vs the baseline with its CI, and the Holm p-value marked n.s. when not distinguishable."""
    if arm.is_baseline:
        return "baseline", "—"
    c = arm.comparison
    if c is None:
        return "—", "—"
    delta = signed(metric, c.delta) + (f" {interval(metric, c.low, c.high)}" if c.test else "")
    if not c.test:
        return delta, "—"
    return delta, p_value(c.p_holm) + ("" if c.distinguishable else f" ({NS})")


def show_counts(groups: list[Group]) -> bool:
    """The failed / missing columns only carry something when a job did not complete."""
    return any(g.count("completed") < len(g.jobs) for g in groups)


def table_rows(
    summary: Summary, groups: list[Group], keys: list[str], metrics: list[str]
) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, cells and the index of the best row (the primary mean is shown bold there)."""
    primary = summary.metric
    counts = show_counts(groups)
    header = [*keys, "n", *(["failed", "missing"] if counts else []), f"{primary} (mean ± std)", "95 % CI"]
    if summary.has_baseline:
        header += ["Δ vs baseline [95 % CI]", "p (Holm)"]
    others = [m for m in metrics if m != primary]
    header += others
    rows, best = [], []
    for i, (group, arm) in enumerate(zip(groups, summary.arms, strict=True)):
        cells = [*(short(v) for v in group.params.values()), str(group.count("completed"))]
        if counts:
            cells += [str(group.count("failed")), str(group.count("unfinished", "not started"))]
        cells += [fmt(primary, arm.mean, arm.std, arm.n), interval(primary, arm.low, arm.high)]
        if summary.has_baseline:
            cells += list(delta_cells(arm, primary))
        cells += [fmt(m, *group.mean_std(m), len(group.values(m))) for m in others]
        rows.append(cells)
        if arm.best:
            best.append(i)
    return header, rows, best


def markdown_table(header: list[str], rows: list[list[str]], best: list[int], bold_col: int) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, cells in enumerate(rows):
        cells = list(cells)
        if i in best:
            mean, _, rest = cells[bold_col].partition(" ± ")
            cells[bold_col] = f"**{mean}**" + (f" ± {rest}" if rest else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def legend(summary: Summary) -> list[str]:
    """What the columns mean, in one paragraph under the table's intro."""
    text = f"n: completed runs (seeds, or k-fold folds). 95 % CI: t-interval of the mean. The best {summary.metric} is in bold."
    if summary.has_baseline:
        base = " ".join(f"{k}={v}" for k, v in summary.baseline.items())
        text += (
            f" Δ: arm minus the baseline (`{base}`), with its 95 % CI, from a paired t-test on the "
            "per-seed differences when the arms share seeds (else Welch's t-test); p-values are "
            f"Holm-corrected across the arms; {NS}: not distinguishable from the baseline at 5 %."
        )
    elif summary.baseline:
        text += f" The baseline {summary.baseline} is not an arm of this sweep: no Δ column."
    lines = [text]
    if summary.power_hint:
        lines += ["", summary.power_hint]
    return lines
