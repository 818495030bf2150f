"""EMA of the weights as a callback (``callbacks=[default,ema]``), with airbench's lookahead option.

Every ``every_n_steps`` optimiser steps the average moves towards the live weights:
``ema = decay_t * ema + (1 - decay_t) * live``, over every floating-point entry of the state dict
(BatchNorm running statistics included). ``decay_t = decay * progress ** ramp_power`` with
``progress = step / total steps``: with ``ramp_power > 0`` the average follows the live weights
closely early on and smooths more and more towards the end (airbench: 0.95**5, every 5 steps, power 3).
``lookahead=true`` then copies the average back into the live weights, so training continues from it.

Validation runs on the average (swapped in for the loop, swapped out after). Checkpoints hold the
average as the model's ``state_dict`` (what was validated, so ``best.ckpt``, ``eval.py`` and test see
it) and the live weights in the callback's state, which a resumed run trains on. When training
ends the model keeps the average.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


class EMAState:
    """The average of a module's state dict, keyed like it."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.weights = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module, decay: float) -> None:
        for key, live in module.state_dict().items():
            average = self.weights[key]
            if average.is_floating_point():
                average.lerp_(live.to(average.dtype), 1.0 - decay)
            else:  # counters such as num_batches_tracked: the live value
                average.copy_(live)

    @torch.no_grad()
    def copy_to(self, module: torch.nn.Module) -> None:
        for key, live in module.state_dict().items():
            live.copy_(self.weights[key])


class EMA(L.Callback):
    def __init__(
        self, decay: float = 0.95**5, every_n_steps: int = 5, ramp_power: float = 3.0, lookahead: bool = True
    ) -> None:
        if not 0.0 <= decay < 1.0 or every_n_steps < 1 or ramp_power < 0:
            raise ValueError("EMA needs 0 <= decay < 1, every_n_steps >= 1 and ramp_power >= 0")
        self.decay, self.every_n_steps = decay, every_n_steps
        self.ramp_power, self.lookahead = ramp_power, lookahead
        self.ema: EMAState | None = None
        self.live: dict[str, torch.Tensor] | None = None  # live weights while the average is swapped in
        self.resume_live: dict[str, torch.Tensor] | None = None

    def decay_at(self, step: int, total_steps: int) -> float:
        return self.decay * (step / max(1, total_steps)) ** self.ramp_power

    # --- training --------------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.resume_live is not None:  # resumed: the checkpoint's state_dict was the average
            pl_module.load_state_dict(self.resume_live)
            self.resume_live = None
        if self.ema is None:
            self.ema = EMAState(pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if self.ema is None or step % self.every_n_steps:
            return
        self.ema.update(pl_module, self.decay_at(step, int(trainer.estimated_stepping_batches)))
        if self.lookahead:
            self.ema.copy_to(pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.ema is not None:
            self.ema.copy_to(pl_module)

    # --- validation on the average ---------------------------------------------------------
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.ema is not None and trainer.state.fn == "fit":
            self.live = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            self.ema.copy_to(pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.live is not None:
            pl_module.load_state_dict(self.live)
            self.live = None

    # --- checkpoints -----------------------------------------------------------------------
    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self.ema is not None:
            live = self.live if self.live is not None else pl_module.state_dict()
            checkpoint["ema_live_state_dict"] = {k: v.detach().clone() for k, v in live.items()}
            checkpoint["state_dict"] = {k: v.clone() for k, v in self.ema.weights.items()}

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if "ema_live_state_dict" in checkpoint and trainer.state.fn == "fit":
            self.ema = EMAState(pl_module)  # the model was just loaded from the average
            self.resume_live = checkpoint["ema_live_state_dict"]
