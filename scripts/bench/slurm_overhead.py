"""What a SLURM sweep costs before training starts: from launching `train.py -m
hydra/launcher=submitit_slurm_cpu` to the end of the first optimiser step, against the same job run
directly. The cluster is the local one of scripts/slurm_cluster.sh (started here if it is not up)."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from runner import ROOT

TITLE = "SLURM sweep overhead (local cluster)"
RUNS = 3
CLUSTER = ROOT / "scripts" / "slurm_cluster.sh"
JOB = [  # small and fixed: the measurement is the start-up, not the training
    "model=mlp", "data=mnist", "trainer.max_epochs=1", "trainer.limit_train_batches=5", "trainer.limit_val_batches=0",
    "trainer.num_sanity_val_steps=0", "test=false", "logger=none", "callbacks=none", "trainer.enable_progress_bar=false",
]  # fmt: skip


def first_step(command: list[str], out: Path, env: dict[str, str]) -> tuple[float, float]:
    """(launch time, seconds from launch to the end of the first step) of one real run."""
    launched = time.time()
    env = {**env, "LITLAB_LAUNCH_TIME": f"{launched:.6f}"}
    probe = ["+callbacks.first._target_=probes.FirstStepProbe", f"+callbacks.first.out_file={out}"]
    print("$", " ".join(command[1:] + probe), flush=True)
    subprocess.run(command + probe, env=env, check=True, capture_output=True, cwd=ROOT)
    return launched, float(out.read_text())


def job_started(sweep_dir: Path) -> float:
    """When submitit's job process started (the first line it logs), as a Unix time."""
    log = next((sweep_dir / ".submitit").glob("*/*_0_log.out")).read_text()
    stamp = re.search(r"submitit INFO \((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\) - Starting", log).group(1)
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def run(data_dir: Path) -> str:
    started_here = subprocess.run(["bash", str(CLUSTER), "status"], capture_output=True).returncode != 0
    subprocess.run(["bash", str(CLUSTER), "start"], check=True)
    conf = subprocess.run(["bash", str(CLUSTER), "conf"], capture_output=True, text=True, check=True).stdout
    probes = os.pathsep.join(filter(None, [str(ROOT / "scripts" / "bench"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "SLURM_CONF": conf.strip(), "PYTHONPATH": probes}
    work = Path(tempfile.mkdtemp(prefix="slurm-overhead-"))
    train = [sys.executable, str(ROOT / "src" / "train.py"), *JOB, f"paths.data_dir={data_dir}"]
    rows = [
        "| run | direct: launch -> first step | SLURM sweep: launch -> job process | -> first step | overhead |",
        "|---|---|---|---|---|",
    ]
    overheads, queue_waits, in_job, directs = [], [], [], []
    try:
        for i in range(RUNS):
            _, direct = first_step(
                [*train, f"hydra.run.dir={work / f'direct{i}'}"], work / f"direct{i}.txt", env
            )
            sweep_dir = work / f"sweep{i}"
            swept = [
                *train[:2],
                "-m",
                "hydra/launcher=submitit_slurm_cpu",
                *train[2:],
                f"hydra.sweep.dir={sweep_dir}",
            ]
            launched, slurm = first_step(swept, work / f"sweep{i}.txt", env)
            queued = job_started(sweep_dir) - launched
            overheads.append(slurm - direct)
            queue_waits.append(queued)
            in_job.append(slurm - queued)
            directs.append(direct)
            rows.append(
                f"| {i + 1} | {direct:.1f} s | {queued:.1f} s | {slurm:.1f} s | {slurm - direct:+.1f} s |"
            )
    finally:
        if started_here:
            subprocess.run(["bash", str(CLUSTER), "stop"], check=False)
    median = statistics.median
    return "\n".join(rows) + (
        f"\n\nMedian overhead {median(overheads):.1f} s. submitit's job process starts a median "
        f"{median(queue_waits):.1f} s after launch (the sweep process's own start-up, sbatch, scheduling, "
        f"srun); from there to the first step takes {median(in_job):.1f} s, against {median(directs):.1f} s "
        "for the direct run from its launch (the job process imports the stack again and unpickles the "
        "job). Each run: `python src/train.py -m hydra/launcher=submitit_slurm_cpu " + " ".join(JOB) + "` "
        "(one job) vs the same overrides without "
        "`-m`, timed from launch to the end of the first training step (`probes.FirstStepProbe`). The "
        "cluster: `scripts/slurm_cluster.sh` (two slurmd on this host, no accounting).\n"
    )
