"""Scaling on this CPU: 1 vs 2 DDP processes for a classifier and the GAN, and torch.compile's cost and
speed-up by batch size."""

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


BATCH = 128  # the global batch of both setups: under ddp_cpu each of the 2 processes takes 64
FAMILIES = {
    "reference CNN, CIFAR-10": ["model=cnn", "data=cifar10"],
    # the reference dense GAN (fp32); it renders no samples inside the timed epoch
    "dense GAN, MNIST": ["experiment=seed_gan_mnist", "model.sample_every_n_epochs=2"],
}
# 1 process with both cores' threads vs 2 processes of 1 thread: the same 2 cores either way
SINGLE = ["trainer=cpu", "threads=2"]
DDP = ["trainer=ddp_cpu", "trainer.devices=2", "threads=1"]
UNUSED = "trainer.strategy=ddp_find_unused_parameters_true"


def step_rate(data_dir: Path, overrides: list[str]) -> dict:
    out = Path(tempfile.mkdtemp()) / "rate.json"
    command = [
        sys.executable, str(ROOT / "src" / "train.py"), f"paths.data_dir={data_dir}",
        "+callbacks.rate._target_=probes.StepRateProbe", f"+callbacks.rate.out_file={out}", "test=false",
        "logger=none", "trainer.max_epochs=1", f"trainer.limit_train_batches={STEPS}", "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0", f"hydra.run.dir={out.parent}/run", *overrides,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts" / "bench")}
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, env=env, check=True, capture_output=True, cwd=ROOT, timeout=900)
    return json.loads(out.read_text())


def ddp_rows(data_dir: Path) -> list[str]:
    rows = [
        "| model | setup | global batch | images/s | vs 1 process |",
        "|---|---|---|---|---|",
    ]
    for family, overrides in FAMILIES.items():
        common = [*overrides, f"data.batch_size={BATCH}"]
        base = step_rate(data_dir, [*common, *SINGLE])["steps_per_s"] * BATCH
        one_thread = step_rate(data_dir, [*common, "trainer=cpu", "threads=1"])["steps_per_s"] * BATCH
        setup = "`trainer=ddp_cpu trainer.devices=2`, 1 thread each (gloo)"
        try:
            double = step_rate(data_dir, [*common, *DDP])["steps_per_s"] * BATCH
        except subprocess.CalledProcessError as error:  # a model not yet fixed for DDP: measure it anyway
            lines = error.stderr.decode(errors="replace").splitlines()
            print(f"  plain ddp failed: {next((x for x in reversed(lines) if 'Error' in x), '?')[:300]}")
            double = step_rate(data_dir, [*common, *DDP, UNUSED])["steps_per_s"] * BATCH
            setup += f", with `{UNUSED}` (plain `ddp` fails on its unused parameters)"
        rows.append(f"| {family} | 1 process, 2 threads | {BATCH} | {base:,.0f} | 1.00 |")
        rows.append(
            f"| {family} | 1 process, 1 thread | {BATCH} | {one_thread:,.0f} | {one_thread / base:.2f} |"
        )
        rows.append(f"| {family} | {setup} | {BATCH} | {double:,.0f} | {double / base:.2f} |")
    return rows


def run(data_dir: Path) -> str:
    rows = ddp_rows(data_dir)
    rows += ["", "Both setups use the same 2 cores: one process with 2 torch threads, or 2 processes with 1 thread "
             f"each competing for them, so DDP here can only add its all-reduce (gloo) and a per-process batch of "
             f"{BATCH // 2}; it shows the cost of distribution on one machine, not a speed-up. Images/s = training "
             f"batches/s x global batch over batches 5..{STEPS} (a GAN batch is one D and one G step). The CNN "
             "trains in bf16 autocast + channels_last where the CPU has bf16 (the defaults), the GAN in fp32 "
             "(its reference recipe). Another process on the machine takes a core from the 2-thread process, which "
             "then waits at every parallel region for its descheduled thread, while 1-thread processes just run "
             "slower: compare the 1-thread row before reading the DDP ratio as a gain."]  # fmt: skip
    rows += ["", "| reference CNN, batch | eager img/s | compiled img/s | speed-up | first step eager / compiled |",
             "|---|---|---|---|---|"]  # fmt: skip
    for batch in (100, 512):
        cnn = [*FAMILIES["reference CNN, CIFAR-10"], *SINGLE, f"data.batch_size={batch}"]
        eager = step_rate(data_dir, cnn)
        compiled = step_rate(data_dir, [*cnn, "model.compile=true"])
        rows.append(
            f"| {batch} | {eager['steps_per_s'] * batch:,.0f} | {compiled['steps_per_s'] * batch:,.0f} | "
            f"{compiled['steps_per_s'] / eager['steps_per_s']:.2f}x | {eager['first_step_s']:.1f} s / "
            f"{compiled['first_step_s']:.1f} s |"
        )
    rows += ["", f"Steady state over steps 5..{STEPS} of one epoch. "
             "No GPU was available to this session, so there are no GPU figures in this section."]  # fmt: skip
    return "\n".join(rows)
