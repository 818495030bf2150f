"""Wrongly typed or impossible values fail before training with one ``error:`` line naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch

from litlab.utils.config import _matches

ROOT = Path(__file__).resolve().parents[1]
TOY = ["data=toy", "model=perceptron", "logger=none", "trainer.accelerator=cpu", "trainer.max_epochs=1"]


def last_line(run) -> str:
    return run.proc.stderr.strip().splitlines()[-1]


def test_none_arm_takes_only_none_and_classes_are_checked():
    legacy = Optional[int]  # noqa: UP045  (typing.Optional, as Lightning's Trainer spells it)
    assert _matches(None, legacy) and _matches(3, int | None)
    assert not _matches("abc", legacy) and not _matches("abc", int | None)
    assert _matches(0.1, float | torch.Tensor) and _matches(torch.tensor(0.1), float | torch.Tensor)
    assert not _matches("abc", float | torch.Tensor)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.optimizer.lr=abc", "error: model.optimizer.lr='abc' has the wrong type"),
        ("trainer.max_epochs=abc", "error: trainer.max_epochs='abc' has the wrong type"),
    ],
)
def test_wrong_type_behind_optional_or_tensor_is_one_line(run_script, override, expected):
    run = run_script(*TOY, override, expect_ok=False)
    assert run.proc.returncode == 1, run.output[-3000:]
    assert last_line(run).startswith(expected), run.output[-3000:]
    assert "Traceback" not in run.proc.stderr


@pytest.fixture(scope="module")
def perceptron_ckpt(tmp_path_factory) -> Path:
    """A real checkpoint of another model (the perceptron) than the MLP the tests resume."""
    root = tmp_path_factory.mktemp("perceptron")
    command = [sys.executable, str(ROOT / "src" / "train.py"), *TOY, "test=false", f"hydra.run.dir={root}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "checkpoints" / "last.ckpt"


def bad_checkpoint(kind: str, folder: Path, good: Path) -> Path:
    path = folder / f"{kind}.ckpt"
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(50_000))
    elif kind == "other_model":
        return good
    return path  # "missing": never written


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("missing", "does not exist; pass the path of a .ckpt file"),
        ("empty", "is empty (a killed save?); pass another .ckpt"),
        ("truncated", "is truncated or not a checkpoint"),
        ("random", "is truncated or not a checkpoint"),
        ("other_model", "holds another model's weights (litlab.models.mlp.MLPClassifier"),
    ],
)
def test_bad_ckpt_path_is_one_line_before_fitting(run_script, tmp_path, perceptron_ckpt, kind, expected):
    path = bad_checkpoint(kind, tmp_path, perceptron_ckpt)
    run = run_script(*TOY, "model=mlp", f"ckpt_path={path}", expect_ok=False)
    assert run.proc.returncode == 1, run.output[-3000:]
    line = last_line(run)
    assert line.startswith(f"error: ckpt_path={path} ") and expected in line, run.output[-3000:]
    assert "Traceback" not in run.proc.stderr and "weights_only" not in run.proc.stderr
    assert not (run.run_dir / "checkpoints").exists()  # failed before fitting


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["seed=abc"], "error: seed='abc' must be an integer, or seed=null"),
        (["model.optimizer.lr=-1"], "error: model.optimizer.lr=-1 is rejected by torch.optim.Adam"),
        (
            ["model=mlp", "model/optimizer=sgd", "model.optimizer.momentum=-0.5"],
            "model.optimizer.momentum=-0.5",
        ),
    ],
)
def test_impossible_values_are_one_line(run_script, overrides, expected):
    run = run_script(*TOY, "model=mlp", *overrides, expect_ok=False)
    assert run.proc.returncode == 1, run.output[-3000:]
    assert last_line(run).startswith(expected) or expected in last_line(run), run.output[-3000:]
    assert "Traceback" not in run.proc.stderr


def test_sequence_model_on_image_data_is_one_line(run_script, cifar_dir):
    run = run_script(
        "model=lstm", "data=cifar10", f"paths.data_dir={cifar_dir}", "data.val_size=100", "data.download=false",
        "logger=none", "trainer.accelerator=cpu", "trainer.max_epochs=1", expect_ok=False,
    )  # fmt: skip
    assert run.proc.returncode == 1, run.output[-3000:]
    assert "error: model=lstm reads token sequences" in last_line(run) and "data=imdb" in last_line(run)
    assert "Traceback" not in run.proc.stderr
