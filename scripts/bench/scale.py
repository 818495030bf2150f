"""Scaling on this CPU: 1 vs 2 DDP processes, and torch.compile's cost and speed-up by batch size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from runner import ROOT

TITLE = "Scaling and torch.compile (CPU)"
STEPS = 40


def step_rate(data_dir: Path, overrides: list[str]) -> dict:
    out = Path(tempfile.mkdtemp()) / "rate.json"
    command = [
        sys.executable, str(ROOT / "src" / "train.py"), "model=cnn", "data=cifar10", f"paths.data_dir={data_dir}",
        "+callbacks.rate._target_=probes.StepRateProbe", f"+callbacks.rate.out_file={out}", "test=false",
        "logger=none", "trainer.max_epochs=1", f"trainer.limit_train_batches={STEPS}", "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0", f"hydra.run.dir={out.parent}/run", *overrides,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts" / "bench")}
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, env=env, check=True, capture_output=True, cwd=ROOT)
    return json.loads(out.read_text())


def run(data_dir: Path) -> str:
    rows = ["| setup | global batch | images/s | vs 1 process |", "|---|---|---|---|"]
    single = step_rate(data_dir, ["trainer=cpu", "data.batch_size=128"])
    double = step_rate(data_dir, ["trainer=ddp_cpu", "trainer.devices=2", "data.batch_size=128"])
    base = single["steps_per_s"] * 128
    rows.append(f"| 1 process (2 threads) | 128 | {base:,.0f} | 1.00 |")
    rows.append(
        f"| `trainer=ddp_cpu` 2 processes (gloo) | 128 | {double['steps_per_s'] * 128:,.0f} | "
        f"{double['steps_per_s'] * 128 / base:.2f} |"
    )
    rows += ["", "| reference CNN, batch | eager img/s | compiled img/s | speed-up | first step eager / compiled |",
             "|---|---|---|---|---|"]  # fmt: skip
    for batch in (100, 512):
        eager = step_rate(data_dir, ["trainer=cpu", f"data.batch_size={batch}"])
        compiled = step_rate(data_dir, ["trainer=cpu", f"data.batch_size={batch}", "model.compile=true"])
        rows.append(
            f"| {batch} | {eager['steps_per_s'] * batch:,.0f} | {compiled['steps_per_s'] * batch:,.0f} | "
            f"{compiled['steps_per_s'] / eager['steps_per_s']:.2f}x | {eager['first_step_s']:.1f} s / "
            f"{compiled['first_step_s']:.1f} s |"
        )
    rows += ["", f"Steady state over steps 5..{STEPS} of one epoch, bf16 autocast + channels_last (the defaults here). "
             "No GPU was available to this session, so there are no GPU figures in this section."]  # fmt: skip
    return "\n".join(rows)
