"""What every logger gets besides the metrics: the parameter counts in its config, and the final
``metrics.json`` in the W&B run summary."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


def parameter_counts(module: torch.nn.Module) -> dict[str, int]:
    total = trainable = 0
    for parameter in module.parameters():
        if isinstance(parameter, torch.nn.parameter.UninitializedParameter):
            continue  # a lazy layer not yet run: it has no size to count
        total += parameter.numel()
        trainable += parameter.numel() if parameter.requires_grad else 0
    return {"total": total, "trainable": trainable, "frozen": total - trainable}


class ParameterCounts(L.Callback):
    """Logs ``params/{total,trainable,frozen}`` into every logger's config once, when training (or
    testing) starts: after the callbacks that freeze layers (a linear probe's backbone) have run."""

    def __init__(self) -> None:
        self.logged = False

    def _log(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.logged:
            return
        self.logged = True
        for logger in trainer.loggers:
            logger.log_hyperparams({"params": parameter_counts(pl_module)})

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(trainer, pl_module)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(trainer, pl_module)


def record_summary(loggers: list[Any], result: dict[str, Any]) -> None:
    """The run's final metrics.json (status, final, best and test metrics, times) into the W&B summary,
    where the runs table shows it; the traceback of a failed run stays in metrics.json."""
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            summary = {k: v for k, v in result.items() if k not in ("traceback", "predictions")}
            logger.experiment.summary.update(summary)
