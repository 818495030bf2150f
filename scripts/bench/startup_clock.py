"""Startup clocks for the core bench: the main job to its first optimiser step, the bare stack's floor,
and how fast the CLI answers ``--help`` and ``--cfg job``."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runner import ROOT


def startup_seconds(data_dir: Path, repeats: int = 3) -> list[float]:
    """Shell command to the end of the first optimiser step of the main job, in a fresh process."""
    probe_dir = Path(tempfile.mkdtemp())
    times = []
    for i in range(repeats):
        out = probe_dir / f"t{i}"
        env = {
            **os.environ,
            "LITLAB_LAUNCH_TIME": f"{time.time():.6f}",
            "PYTHONPATH": str(ROOT / "scripts" / "bench"),
        }
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "src" / "train.py"),
                "model=cnn",
                "data=cifar10",
                f"paths.data_dir={data_dir}",
                "+callbacks.probe._target_=probes.FirstStepProbe",
                f"+callbacks.probe.out_file={out}",
                "test=false",
                "trainer.max_steps=1",
                f"hydra.run.dir={probe_dir}/run{i}",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        times.append(float(out.read_text()))
    return times


FLOOR = """
import os, time, sys
sys.path.insert(0, sys.argv[1])
import litlab, torch, lightning, hydra.utils  # what any Lightning + Hydra run imports
net = torch.nn.Linear(8, 2)
optimizer = torch.optim.Adam(net.parameters())  # the first optimiser pulls in torch._dynamo
net(torch.randn(4, 8)).sum().backward()
optimizer.step()
print(time.time() - float(os.environ["LITLAB_LAUNCH_TIME"]))
"""


def stack_floor_seconds(repeats: int = 3) -> list[float]:
    """The same clock for no template at all: import torch, lightning and hydra, then one Adam step."""
    times = []
    for _ in range(repeats):
        env = {**os.environ, "LITLAB_LAUNCH_TIME": f"{time.time():.6f}"}
        out = subprocess.run(
            [sys.executable, "-c", FLOOR, str(ROOT / "src")],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


def cli_answer_seconds(*args: str, repeats: int = 3) -> list[float]:
    """Wall time of ``python src/train.py <args>`` from launch to exit (``--help``, ``--cfg job``):
    Hydra answers from the config alone, without importing torch or Lightning."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, str(ROOT / "src" / "train.py"), *args], check=True, capture_output=True
        )
        times.append(time.perf_counter() - start)
    return times
