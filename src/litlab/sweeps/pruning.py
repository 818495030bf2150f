"""Optuna pruning from inside a job: report the monitored metric every epoch, stop a hopeless trial.

The sweeper (hydra_plugins.litlab_optuna_sweeper) adds this callback to each trial's job with the
study's storage, name and the trial's id, so a job in another process (joblib, submitit) reports to
the same SQLite study. A pruned trial raises ``optuna.TrialPruned``: the job ends at once (no epochs
wasted), its metrics.json says failed with ``TrialPruned`` as the error, and the sweeper tells Optuna
PRUNED instead of FAIL. Reports come from global rank 0 only: meant for single-process trials, the
usual Optuna job (a multi-GPU trial would stop rank 0 alone).
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L

PRUNED = "TrialPruned"


PRUNERS = ("none", "median", "hyperband")


def make_pruner(name: str, kwargs: dict[str, Any] | None = None) -> Any:
    """Median: stop a trial whose epoch-k value is worse than the median of earlier trials at epoch k.
    Hyperband: successive halving over several brackets of epoch budgets. Optuna does not store the
    pruner with the study, so the sweeper and each job's callback build the same one from this."""
    import optuna

    if name not in PRUNERS:
        raise ValueError(f"hydra.sweeper.pruner={name}: choose one of {PRUNERS}")
    if name == "median":
        return optuna.pruners.MedianPruner(**(kwargs or {}))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(**(kwargs or {}))
    return optuna.pruners.NopPruner()


class OptunaPruning(L.Callback):
    def __init__(
        self,
        storage: str,
        study_name: str,
        trial_id: int,
        monitor: str,
        pruner: str = "median",
        pruner_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.storage, self.study_name, self.trial_id, self.monitor = storage, study_name, trial_id, monitor
        self.pruner, self.pruner_kwargs = pruner, dict(pruner_kwargs or {})
        self._trial: Any = None

    def trial(self) -> Any:
        import optuna

        if self._trial is None:
            pruner = make_pruner(self.pruner, self.pruner_kwargs)
            study = optuna.load_study(study_name=self.study_name, storage=self.storage, pruner=pruner)
            self._trial = optuna.trial.Trial(study, self.trial_id)
        return self._trial

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import optuna

        if (
            trainer.sanity_checking
            or not trainer.is_global_zero
            or self.monitor not in trainer.callback_metrics
        ):
            return
        value = float(trainer.callback_metrics[self.monitor])
        if not math.isfinite(value):
            return  # a NaN run fails on its own; Optuna's pruners ignore NaN reports anyway
        epoch = trainer.current_epoch
        trial = self.trial()
        trial.report(value, step=epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(
                f"trial {trial.number} pruned after epoch {epoch + 1}: {self.monitor}={value:.4f}"
            )
