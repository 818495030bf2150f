"""A run directory that holds a run is never reused silently: same-second launches get their own
directories, and an explicit reuse needs resume=true or a ckpt_path inside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from litlab.errors import ConfigError
from litlab.sweeps.jobs import check_fresh_run_dir

ROOT = Path(__file__).resolve().parents[1]
TOY = ["experiment=seed_perceptron", "trainer.max_epochs=1", "logger=none"]


def test_a_directory_holding_a_run_is_refused_unless_continued(tmp_path):
    check_fresh_run_dir(tmp_path, None)  # empty: fine
    (tmp_path / ".hydra").mkdir()  # what Hydra writes before the job starts does not count
    check_fresh_run_dir(tmp_path, None)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"already holds a run \(checkpoints/\).*resume=true or ckpt_path="):
        check_fresh_run_dir(tmp_path, None)
    check_fresh_run_dir(tmp_path, str(tmp_path / "checkpoints" / "last.ckpt"))  # continuing it: fine
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"metrics.json and checkpoints/"):
        check_fresh_run_dir(tmp_path, str(tmp_path.parent / "other" / "last.ckpt"))


@pytest.mark.heavy
def test_explicit_reuse_fails_with_one_line_and_resume_true_continues(run_script):
    first = run_script(*TOY)
    before = (first.run_dir / "metrics.json").read_text()
    again = run_script(*TOY, "seed=1", run_dir=first.run_dir, expect_ok=False)
    assert again.proc.returncode == 1
    assert again.proc.stderr.strip().splitlines()[-1] == (
        f"error: {first.run_dir} already holds a run (metrics.json): give a new hydra.run.dir (or leave "
        "it to the timestamp), or continue that run with resume=true"
    )
    assert (first.run_dir / "metrics.json").read_text() == before  # untouched
    resumed = run_script(*TOY, "resume=true", run_dir=first.run_dir)
    assert "already completed, skipped" in resumed.output


@pytest.mark.heavy
def test_launches_in_the_same_second_get_their_own_directories(tmp_path):
    command = [sys.executable, str(ROOT / "src" / "train.py"), *TOY, f"paths.log_dir={tmp_path}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    procs = [subprocess.Popen(command, env=env, cwd=tmp_path, **pipes) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
    runs = sorted((tmp_path / "train" / "runs").iterdir())
    assert len(runs) == 2, runs
    assert all(json.loads((run / "metrics.json").read_text())["status"] == "completed" for run in runs)
