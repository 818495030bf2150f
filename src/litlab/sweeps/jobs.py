"""What one multirun job needs to know about the sweep around it.

- ``threads_per_job``: parallel jobs on one machine share its cores, so each gets cores // jobs torch
  threads instead of all of them (two jobs x two threads on two cores run slower than one each);
  a submitit job gets its ``cpus_per_task``.
- ``assign_gpu``: parallel jobs on one machine (joblib, submitit_local) would all compute on GPU 0;
  each gets a GPU of its own through ``CUDA_VISIBLE_DEVICES``, set before CUDA starts in its process.
- ``finished_result``: with ``resume=true`` a job whose metrics.json says completed is not run again.
- ``objective``: the float an Optuna sweeper optimises; NaN marks a failed trial.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from litlab.errors import ConfigError


def available_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def launcher_threads() -> int | None:
    """Threads per job that the multirun's launcher implies: submitit's ``cpus_per_task`` (the job's CPU
    allocation), or cores // parallel jobs for joblib's ``n_jobs``; None outside such a launcher."""
    mode = HydraConfig.get().mode if HydraConfig.initialized() else None
    if mode is None or mode.name != "MULTIRUN":
        return None
    launcher = HydraConfig.get().launcher
    if launcher.get("cpus_per_task"):
        return int(launcher.cpus_per_task)
    n_jobs = launcher.get("n_jobs")
    if not n_jobs:
        return None
    cpus = available_cpus()
    jobs = cpus if n_jobs < 0 else max(1, min(int(n_jobs), cpus))
    return max(1, cpus // jobs)


def threads_per_job(requested: int | None) -> int | None:
    """``threads=N`` wins; in a parallel multirun each job gets its share of the cores; else torch decides."""
    if requested is not None:
        if int(requested) < 1:
            raise ConfigError(f"threads={requested} must be a positive integer (or null for automatic)")
        return int(requested)
    return launcher_threads()


def apply_threads(requested: int | None) -> int | None:
    import torch

    threads = threads_per_job(requested)
    if threads is not None:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # for libraries that start their own pools later
    return threads


GPU_COUNT_ENV = "LITLAB_GPU_COUNT"  # how many GPUs parallel local jobs share out (default: all CUDA sees)
_held_gpu: tuple[str, object] | None = None  # (GPU, its open lock file) this process claimed


def parallel_local_launcher() -> str | None:
    """``joblib`` or ``submitit_local`` when this job runs beside others on this machine, else None."""
    if not HydraConfig.initialized() or HydraConfig.get().mode.name != "MULTIRUN":
        return None
    launcher = HydraConfig.get().launcher
    target = str(launcher.get("_target_", ""))
    if target.endswith("JoblibLauncher") and launcher.get("n_jobs") != 1:
        return "joblib"
    return "submitit_local" if target.endswith("submitit_launcher.LocalLauncher") else None


def cuda_device_count() -> int:
    """GPUs on this machine, counted without starting CUDA (NVML), so the choice can still apply."""
    if os.environ.get(GPU_COUNT_ENV):
        return int(os.environ[GPU_COUNT_ENV])
    import torch

    return torch.cuda.device_count()  # not is_available(): that may start CUDA, fixing the GPUs it sees


def claim_gpu(count: int, slot_dir: Path, job_num: int) -> tuple[str, object]:
    """The first GPU no other job of the sweep holds (an flock that its process keeps until it exits);
    with more jobs than GPUs, job i shares GPU i mod count."""
    slot_dir.mkdir(parents=True, exist_ok=True)
    for gpu in range(count):
        lock = open(slot_dir / f"gpu{gpu}.lock", "a")  # noqa: SIM115 (held for the process's life)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return str(gpu), lock
        except BlockingIOError:
            lock.close()
    return str(job_num % count), None


def assign_gpu(launcher: str | None, accelerator: str, slot_dir: Path, job_num: int) -> str | None:
    """Give this job its own GPU via ``CUDA_VISIBLE_DEVICES``; returns it, or None when left alone:
    not a parallel local sweep, a CPU run, no GPU, or a value the user set. submitit's local executor
    sets ``0,..,gpus_per_node-1`` for every job (all on GPU 0); its empty value (``gpus_per_node=0``)
    means no GPU and is kept. A joblib worker runs several jobs: it keeps the GPU it claimed first,
    since CUDA, once started in it, never sees a new value."""
    global _held_gpu
    if launcher is None or accelerator == "cpu":
        return None
    if _held_gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = _held_gpu[0]
        return _held_gpu[0]
    current = os.environ.get("CUDA_VISIBLE_DEVICES")
    if current is not None and (launcher != "submitit_local" or current == ""):
        return None  # the user's choice (or submitit's "no GPU")
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)  # count every GPU, not submitit's "0"
    count = cuda_device_count()
    if count < 1:
        if current is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = current
        return None
    _held_gpu = claim_gpu(count, slot_dir, job_num)
    os.environ["CUDA_VISIBLE_DEVICES"] = _held_gpu[0]
    return _held_gpu[0]


def apply_gpu(accelerator: str) -> str | None:
    """``assign_gpu`` for the running Hydra job, with the claims kept in its sweep directory."""
    launcher = parallel_local_launcher()
    if launcher is None:
        return None
    hydra_cfg = HydraConfig.get()
    slot_dir = Path(hydra_cfg.sweep.dir) / ".gpus"
    return assign_gpu(launcher, accelerator, slot_dir, int(hydra_cfg.job.get("num", 0) or 0))


def read_metrics(output_dir: Path) -> dict[str, Any] | None:
    path = output_dir / "metrics.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def finished_result(output_dir: Path) -> dict[str, Any] | None:
    """The stored result of a job that already completed here; None if it must (re)run."""
    metrics = read_metrics(output_dir)
    return metrics if metrics and metrics.get("status") == "completed" else None


def interrupted_checkpoint(output_dir: Path) -> Path | None:
    """An interrupted job (Ctrl-C, SIGTERM: status interrupted) continues from its interrupt
    checkpoint, a job killed outright (no metrics.json at all) from its last one. A job that failed
    (NaN, crash) starts again: its checkpoint would only replay the failure."""
    metrics = read_metrics(output_dir)
    saved = output_dir / "checkpoints" / ("interrupted.ckpt" if metrics else "last.ckpt")
    resumable = metrics is None or metrics.get("status") == "interrupted"
    return saved if resumable and saved.exists() else None


def previous_run(output_dir: Path) -> str | None:
    """What of an earlier run ``output_dir`` holds (its metrics.json, its checkpoints), or None.
    Hydra's own ``.hydra/`` and log file do not count: they are written before any job starts."""
    held = [name for name in ("metrics.json",) if (output_dir / name).is_file()]
    if any((output_dir / "checkpoints").glob("*.ckpt")):
        held.append("checkpoints/")
    return " and ".join(held) or None


def check_fresh_run_dir(output_dir: Path, ckpt_path: str | None) -> None:
    """A run directory holding another run is reused only on purpose (``resume=true``, a SLURM requeue
    or a ``ckpt_path`` inside it: the caller checks the first two), never silently: two runs would mix
    their CSV rows and the second overwrite the first's metrics.json."""
    held = previous_run(output_dir)
    if held is None:
        return
    if ckpt_path and Path(ckpt_path).resolve().is_relative_to(output_dir.resolve()):
        return
    resume = "resume=true"
    if held.endswith("checkpoints/"):
        resume += f" or ckpt_path={output_dir}/checkpoints/last.ckpt"
    raise ConfigError(
        f"{output_dir} already holds a run ({held}): give a new hydra.run.dir (or leave it to the "
        f"timestamp), or continue that run with {resume}"
    )


def requeued() -> bool:
    """A SLURM job requeued after a timeout or preemption resumes as if ``resume=true`` were set."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def metric_value(result: dict[str, Any] | None, key: str) -> float:
    """Look ``key`` up in the run's final (val/train) then test metrics; NaN when the job failed."""
    if not result or result.get("status") != "completed":
        return math.nan
    for section in ("final", "test"):
        if key in result.get(section, {}):
            return float(result[section][key])
    raise ConfigError(
        f"optimized_metric={key} is not a logged metric; choose one of "
        f"{sorted({*result.get('final', {}), *result.get('test', {})})}"
    )


def objective(result: dict[str, Any] | None, cfg: DictConfig) -> float | dict[str, Any] | None:
    """What the Hydra main returns: the optimised metric for an Optuna sweep, else the result."""
    key = cfg.get("optimized_metric")
    return metric_value(result, key) if key else result
