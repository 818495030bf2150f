"""cifar10_94 over 3 seeds: wall time and mean ± std test accuracy. About 25 min a seed on 2 CPU cores,
so opt-in: `make bench ARGS="--only speed94"`; a plain `make bench` keeps the last measured file."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from speed import timed_run  # noqa: E402

TITLE = "Speed recipes: cifar10_94"
OPT_IN = True  # about 70 min: runs only when named in --only


def run(data_dir: Path) -> str:
    runs = [timed_run(data_dir, "cifar10_94", f"cifar10_94_seed{s}", f"seed={s}") for s in range(3)]
    accs = [r["test"]["test/acc"] for r in runs]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    rows = [
        "| `cifar10_94`, 3 seeds | test acc mean ± std | process wall time (mean) | training (fit loop, mean) | device |",
        "|---|---|---|---|---|",
        f"| seeds 0, 1, 2 | {statistics.fmean(accs):.2%} ± {statistics.stdev(accs):.2%} | "
        f"{statistics.fmean(r['process_time_s'] for r in runs):.0f} s | "
        f"{statistics.fmean(r['fit']['train_s'] for r in runs):.1f} s | {device} |",
        "",
        f"Per seed: {', '.join(f'{a:.2%}' for a in accs)} (target: mean >= 94.00 %). Training (fit loop): from "
        "the start of fit (patch whitening included) to the end of the last step; data loading and the test are "
        "not in it; no compilation (model.compile=false).",
    ]
    return "\n".join(rows)
