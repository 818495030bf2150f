"""Data placement: cifar10_fast's template throughput with the uint8 set on the training device
(``data.on_device=true``, the default) and gathered on the host then copied (``false``)."""

from __future__ import annotations

import statistics
import sys
from functools import partial
from pathlib import Path

import litlab  # noqa: E402, F401  (first: makes torchvision, and so lightning, importable here)

sys.path.insert(0, str(Path(__file__).parent))
from core import template_images_per_s  # noqa: E402

TITLE = "Data placement: the in-memory set on the training device"
STEPS = 40  # timed steps per measurement (an epoch of cifar10_fast has 97)
ROUNDS = 7


def run(data_dir: Path) -> str:
    measures = {
        placement: partial(
            template_images_per_s, data_dir, "cifar10_fast", STEPS, overrides=(f"data.on_device={placement}",)
        )
        for placement in ("true", "false")
    }
    rounds = []
    for index in range(ROUNDS):
        order = list(measures.items())
        rounds.append({name: measure() for name, measure in (order[::-1] if index % 2 else order)})
    ratios = [r["true"] / r["false"] for r in rounds]
    return "\n".join(
        [
            "| `cifar10_fast` (batch 512) | on the device img/s | on the host img/s | device / host (range) |",
            "|---|---|---|---|",
            f"| CPU | {statistics.median(r['true'] for r in rounds):,.0f} | "
            f"{statistics.median(r['false'] for r in rounds):,.0f} | "
            f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}) |",
            "",
            f"{ROUNDS} rounds of {STEPS} timed steps after 5 warm-up steps, each measuring both placements in turn "
            "(odd rounds in reverse order). On a CPU the training device is the host, so both run the same code "
            "and no loss is expected; on a GPU the set is moved once at setup and each step gathers its batch "
            "there instead of copying it from pageable host memory (no GPU has run it yet).",
        ]
    )
