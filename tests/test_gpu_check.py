"""The GPU check rehearsed on the CPU: every check it can run here passes, and its report is written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow  # about a dozen real runs: `make gpu-rehearsal` (CI runs it)
def test_gpu_check_rehearsal_on_cpu(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--out", str(tmp_path), "--accelerator", "cpu",
         "--size", "tiny"],
        capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    failed = [r for r in summary["results"] if not r["ok"]]
    assert proc.returncode == 0 and not failed, (proc.stdout[-3000:], failed)
    checks = {r["check"] for r in summary["results"]}
    families = {"mlp", "cnn", "rnn", "gan", "timm", "cifar10_fast", "dcgan"}
    assert {f"{name}-bf16" for name in families} <= checks
    assert {
        "ddp-1-device",
        "compile-cnn",
        "resume-matches",
        "eval-on-cpu",
        "cifar10_94-eager-projection",
    } <= checks
    assert (tmp_path / "cnn_last.ckpt").exists() and "| resume-matches | yes |" in (
        tmp_path / "gpu_check.md"
    ).read_text()
