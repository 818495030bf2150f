"""Parallel local sweeps give each job a GPU of its own through CUDA_VISIBLE_DEVICES (no GPU needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from litlab.sweeps import jobs


@pytest.fixture
def fresh(monkeypatch):
    """A process that has claimed no GPU yet, on a machine with two (as LITLAB_GPU_COUNT says)."""
    monkeypatch.setattr(jobs, "_held_gpu", None)
    monkeypatch.setenv(jobs.GPU_COUNT_ENV, "2")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_jobs_claim_free_gpus_then_share_round_robin(fresh, tmp_path, monkeypatch):
    claims = []
    for job_num in range(3):  # three job processes: each starts with no claim of its own
        monkeypatch.setattr(jobs, "_held_gpu", None)
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        claims.append(jobs.assign_gpu("joblib", "auto", tmp_path, job_num))
        assert os.environ["CUDA_VISIBLE_DEVICES"] == claims[-1]
    assert claims == ["0", "1", "0"]  # GPUs 0 and 1 are held, so job 2 shares GPU 2 mod 2


def test_a_worker_keeps_its_gpu_for_its_next_job(fresh, tmp_path):
    first = jobs.assign_gpu("joblib", "gpu", tmp_path, 0)
    assert jobs.assign_gpu("joblib", "gpu", tmp_path, 1) == first == "0"


@pytest.mark.parametrize(
    ("launcher", "accelerator", "preset", "gpus"),
    [
        (None, "auto", None, "2"),  # a single run or the basic launcher: one job at a time
        ("joblib", "cpu", None, "2"),  # a CPU run
        ("joblib", "auto", "3", "2"),  # the user chose
        ("submitit_local", "auto", "", "2"),  # submitit's gpus_per_node=0: no GPU
        ("joblib", "auto", None, "0"),  # no GPU here
    ],
)
def test_left_alone(fresh, tmp_path, monkeypatch, launcher, accelerator, preset, gpus):
    monkeypatch.setenv(jobs.GPU_COUNT_ENV, gpus)
    if preset is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", preset)
    assert jobs.assign_gpu(launcher, accelerator, tmp_path, 1) is None
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == preset


def test_submitit_local_default_is_replaced(fresh, tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # what submitit sets for every job
    assert jobs.assign_gpu("submitit_local", "auto", tmp_path, 0) == "0"
    monkeypatch.setattr(jobs, "_held_gpu", None)  # the second job's process
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert jobs.assign_gpu("submitit_local", "auto", tmp_path, 1) == "1"


@pytest.mark.heavy
def test_joblib_sweep_jobs_see_different_gpus(tmp_path, cifar_dir):
    sweep = tmp_path / "sweep"
    command = [
        sys.executable,
        str(ROOT / "src" / "train.py"),
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "model=mlp",
        "seed=0,1",
        f"paths.data_dir={cifar_dir}",
        "data.download=false",
        "data.val_size=100",
        "trainer.max_epochs=1",
        "logger=none",
        f"hydra.sweep.dir={sweep}",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env[jobs.GPU_COUNT_ENV] = "2"  # two GPUs as far as the assignment knows; the CPU trains
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = [json.loads((sweep / str(job) / "metrics.json").read_text()) for job in (0, 1)]
    assert all(result["status"] == "completed" for result in seen)
    assert sorted(result["visible_devices"] for result in seen) == ["0", "1"]
