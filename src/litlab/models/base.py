"""The shared classification LightningModule: loss, accuracy, penalties, optimiser wiring, logging.

A family subclasses it, builds ``self.net`` from ``self.num_outputs`` and the input shape, and
overrides only what really differs (``unpack`` for batches that are not ``(x, y)``,
``parameter_groups`` for per-group learning rates).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torch.optim import Optimizer
from torchmetrics import MaxMetric
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy

from litlab.errors import ConfigError, NonFiniteLossError
from litlab.models.registry import loss_function, output_units
from litlab.models.tta import TTA_MODES, tta_logits

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
    ) -> None:
        super().__init__()
        # factories stay out of hparams so checkpoints hold only plain data (torch.load weights_only)
        self.save_hyperparameters(logger=False, ignore=["optimizer", "scheduler"])
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        if lr_scaling not in LR_SCALING:
            raise ConfigError(f"model.lr_scaling={lr_scaling!r} is not one of {sorted(LR_SCALING)}")
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
        # training loss/accuracy are plain running sums (loss*n, correct), logged once per epoch: a
        # torchmetrics update and two self.log calls per step are a large share of a small MLP's step
        self.register_buffer("train_loss_sum", torch.zeros((), dtype=torch.float64), persistent=False)
        self.register_buffer("train_correct", torch.zeros((), dtype=torch.int64), persistent=False)
        self.train_count = 0
        self.restored_best: torch.Tensor | None = None  # val_acc_best of the epochs before a resume
        # set by a non-finite loss on an accelerator, where steps do not read the loss (check_finite)
        self.register_buffer("nonfinite", torch.zeros((), dtype=torch.bool), persistent=False)

    # --- what families may override ----------------------------------------------------------
    def unpack(self, batch: Any) -> tuple[Any, torch.Tensor]:
        return batch[0], batch[1]

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimiser parameter groups. A group's ``lr_factor`` multiplies the configured lr
        (``configure_optimizers`` applies it); no group sets an ``lr`` of its own."""
        return [{"params": list(self.parameters())}]

    def forward(self, inputs: Any) -> torch.Tensor:
        net = self.__dict__.get("compiled_net", self.net)
        if isinstance(inputs, tuple):  # a net of several inputs, e.g. an RNN's (tokens, lengths)
            return net(*inputs)
        if self.hparams.channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return net(inputs)

    # --- the shared step ---------------------------------------------------------------------
    def setup(self, stage: str) -> None:
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

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss, preds, target = self.model_step(batch)
        self.check_finite(loss)
        count = target.shape[0]
        # in place and without indexing: each `sums[i] += x` is a select, an add and a copy back
        self.train_loss_sum.add_(loss.detach(), alpha=count)
        self.train_correct.add_((preds == target).sum())
        self.train_count += count
        if batch_idx % self.trainer.log_every_n_steps == 0:
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

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        loss, preds, target = self.model_step(batch)
        self.val_acc(preds, target)
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True)
        return {"preds": preds, "target": target}  # for callbacks (the validation gallery)

    def on_train_start(self) -> None:
        self.val_acc_best.reset()  # forget the sanity check's score
        if self.restored_best is not None:  # ... but not the epochs before a resume
            self.val_acc_best.update(self.restored_best.to(self.device))

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
        """Stop at the first non-finite loss. Where reading the loss stalls the device (anything but the
        CPU), steps only OR a flag on the device; it is read every 50 steps and before any checkpoint
        is written (``on_save_checkpoint``), so a diverged step never reaches a checkpoint."""
        if self.loss_read_is_cheap:
            if not math.isfinite(loss.item()):  # one host read of the loss
                self.raise_nonfinite(f"loss became {loss.item()}")
            return
        self.nonfinite.logical_or_(~torch.isfinite(loss.detach()))
        if self.global_step % 50 == 0:
            self.raise_if_flagged()

    @property
    def loss_read_is_cheap(self) -> bool:
        return self.device.type == "cpu"

    def raise_if_flagged(self) -> None:
        if bool(self.nonfinite):
            self.raise_nonfinite("loss became non-finite")

    def raise_nonfinite(self, what: str) -> None:
        raise NonFiniteLossError(
            f"{what} at epoch {self.current_epoch}, step {self.global_step}: training diverged. "
            "Lower model.optimizer.lr, set trainer.gradient_clip_val=1.0, or use trainer.precision=32-true; "
            "checkpoints saved before this point are kept"
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.raise_if_flagged()  # before the file is written
        # the epoch's running sums and the best accuracy so far are not in the state dict: saved here,
        # a run resumed inside an epoch logs the same train/loss, train/acc and val/acc_best
        checkpoint["litlab_epoch_sums"] = {
            "loss_sum": self.train_loss_sum.detach().cpu(),
            "correct": self.train_correct.detach().cpu(),
            "count": self.train_count,
            "val_acc_best": self.val_acc_best.compute().detach().cpu()
            if self.val_acc_best.update_count
            else None,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        sums = checkpoint.get("litlab_epoch_sums")
        if sums is None:
            return
        self.train_loss_sum.copy_(sums["loss_sum"])
        self.train_correct.copy_(sums["correct"])
        self.train_count = sums["count"]
        self.restored_best = sums["val_acc_best"]

    # --- optimiser wiring --------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameter_groups())
        # the one place a learning rate is set: model.optimizer.lr x the group's lr_factor x
        # model.lr_scaling in the number of processes (explicit, never silent)
        scaling = LR_SCALING[self.hparams.lr_scaling](self.trainer.world_size if self._trainer else 1)
        for group in optimizer.param_groups:
            group["lr"] *= group.get("lr_factor", 1.0) * scaling
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(
            optimizer, total_steps=int(self.trainer.estimated_stepping_batches)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
