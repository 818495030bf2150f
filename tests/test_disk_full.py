"""A run directory on a full disk (a small tmpfs, mounted for real): one line naming the file and the
space it needs, no partial file, and the results table and metrics.json kept wherever they fit."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

RUN = [
    "model=mlp",
    "model.hidden_sizes=[30]",  # a 1.1 MB checkpoint: two fit in 3 MB, a third does not
    "trainer.accelerator=cpu",
    "data.val_size=100",
    "data.batch_size=32",
    "data.download=false",
    "logger=csv",
    "callbacks.rich_progress_bar=null",
    "trainer.enable_progress_bar=false",
]


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 3 MB tmpfs here (needs root): {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def last_line(run) -> str:
    return run.proc.stderr.strip().splitlines()[-1]


@pytest.mark.heavy
def test_a_checkpoint_that_does_not_fit_is_one_line_and_leaves_no_partial_file(
    run_script, cifar_dir, small_disk
):
    run_dir = small_disk / "run"
    run = run_script(
        *RUN, f"paths.data_dir={cifar_dir}", "trainer.max_epochs=3", run_dir=run_dir, expect_ok=False
    )
    line = last_line(run)
    assert run.proc.returncode == 1, run.output[-3000:]
    assert line.startswith(f"error: no space left on the device for {run_dir / 'checkpoints'}/"), line
    assert ".ckpt: it needs about 1.1 MB" in line and "free there" in line and "paths.log_dir=" in line
    assert "Traceback" not in run.proc.stderr
    files = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert files == ["epoch_000.ckpt", "last.ckpt"]  # no temp file, no empty or truncated checkpoint
    for name in files:
        assert torch.load(run_dir / "checkpoints" / name, map_location="cpu", weights_only=True)["epoch"] >= 0
    assert run.metrics["status"] == "failed" and "DiskFullError: no space left" in run.metrics["error"]


@pytest.mark.heavy
def test_a_disk_that_fills_at_the_end_keeps_the_table_and_the_record(
    run_script, cifar_dir, small_disk, tmp_path, monkeypatch
):
    tests = Path(__file__).parent
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    run_dir = small_disk / "run"
    fill = ["+callbacks.fill._target_=probes.FillDisk", f"+callbacks.fill.out_dir={run_dir}"]
    run = run_script(
        *RUN, f"paths.data_dir={cifar_dir}", "trainer.max_epochs=1", *fill, run_dir=run_dir, expect_ok=False
    )
    assert run.proc.returncode == 1, run.output[-3000:]
    assert "test/acc" in run.proc.stdout and "litlab train results" in run.proc.stdout  # the table
    assert last_line(run).startswith(f"error: no space left on the device for {run_dir / 'metrics.json'}")
    assert "Traceback" not in run.proc.stderr
    fallback = next(tmp_path.glob("litlab-run-*-metrics.json"))
    assert f"metrics.json written to {fallback} instead" in run.proc.stderr
    record = json.loads(fallback.read_text())
    assert record["status"] == "completed" and record["test"]["test/acc"] > 0.2
    assert not (run_dir / "metrics.json").exists() and not list(run_dir.glob("*.part"))
