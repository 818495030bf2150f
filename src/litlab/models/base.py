"""The shared classification LightningModule: loss, accuracy, penalties, optimiser wiring, logging.

A family subclasses it, builds ``self.net`` from ``self.num_outputs`` and the input shape, and
overrides only what really differs (``unpack`` for batches that are not ``(x, y)``,
``parameter_groups`` for per-group learning rates).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import lightning as L
import torch
from torch.optim import Optimizer
from torchmetrics import MaxMetric
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy

from litlab.errors import ConfigError, NonFiniteLossError
from litlab.models.blocks import loss_function, output_units
from litlab.models.stepping import direct_steps_possible, settle_steps_per_execution
from litlab.models.tta import TTA_MODES, tta_logits

# attributes set on every step that never hold a parameter, buffer or submodule
PLAIN_ATTRIBUTES = frozenset({"_current_fx_name", "train_count"})

SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]
LR_SCALING: dict[str, Callable[[int], float]] = {
    "none": lambda world: 1.0,
    "linear": lambda world: float(world),
    "sqrt": lambda world: world**0.5,
}


class ClassificationModule(L.LightningModule):
    def __init__(
        self,
        num_classes: int,
        input_shape: Sequence[int],
        optimizer: Callable[..., Optimizer],
        scheduler: SchedulerFactory | None = None,
        loss: str = "cross_entropy",
        label_smoothing: float = 0.0,
        l1: float = 0.0,
        l2: float = 0.0,
        channels_last: bool = False,
        compile: bool = False,
        lr_scaling: str = "none",
        tta: str = "none",
        steps_per_execution: int = 1,
    ) -> None:
        super().__init__()
        # factories stay out of hparams so checkpoints hold only plain data (torch.load weights_only)
        self.save_hyperparameters(logger=False, ignore=["optimizer", "scheduler"])
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        if lr_scaling not in LR_SCALING:
            raise ConfigError(f"model.lr_scaling={lr_scaling!r} is not one of {sorted(LR_SCALING)}")
        if steps_per_execution < 1:
            raise ConfigError(f"model.steps_per_execution={steps_per_execution} must be >= 1")
        self.fetch_steps = 1  # optimiser steps per Lightning batch, settled in setup("fit")
        self.direct_steps = False  # whether those steps may bypass Lightning's hooks, likewise
        self.criterion = loss_function(loss)
        self.num_outputs = output_units(num_classes, loss)
        self.input_shape = tuple(input_shape)
        if tta not in TTA_MODES or (tta != "none" and len(self.input_shape) != 3):
            raise ConfigError(
                f"model.tta={tta!r} must be one of {TTA_MODES}; views need image input (C, H, W)"
            )

        def accuracy() -> torch.nn.Module:
            return (
                BinaryAccuracy()
                if self.num_outputs == 1
                else MulticlassAccuracy(num_classes, average="micro")
            )

        self.val_acc, self.test_acc = accuracy(), accuracy()
        self.val_acc_best = MaxMetric()
        # training loss/accuracy are plain running sums (loss*n, correct): a torchmetrics update
        # and two self.log calls per step cost more than a small MLP's whole step on a CPU
        self.register_buffer("train_loss_sum", torch.zeros((), dtype=torch.float64), persistent=False)
        self.register_buffer("train_correct", torch.zeros((), dtype=torch.int64), persistent=False)
        self.train_count = 0

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets and restores _current_fx_name around every hook, about 40 times a step.
        # nn.Module.__setattr__ spends 2.4 us on each looking for a parameter, buffer or submodule
        # of that name; a plain value needs none of it (0.2 us): 0.09 ms a step saved here.
        if name in PLAIN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def automatic_optimization(self) -> bool:
        return self.fetch_steps == 1

    # --- what families may override ----------------------------------------------------------
    def unpack(self, batch: Any) -> tuple[Any, torch.Tensor]:
        return batch[0], batch[1]

    def parameter_groups(self) -> Iterable[torch.nn.Parameter] | list[dict[str, Any]]:
        return self.parameters()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.hparams.channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return self.__dict__.get("compiled_net", self.net)(inputs)

    # --- the shared step ---------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if stage == "fit" and self._trainer is not None:  # not when set up by hand, outside a fit
            self.fetch_steps = settle_steps_per_execution(self.trainer, self.hparams.steps_per_execution)
            self.direct_steps = self.fetch_steps > 1 and direct_steps_possible(self.trainer, self)
        if self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.hparams.compile and "compiled_net" not in self.__dict__:
            # kept out of the module tree (plain __dict__ entry): state-dict keys stay free of
            # `_orig_mod.`, so compiled and eager checkpoints load into each other
            self.__dict__["compiled_net"] = torch.compile(self.net)

    def logits(self, inputs: Any) -> torch.Tensor:
        """The forward pass; outside training averaged over ``model.tta`` views of the batch."""
        if self.training or self.hparams.tta == "none":
            return self(inputs).float()
        return tta_logits(self, inputs, self.hparams.tta).float()

    def model_step(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        inputs, target = self.unpack(batch)
        logits = self.logits(inputs)
        loss = self.criterion(logits, target, self.hparams.label_smoothing)
        preds = (logits.squeeze(-1) > 0).long() if self.num_outputs == 1 else logits.argmax(-1)
        return loss, preds, target

    def penalty(self) -> torch.Tensor | float:
        l1, l2 = self.hparams.l1, self.hparams.l2
        if not (l1 or l2):
            return 0.0
        weights = [p for p in self.parameters() if p.requires_grad and p.dim() > 1]
        total = torch.zeros((), device=self.device)
        if l1:
            total = total + l1 * sum(w.abs().sum() for w in weights)
        if l2:
            total = total + l2 * sum(w.pow(2).sum() for w in weights)
        return total

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        log = batch_idx % self.trainer.log_every_n_steps == 0
        if self.fetch_steps == 1:
            return self.step_loss(batch, log)
        optimizer, scheduler, max_steps = self.optimizers(), self.lr_schedulers(), self.trainer.max_steps
        # the counter behind global_step that Lightning's optimizer.step would advance
        progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        # what Lightning would do for each batch in turn
        for piece, step_batch in enumerate(self.trainer.datamodule.split_fetch(batch)):
            if 0 <= max_steps <= self.global_step:
                break
            loss = self.step_loss(step_batch, log and piece == 0)
            optimizer.zero_grad(set_to_none=True)
            if self.direct_steps:  # see stepping.direct_steps_possible
                loss.backward()
                progress.increment_ready()
                optimizer.optimizer.step()
                progress.increment_completed()
            else:
                self.manual_backward(loss)
                optimizer.step()
            if scheduler is not None:
                scheduler.step()
        return None

    def step_loss(self, batch: Any, log: bool) -> torch.Tensor:
        loss, preds, target = self.model_step(batch)
        self.check_finite(loss)
        count = target.shape[0]
        # in place and without indexing: each `sums[i] += x` is a select, an add and a copy back
        self.train_loss_sum.add_(loss.detach(), alpha=count)
        self.train_correct.add_((preds == target).sum())
        self.train_count += count
        if log:
            self.log("train/loss_step", loss, prog_bar=True)
        if self.hparams.l1 or self.hparams.l2:
            loss = loss + self.penalty()
        return loss

    def on_train_epoch_start(self) -> None:
        self.train_loss_sum.zero_()
        self.train_correct.zero_()
        self.train_count = 0

    def on_train_epoch_end(self) -> None:
        count = max(self.train_count, 1)
        self.log("train/loss", (self.train_loss_sum / count).float(), prog_bar=True, sync_dist=True)
        self.log("train/acc", (self.train_correct / count).float(), prog_bar=True, sync_dist=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        loss, preds, target = self.model_step(batch)
        self.val_acc(preds, target)
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True)

    def on_train_start(self) -> None:
        self.val_acc_best.reset()  # forget the sanity check's score
        self.carry_step_count()

    def carry_step_count(self) -> None:
        """Lightning counts optimiser steps in one tracker with automatic optimisation and in another
        with manual: a checkpoint saved with the other steps_per_execution mode (1 vs > 1, e.g. from
        before an upgrade) would restart global_step at 0. Carry its count into the tracker in use."""
        loop = self.trainer.fit_loop.epoch_loop
        automatic = loop.automatic_optimization.optim_progress.optimizer.step.total
        manual = loop.manual_optimization.optim_step_progress.total
        source, target = (automatic, manual) if self.fetch_steps > 1 else (manual, automatic)
        if target.completed < source.completed:
            target.ready = target.completed = source.completed

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        loss, preds, target = self.model_step(batch)
        self.test_acc(preds, target)
        self.log("test/loss", loss, on_epoch=True, sync_dist=True)
        self.log("test/acc", self.test_acc, on_epoch=True)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        inputs, _ = self.unpack(batch)
        logits = self.logits(inputs)
        return torch.sigmoid(logits.squeeze(-1)) if self.num_outputs == 1 else logits.softmax(-1)

    def check_finite(self, loss: torch.Tensor) -> None:
        """Stop at the first non-finite loss; on accelerators only every 50 steps (each check syncs)."""
        if self.device.type != "cpu" and self.global_step % 50:
            return
        if not math.isfinite(loss.item()):  # one read; isfinite + bool is two ops and 8 us more
            raise NonFiniteLossError(
                f"loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}: training diverged. "
                "Lower model.optimizer.lr, set trainer.gradient_clip_val=1.0, or use trainer.precision=32-true; "
                "checkpoints saved before this point are kept"
            )

    # --- optimiser wiring --------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameter_groups())
        factor = LR_SCALING[self.hparams.lr_scaling](self.trainer.world_size if self._trainer else 1)
        for group in optimizer.param_groups:  # explicit, never silent: model.lr_scaling=linear|sqrt
            group["lr"] *= factor
        if self.scheduler_factory is None:
            return optimizer
        total_steps = int(self.planned_steps())
        scheduler = self.scheduler_factory(optimizer, total_steps=total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def planned_steps(self) -> float:
        """Optimiser steps of the whole fit (Lightning's estimate counts batches, here blocks of K)."""
        trainer = self.trainer
        batches, max_steps = trainer.estimated_stepping_batches, trainer.max_steps
        if self.fetch_steps == 1 or math.isinf(batches):
            return batches
        # all blocks are full but an epoch's last; limit_train_batches counts blocks
        per_epoch = min(
            trainer.num_training_batches * self.fetch_steps, trainer.datamodule.train_steps_per_epoch()
        )
        total = per_epoch * max(trainer.max_epochs or 1, 1)
        return min(total, max_steps) if max_steps >= 0 else total
