"""Does transfer pay? A timm backbone pretrained on CIFAR-10 classes 0-4, fine-tuned on classes 5-9
from a small label budget, against the same backbone trained from scratch on the same data."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from runner import ROOT, train

from litlab.sweeps.stats import t_interval

TITLE = "Transfer learning with timm (CIFAR-10 classes 0-4 -> 5-9)"
SEEDS = (0, 1, 2, 3, 4)  # 3 seeds left the +5 claim inside its CI; 5 decide it
BUDGETS = {100: 30, 500: 8}  # labels per class -> epochs (the same for both arms)
TARGET_GAIN = 5.0  # accuracy points at 100 labels per class


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.2f}"


def verdict(gains: list[float]) -> str:
    """The claim judged by the 95 % CI of the mean gain, not by the mean alone."""
    low, high = t_interval(gains)
    if low >= TARGET_GAIN:
        return f"≥ +{TARGET_GAIN:.0f}: shown (CI above it)"
    if high < TARGET_GAIN:
        return f"≥ +{TARGET_GAIN:.0f}: refuted (CI below it)"
    return f"≥ +{TARGET_GAIN:.0f}: not shown (CI contains it)"


def run(data_dir: Path) -> str:
    start = time.perf_counter()
    logs = ROOT / "logs" / "results" / "transfer"
    common = [f"paths.data_dir={data_dir}", "logger=csv"]
    source = train(["experiment=transfer_source", *common], logs / "source")
    ckpt = source["best"]["ckpt_path"]
    rows = [
        "| labels / class | epochs | from scratch (test acc %) | fine-tuned (test acc %) | gain (points) "
        "| gain, 95 % CI | target | wall time / run (scratch, fine-tuned) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for budget, epochs in BUDGETS.items():
        acc: dict[str, list[float]] = {"scratch": [], "fine-tuned": []}
        wall: dict[str, list[float]] = {"scratch": [], "fine-tuned": []}
        for seed in SEEDS:
            for arm, extra in (("scratch", []), ("fine-tuned", [f"model.backbone_ckpt={ckpt}"])):
                overrides = [
                    "experiment=transfer_target",
                    f"data.labels_per_class={budget}",
                    f"trainer.max_epochs={epochs}",
                    f"seed={seed}",
                    *common,
                    *extra,
                ]
                metrics = train(overrides, logs / f"{arm}_{budget}_seed{seed}")
                acc[arm].append(100 * metrics["test"]["test/acc"])
                wall[arm].append(metrics["wall_time_s"])
        gains = [f - s for f, s in zip(acc["fine-tuned"], acc["scratch"], strict=True)]
        low, high = t_interval(gains)
        rows.append(
            f"| {budget} | {epochs} | {mean_std(acc['scratch'])} | {mean_std(acc['fine-tuned'])} "
            f"| {mean_std(gains)} | [{low:.2f}, {high:.2f}] | {verdict(gains) if budget == 100 else '-'} "
            f"| {statistics.mean(wall['scratch']):.0f} s, {statistics.mean(wall['fine-tuned']):.0f} s |"
        )
    total = time.perf_counter() - start
    return "\n".join(
        [
            f"Source: `resnet10t` (timm, no ImageNet weights) trained on classes 0-4 with all labels: "
            f"{100 * source['test']['test/acc']:.2f} % test accuracy on those classes, "
            f"{source['epochs']} epochs, {source['wall_time_s']:.0f} s.",
            "",
            *rows,
            "",
            f"Seeds {', '.join(map(str, SEEDS))} (mean ± std over seeds; the seed also draws the labelled "
            "subset and the 500-image validation split, so both arms of a seed see the same data and the gain "
            "is paired: its CI is the t-interval of the per-seed gains). Test accuracy on the 5,000 official test images of "
            "classes 5-9, from the best-validation checkpoint. Whole section (source + "
            f"{2 * len(SEEDS) * len(BUDGETS)} target runs): {total / 60:.1f} min.",
            "",
            "Commands: `python src/train.py experiment=transfer_source`, then "
            "`python src/train.py experiment=transfer_target data.labels_per_class=<n> trainer.max_epochs=<e> "
            "seed=<s> [model.backbone_ckpt=<source best .ckpt>]`.",
        ]
    )
