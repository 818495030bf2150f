"""Checkpoints under faults: last.ckpt is always the latest epoch."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from litlab.callbacks import ModelCheckpoint


class FallingAccuracy(BoringModel):
    """Validation accuracy is best in epoch 0 and falls after it, so top-1 never saves again."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs_trained: list[int] = []

    def on_train_epoch_start(self) -> None:
        self.epochs_trained.append(self.current_epoch)

    def validation_step(self, batch, batch_idx):
        self.log("val/acc", 1.0 - 0.1 * self.current_epoch - 0.01 * self.global_step / 1000)
        return super().validation_step(batch, batch_idx)


def fit(tmp_path: Path, max_epochs: int, val_check_interval: float, ckpt_path: Path | None = None):
    model = FallingAccuracy()
    callback = ModelCheckpoint(
        dirpath=tmp_path / "checkpoints",
        filename="epoch_{epoch:03d}",
        monitor="val/acc",
        mode="max",
        save_last=True,
        save_top_k=1,
        auto_insert_metric_name=False,
    )
    trainer = L.Trainer(
        max_epochs=max_epochs,
        limit_train_batches=4,
        limit_val_batches=2,
        val_check_interval=val_check_interval,
        callbacks=[callback],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
    )
    trainer.fit(model, ckpt_path=ckpt_path)
    return model, callback, trainer


@pytest.mark.parametrize("val_check_interval", [1.0, 0.5])  # saved at epoch end / at validation end
def test_last_ckpt_is_the_latest_epoch_when_the_monitor_falls(tmp_path, val_check_interval):
    _, callback, trainer = fit(tmp_path, 4, val_check_interval)
    last = Path(callback.last_model_path)
    assert last.name == "last.ckpt"
    stored = torch.load(last, map_location="cpu", weights_only=True)
    assert (stored["epoch"], stored["global_step"]) == (3, trainer.global_step) == (3, 16)
    assert Path(callback.best_model_path).name == "epoch_000.ckpt"  # the best stays the best
    assert sorted(p.name for p in last.parent.iterdir()) == ["epoch_000.ckpt", "last.ckpt"]

    resumed, _, trainer = fit(tmp_path / "resumed", 6, val_check_interval, ckpt_path=last)
    assert resumed.epochs_trained == [4, 5]  # continues after epoch 3, redoes nothing
    assert trainer.global_step == 24
