"""Wrongly typed or impossible values fail before training with one ``error:`` line naming the key."""

from __future__ import annotations

from typing import Optional

import pytest
import torch

from litlab.utils.config import _matches

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
