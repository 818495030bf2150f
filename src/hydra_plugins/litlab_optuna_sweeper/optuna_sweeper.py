"""A small Optuna sweeper: persistent (SQLite) studies that resume, and failed trials that don't stop the study.

Why not hydra-optuna-sweeper: 1.3.0 supports Optuna 4, but a restarted search runs ``n_trials``
more and rewrites job dirs 0..n-1, and it cannot prune. Pruning here: ``pruner=median|hyperband``
adds litlab.sweeps.pruning.OptunaPruning to each trial's job. ``n_trials`` is the study's total: a
rerun of the same command (same sweep dir, same storage) runs only the trials still missing,
numbering new job dirs after the old ones. A job that returns NaN (litlab's failed jobs do) is told
to Optuna as FAIL and the study goes on.

Search space: the official plugin's override syntax, in ``hydra.sweeper.params`` or on the command
line: ``choice(a,b)``, ``range(1,5)``, ``interval(1e-4,1e-2)``, ``tag(log, interval(...))``,
``tag(int, interval(2,8))``. Optuna is imported only when a sweep runs: Hydra imports every plugin at
start-up.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)
SAMPLERS = ("tpe", "random")
PRUNERS = ("none", "median", "hyperband")


def distribution(override: Override) -> Any:
    """The Optuna distribution of one sweep override."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    if override.is_choice_sweep():
        assert isinstance(value, ChoiceSweep)
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if override.is_range_sweep():
        assert isinstance(value, RangeSweep)
        step = int(value.step or 1)
        return IntDistribution(int(value.start), int(value.stop) - step, step=step)
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep)
        log_scale = "log" in value.tags
        if "int" in value.tags:
            return IntDistribution(int(value.start), int(value.end), log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ValueError(f"{override.input_line}: use choice(), range() or interval() in an Optuna search")


class OptunaSweeper(Sweeper):
    def __init__(
        self,
        study_name: str,
        storage: str | None = None,
        direction: str = "maximize",
        n_trials: int = 20,
        n_jobs: int = 1,
        sampler: str = "tpe",
        seed: int | None = None,
        params: dict[str, str] | None = None,
        pruner: str = "none",
        pruner_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"hydra.sweeper.sampler={sampler}: choose one of {SAMPLERS}")
        if (
            pruner not in PRUNERS
        ):  # litlab.sweeps.pruning.PRUNERS, not imported here: Hydra loads plugins early
            raise ValueError(f"hydra.sweeper.pruner={pruner}: choose one of {PRUNERS}")
        self.pruner, self.pruner_kwargs = pruner, dict(pruner_kwargs or {})
        self.study_name, self.storage, self.direction = study_name, storage, direction
        self.n_trials, self.n_jobs, self.sampler, self.seed = n_trials, max(1, n_jobs), sampler, seed
        self.params = dict(params or {})

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def search_space(self, arguments: list[str]) -> tuple[dict[str, Any], list[str]]:
        lines = [f"{key}={value}" for key, value in self.params.items()] + list(arguments)
        space, fixed = {}, []
        for override in OverridesParser.create().parse_overrides(lines):
            if override.is_sweep_override():
                space[override.get_key_element()] = distribution(override)
            else:
                fixed.append(override.input_line)
        return space, fixed

    def open_study(self) -> Any:
        import optuna

        sampler_cls = optuna.samplers.TPESampler if self.sampler == "tpe" else optuna.samplers.RandomSampler
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self.storage,
            sampler=sampler_cls(seed=self.seed),
            direction=self.direction,
            pruner=self.make_pruner(),
            load_if_exists=True,
        )
        if self.seed is not None and study.trials:
            # a resumed study: the sampler's seed advanced by the trials asked so far, else it would
            # propose trial 0's parameters (and the ones after) again
            study.sampler = sampler_cls(seed=self.seed + len(study.trials))
        # trials left RUNNING by a killed search never finish: close them so they are asked again
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            log.warning(f"trial {trial.number} was interrupted: marked failed, it will be run again")
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        return study

    def make_pruner(self) -> Any:
        from litlab.sweeps.pruning import make_pruner

        return make_pruner(self.pruner, self.pruner_kwargs)

    def pruning_override(self, trial: Any) -> list[str]:
        """The job's callback that reports the optimised metric to this trial every epoch."""
        monitor = self.config.get("optimized_metric")
        if self.pruner == "none" or not monitor:
            return []
        fields = {
            "_target_": "litlab.sweeps.pruning.OptunaPruning",
            "storage": self.storage,
            "study_name": self.study_name,
            "trial_id": trial._trial_id,
            "monitor": monitor,
            "pruner": self.pruner,
            "pruner_kwargs": self.pruner_kwargs,
        }
        return [f"+callbacks.optuna_pruning={hydra_value(fields)}"]

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        space, fixed = self.search_space(arguments)
        study = self.open_study()
        done = [t for t in study.trials if t.user_attrs.get("status") in ("completed", "failed", "pruned")]
        log.info(f"Optuna study {self.study_name} ({self.storage}): {len(done)}/{self.n_trials} trials done")
        job_idx = len(study.trials)  # new job dirs follow the old ones: nothing is overwritten
        remaining = self.n_trials - len(done)
        while remaining > 0:
            try:
                trials = [study.ask(space) for _ in range(min(remaining, self.n_jobs))]
            except ValueError as error:  # the stored study was made with another search space
                raise ValueError(
                    f"{error} The study {self.study_name} in {self.storage} has a different search space: "
                    "keep the original params, or start a new study (hydra.sweep.dir=... or hydra.sweeper.study_name=...)"
                ) from error
            batch: Sequence[Sequence[str]] = [
                (
                    *fixed,
                    *(f"{key}={value}" for key, value in trial.params.items()),
                    *self.pruning_override(trial),
                )
                for trial in trials
            ]
            returns = self.launcher.launch(batch, initial_job_idx=job_idx)
            for trial, job in zip(trials, returns, strict=True):
                self.tell(study, trial, job, job_idx)
                job_idx += 1
            remaining -= len(trials)
        completed = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        summary: dict[str, Any] = {"study_name": self.study_name, "trials": len(study.trials)}
        if completed:
            summary.update(best_value=study.best_value, best_params=study.best_params)
            log.info(f"Best {self.direction} value {study.best_value:.4f} with {study.best_params}")
        OmegaConf.save(OmegaConf.create(summary), sweep_dir / "optimization_results.yaml")
        write_plots(study, sweep_dir)

    @staticmethod
    def tell(study: Any, trial: Any, job: Any, job_idx: int) -> None:
        import optuna

        try:
            value = float(job.return_value)
        except Exception as error:  # the job raised, or returned no number
            log.warning(f"trial {trial.number} (job {job_idx}) failed: {error}")
            value = math.nan
        trial.set_user_attr("job", job_idx)
        if pruned(job):
            trial.set_user_attr("status", "pruned")
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif math.isfinite(value):
            trial.set_user_attr("status", "completed")
            study.tell(trial, value)
        else:
            trial.set_user_attr("status", "failed")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)


def hydra_value(value: Any) -> str:
    """A Python value in Hydra's override syntax: dicts as {k:v}, strings quoted."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{hydra_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, str):
        return "'" + value.replace("'", "\\'") + "'"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


def pruned(job: Any) -> bool:
    """The job stopped on ``optuna.TrialPruned`` (its metrics.json records the error)."""
    import json

    try:
        output_dir = Path(job.hydra_cfg.hydra.runtime.output_dir)  # the job dir (cwd may be elsewhere)
        result = json.loads((output_dir / "metrics.json").read_text())
    except (AttributeError, OSError, TypeError, ValueError):
        return False
    return str(result.get("error", "")).startswith("TrialPruned")


def write_plots(study: Any, sweep_dir: Path) -> None:
    """optimization_history.png and param_importances.png in the sweep dir (when enough trials finished)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as vis

    def importances(study: Any) -> Any:  # PED-ANOVA is Optuna's own; fANOVA would need scikit-learn
        return vis.plot_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())

    for name, plot in (
        ("optimization_history", vis.plot_optimization_history),
        ("param_importances", importances),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                ax = plot(study)
        except Exception as error:  # too few completed trials, or a single parameter value
            log.warning(f"no {name}.png: {type(error).__name__}: {error}")
            continue
        figure = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        figure.set_size_inches(6, 4)
        figure.tight_layout()
        figure.savefig(sweep_dir / f"{name}.png", dpi=150)
        plt.close(figure)
