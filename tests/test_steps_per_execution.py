"""model.steps_per_execution: K optimiser steps per Lightning batch must train exactly as K batches would."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch

from litlab.data.cifar10 import CIFAR10DataModule
from litlab.data.toy import ToyDataModule
from litlab.models.mlp import MLPClassifier
from litlab.models.schedulers import one_cycle


def fit(
    cifar_dir, steps_per_execution: int, scheduler=None, data=None, **trainer_args
) -> tuple[MLPClassifier, L.Trainer, list]:
    L.seed_everything(0)
    datamodule = CIFAR10DataModule(
        str(cifar_dir), batch_size=32, val_size=100, download=False, **(data or {})
    )
    model = MLPClassifier(
        hidden_sizes=[20],
        dropout=0.2,  # the dropout masks must come in the same order too
        num_classes=10,
        input_shape=[3, 32, 32],
        optimizer=partial(torch.optim.Adam, lr=1e-3),
        steps_per_execution=steps_per_execution,
        scheduler=scheduler,
    )
    ckpt_path = trainer_args.pop("ckpt_path", None)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=trainer_args.pop("max_epochs", 2),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_args,
    )
    initial = [w.clone() for w in weights(model)]
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return model, trainer, initial


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return list(model.state_dict().values())


@pytest.mark.parametrize(
    "trainer_args",
    [
        {},
        {"max_steps": 7},
        {"scheduler": one_cycle},
        {"data": {"drop_last": True}},
        {"data": {"crop_padding": 2, "hflip": True}},  # augmentation draws interleave with dropout's
    ],
    ids=["two_epochs", "max_steps_mid_block", "one_cycle_schedule", "drop_last", "augmented"],
)
def test_blocks_of_steps_train_exactly_as_single_steps(cifar_dir, trainer_args):
    one, one_trainer, _ = fit(cifar_dir, 1, **trainer_args)
    four, four_trainer, initial = fit(cifar_dir, 4, **trainer_args)
    assert four.fetch_steps == 4 and not four.automatic_optimization
    assert four.direct_steps  # one device, 32-bit, no step hooks: loss.backward() and optimizer.step()
    assert four.planned_steps() == one.planned_steps()  # a schedule ends where training does
    # 400 rows: 13 batches of 32 (12 with drop_last) in 4 blocks; the shuffle of epoch 2 must match too
    assert one_trainer.num_training_batches == (12 if "drop_last" in trainer_args.get("data", {}) else 13)
    assert four_trainer.num_training_batches == 4
    steps = trainer_args.get("max_steps", 2 * one_trainer.num_training_batches)
    assert four_trainer.global_step == one_trainer.global_step == steps
    assert all(torch.equal(a, b) for a, b in zip(weights(one), weights(four), strict=True))
    assert not torch.equal(weights(four)[0], initial[0])  # it trained
    assert four_trainer.callback_metrics["train/acc"] == one_trainer.callback_metrics["train/acc"]


def test_clipping_or_a_one_batch_data_module_runs_one_step_per_batch(cifar_dir):
    model, trainer, _ = fit(cifar_dir, 4, gradient_clip_val=1.0)
    assert model.fetch_steps == 1 and trainer.num_training_batches == 13 and trainer.global_step == 26

    toy = MLPClassifier(
        hidden_sizes=[],
        num_classes=2,
        input_shape=[3],
        loss="bce",
        optimizer=partial(torch.optim.SGD, lr=1.0),
        steps_per_execution=4,
    )
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(toy, datamodule=ToyDataModule(steps_per_epoch=5))
    assert toy.fetch_steps == 1 and trainer.global_step == 3 * trainer.num_training_batches


class GradientReader(L.Callback):
    """Reads the gradients before every optimiser step, as a gradient-norm logger would."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        self.norms.append(float(sum(p.grad.norm() for p in module.parameters() if p.grad is not None)))


def test_a_callback_on_step_hooks_sees_every_step_of_a_block(cifar_dir):
    one_reader, four_reader = GradientReader(), GradientReader()
    one, _, _ = fit(cifar_dir, 1, callbacks=[one_reader])
    four, trainer, _ = fit(cifar_dir, 4, callbacks=[four_reader])
    assert four.fetch_steps == 4 and not four.direct_steps  # blocks, each step through Lightning's hooks
    assert len(four_reader.norms) == trainer.global_step == 26
    assert four_reader.norms == one_reader.norms
    assert all(torch.equal(a, b) for a, b in zip(weights(one), weights(four), strict=True))


def test_ema_keeps_one_step_per_batch(cifar_dir):
    from litlab.ema import EMA

    model, trainer, _ = fit(cifar_dir, 4, callbacks=[EMA(every_n_steps=3)])
    assert model.fetch_steps == 1 and trainer.num_training_batches == 13


def test_resuming_across_modes_keeps_the_step_count(cifar_dir, tmp_path):
    """A checkpoint from one step per batch, resumed with blocks (e.g. saved before an upgrade)."""
    _, trainer, _ = fit(cifar_dir, 1, max_epochs=1)
    trainer.save_checkpoint(tmp_path / "one.ckpt")
    resumed, trainer, _ = fit(cifar_dir, 4, max_epochs=2, ckpt_path=str(tmp_path / "one.ckpt"))
    assert resumed.fetch_steps == 4 and trainer.global_step == 26
    trainer.save_checkpoint(tmp_path / "four.ckpt")
    back, trainer, _ = fit(cifar_dir, 1, max_epochs=3, ckpt_path=str(tmp_path / "four.ckpt"))
    assert back.fetch_steps == 1 and trainer.global_step == 39
