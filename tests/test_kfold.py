"""k-fold cross-validation: data.folds=k data.fold=i, and sweeps over folds reported like seeds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from litlab.data.base import fold_split
from litlab.data.cifar10 import CIFAR10DataModule
from litlab.errors import ConfigError
from litlab.sweeps.collect import Job, group_jobs
from litlab.sweeps.report import write_csv
from litlab.sweeps.summary import summarise

sys.path.insert(0, str(Path(__file__).parent))


def test_folds_are_disjoint_cover_the_split_keep_class_balance_and_are_stable():
    labels = torch.arange(103) % 4  # 4 classes of 25-26 rows, 103 rows: not divisible by 5
    folds = [fold_split(labels, 5, i, seed=3) for i in range(5)]
    validation = [set(val.tolist()) for _, val in folds]
    assert set().union(*validation) == set(range(103))  # together they cover the training split
    assert sum(map(len, validation)) == 103  # ... once each: disjoint
    assert max(map(len, validation)) - min(map(len, validation)) <= 1
    for (train, val), held_out in zip(folds, validation, strict=True):
        assert set(train.tolist()) == set(range(103)) - held_out
        per_class = torch.bincount(labels[val], minlength=4)
        assert per_class.max() - per_class.min() <= 1  # stratified: each fold keeps the class balance
    torch.manual_seed(1234)  # the run seed must not move the folds
    again = fold_split(labels, 5, 2, seed=3)
    assert torch.equal(again[1], folds[2][1])
    assert not torch.equal(fold_split(labels, 5, 2, seed=4)[1], folds[2][1])


def test_data_module_folds_leave_the_test_set_alone(cifar_dir):
    base = CIFAR10DataModule(str(cifar_dir), val_size=50, download=False)
    base.setup()
    seen: list[int] = []
    for fold in range(4):
        dm = CIFAR10DataModule(str(cifar_dir), folds=4, fold=fold, download=False)
        dm.setup()
        train_rows, val_rows = dm.splits["train"].rows, dm.splits["val"].rows
        assert len(val_rows) == 125 and len(train_rows) == 375  # 500 training images over 4 folds
        assert not set(train_rows.tolist()) & set(val_rows.tolist())
        seen += val_rows.tolist()
        assert torch.equal(dm.splits["test"].tensors[1], base.splits["test"].tensors[1])
    assert sorted(seen) == list(range(500))


@pytest.mark.parametrize(
    ("folds", "fold", "message"),
    [
        (1, 0, "data.folds=1 must be an integer >= 2"),
        (5, 5, "data.fold=5 must be one of 0..4"),
        (None, 2, "needs data.folds"),
    ],
)
def test_bad_fold_settings_are_one_line_config_errors(cifar_dir, folds, fold, message):
    with pytest.raises(ConfigError, match=message):
        CIFAR10DataModule(str(cifar_dir), folds=folds, fold=fold, download=False)


def test_a_fold_sweep_is_reported_like_seeds(tmp_path):
    jobs = [
        Job((f"model={m}", "data.folds=3", f"data.fold={f}"), "completed", tmp_path / f"{m}{f}")
        for m in ("mlp", "cnn")
        for f in range(3)
    ]
    for i, job in enumerate(jobs):
        job.metrics = {"test/acc": [0.50, 0.55, 0.60, 0.71, 0.74, 0.81][i]}  # fold 1 is hard for both
    groups = group_jobs(jobs, ["model"])  # the keys a report groups by: data.fold is a replicate
    summary = summarise(groups, "test/acc", {"model": "mlp"})
    assert [arm.n for arm in summary.arms] == [3, 3]
    cnn = next(arm for arm in summary.arms if arm.group.params["model"] == "cnn")
    assert cnn.comparison is not None and cnn.comparison.test == "paired"  # on the shared folds
    assert cnn.comparison.n == 3 and cnn.comparison.delta == pytest.approx(0.2033, abs=1e-4)
    write_csv(tmp_path / "results.csv", jobs, ["model"])
    header = (tmp_path / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["job", "status", "model", "seed", "data.fold"]
