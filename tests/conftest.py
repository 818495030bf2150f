from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import litlab  # noqa: F401  (torchvision shim and resolvers, before anything imports torchvision)

sys.path.insert(0, str(Path(__file__).parent))
from fakedata import write_cifar10, write_mnist  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root)
    return root


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mnist")
    write_mnist(root)
    return root


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, run_dir: Path) -> None:
        self.proc, self.run_dir = proc, run_dir
        self.output = proc.stdout + proc.stderr

    @property
    def metrics(self) -> dict:
        return json.loads((self.run_dir / "metrics.json").read_text())


@pytest.fixture
def run_script(tmp_path) -> Callable[..., Run]:
    """Run src/<script>.py for real in a subprocess, with its run dir inside tmp_path."""
    counter = iter(range(1000))

    def run(
        *overrides: str,
        script: str = "train",
        expect_ok: bool = True,
        timeout: int = 300,
        run_dir: Path | None = None,
    ) -> Run:
        run_dir = run_dir or tmp_path / f"run{next(counter)}"
        command = [
            sys.executable,
            str(ROOT / "src" / f"{script}.py"),
            *overrides,
            f"hydra.run.dir={run_dir}",
            f"paths.log_dir={tmp_path / 'logs'}",
        ]
        env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)
        result = Run(proc, run_dir)
        if expect_ok:
            assert proc.returncode == 0, result.output[-4000:]
        return result

    return run
