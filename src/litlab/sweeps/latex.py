"""Paper outputs of a study table: results.tex (pandas Styler, booktabs) and summary.csv (one row per arm).

results.tex holds the same cells as the Markdown table, typeset: ± in math mode, the best mean in bold,
booktabs rules; ``\\input{results.tex}`` needs ``\\usepackage{booktabs}``. summary.csv holds the
unrounded numbers behind it, for plots and further tests.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from litlab.sweeps.collect import Group
from litlab.sweeps.summary import Summary
from litlab.sweeps.tables import table_rows

MATH = {"±": r"$\pm$", "Δ": r"$\Delta$", "<0.001": r"$<$0.001"}  # text mode has no Δ, OT1 no <


def write_latex(
    path: Path, summary: Summary, groups: list[Group], keys: list[str], metrics: list[str]
) -> None:
    header, rows, best = table_rows(summary, groups, keys, metrics)
    bold_col = header.index(f"{summary.metric} (mean ± std)")
    frame = pd.DataFrame(rows, columns=header)
    bold = pd.DataFrame("", index=frame.index, columns=frame.columns)
    bold.iloc[best, bold_col] = "font-weight: bold;"
    styler = (
        frame.style.hide(axis="index")
        .format(escape="latex")
        .format_index(escape="latex", axis=1)
        .apply(lambda _: bold, axis=None)
    )
    latex = styler.to_latex(
        hrules=True,  # \toprule, \midrule, \bottomrule (booktabs)
        convert_css=True,  # font-weight: bold -> \bfseries
        column_format="l" * len(keys) + "r" * (len(header) - len(keys)),
        caption=f"{latex_text(summary.metric)}: mean ± std over seeds, 95 \\% CI of the mean"
        + ("; Δ vs the baseline, Holm-corrected p." if summary.has_baseline else "."),
        position="t",
    )
    for symbol, tex in MATH.items():
        latex = latex.replace(symbol, tex)
    path.write_text(latex)


def latex_text(text: str) -> str:
    return text.replace("_", r"\_").replace("%", r"\%")


def write_summary_csv(path: Path, summary: Summary, groups: list[Group], metrics: list[str]) -> None:
    """One row per arm, unrounded: the primary metric's statistics, then mean and std of the others."""
    records = []
    for group, arm in zip(groups, summary.arms, strict=True):
        c = arm.comparison
        record: dict[str, object] = {
            **group.params,
            "n": arm.n,
            "failed": group.count("failed"),
            "missing": group.count("unfinished", "not started"),
            "metric": summary.metric,
            "mean": arm.mean,
            "std": arm.std,
            "ci_low": arm.low,
            "ci_high": arm.high,
            "baseline": arm.is_baseline,
            "delta": c.delta if c else math.nan,
            "delta_ci_low": c.low if c else math.nan,
            "delta_ci_high": c.high if c else math.nan,
            "test": c.test if c else "",
            "p": c.p if c else math.nan,
            "p_holm": c.p_holm if c else math.nan,
            "distinguishable": c.distinguishable if c and c.test else "",
            "best": arm.best,
        }
        for metric in metrics:
            if metric != summary.metric:
                record[f"{metric} mean"], record[f"{metric} std"] = group.mean_std(metric)
        records.append(record)
    pd.DataFrame.from_records(records).to_csv(path, index=False)
