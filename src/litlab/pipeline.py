"""What ``train.py`` and ``eval.py`` do, kept out of the entry points so tests and tools can call it."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerStatus
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException
from omegaconf import DictConfig, OmegaConf

from litlab.callbacks import INTERRUPTED, RunState
from litlab.checkpoint_io import AtomicCheckpointIO
from litlab.checkpoints import check_checkpoint_fits
from litlab.distributed import ddp_strategy, install_hydra_relaunch, isolated_job
from litlab.errors import ConfigError, DiskFullError, from_lightning_misuse
from litlab.gathered_predict import predict
from litlab.preemption import Preemption, cluster_plugins, preemption_of
from litlab.ranks import (
    clear_rank_errors,
    failure_record,
    global_rank,
    raise_if_a_rank_failed,
    write_rank_error,
)
from litlab.tracking.records import ParameterCounts, record_summary
from litlab.utils.config import build, build_all
from litlab.utils.config_tree import print_config_tree
from litlab.utils.disk import as_disk_full, write_text_with_fallback
from litlab.utils.report import as_tracking_error, close_loggers, print_results


def hydra_overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def build_run(
    cfg: DictConfig, output_dir: Path
) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Instantiate data, model, callbacks, loggers and trainer from the composed config."""
    seed = cfg.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ConfigError(f"seed={seed!r} must be an integer, or seed=null to skip seeding")
    if seed is not None:  # not `if cfg.seed`: seed 0 is a seed
        L.seed_everything(seed, workers=True, verbose=False)
    install_hydra_relaunch()
    datamodule = build(cfg.data, "data")
    model = build(
        cfg.model, "model", num_classes=datamodule.num_classes, input_shape=list(datamodule.input_shape)
    )
    provenance = start_tracking(cfg, output_dir)
    callbacks = build_all(cfg.get("callbacks"), "callbacks")
    callbacks.append(RunState(OmegaConf.to_container(cfg, resolve=True), output_dir / "checkpoints"))
    callbacks.append(Preemption())
    callbacks.append(ParameterCounts())
    loggers = build_all(cfg.get("logger"), "logger")
    options: dict[str, Any] = {}
    # checkpoints come from the callbacks config alone: callbacks=none gets no Lightning default
    if cfg.trainer.get("enable_checkpointing") is None:
        options["enable_checkpointing"] = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    # checkpoints written atomically beside their target (Lightning's go through $TMPDIR), unless
    # the config brings its own plugins (+trainer.plugins=...)
    if not cfg.trainer.get("plugins"):
        options["plugins"] = [AtomicCheckpointIO(), *cluster_plugins()]
    if (strategy := ddp_strategy(model, cfg.trainer.get("strategy"))) != cfg.trainer.get("strategy"):
        options["strategy"] = strategy
    trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False, **options)
    for logger in loggers:
        logger.log_hyperparams({**OmegaConf.to_container(cfg, resolve=True), "provenance": provenance})
    return datamodule, model, trainer


def start_tracking(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Provenance into the run dir (rank 0) and the run's tracker identity into the logger configs."""
    from litlab.tracking import identity, provenance

    ident = identity.identify(cfg, output_dir, hydra_overrides())
    record, patch = provenance.collect(ident.id)
    if rank_zero_only.rank == 0:
        provenance.write(output_dir, record, patch)
    identity.configure_loggers(cfg, ident)
    return record


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in sorted(metrics.items())
        if isinstance(v, int | float | torch.Tensor) and torch.as_tensor(v).numel() == 1
    }


def train(cfg: DictConfig) -> dict[str, Any]:
    start = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    datamodule, model, trainer = build_run(cfg, output_dir)
    result: dict[str, Any] = {
        "task_name": cfg.task_name,
        "overrides": hydra_overrides(),
        "seed": cfg.get("seed"),
    }
    check_checkpoint_fits(cfg.get("ckpt_path"), model)
    if not cfg.get("train", True) and cfg.get("ckpt_path") is None and cfg.get("test", True):
        say("train=false and no ckpt_path: testing the untrained, freshly initialised weights")
    try:
        if cfg.get("train", True):
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        result["final"] = scalars(trainer.callback_metrics)
        result["train_time_s"] = round(time.perf_counter() - start, 2)
        best = best_checkpoint(trainer)
        result["best"] = best
        if cfg.get("test", True):
            ckpt = best.get("ckpt_path") or (None if cfg.get("train", True) else cfg.get("ckpt_path"))
            result["test"] = scalars(
                trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False)[0]
            )
        if cfg.get("predict", False):
            result["predictions"] = predict(trainer, model, datamodule)
        result.update(status="completed", epochs=trainer.current_epoch, global_step=trainer.global_step)
        result["threads"] = torch.get_num_threads()
        result["visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")  # a parallel sweep's GPU per job
        result["wall_time_s"] = round(time.perf_counter() - start, 2)
        finish(result, output_dir, trainer.loggers)
    except SystemExit as stop:  # Lightning turns Ctrl-C and SIGTERM into SystemExit after RunState saved
        ctrl_c = stop.code == 1  # Lightning exits 1 after a KeyboardInterrupt
        if trainer.state.status != TrainerStatus.INTERRUPTED or not (
            ctrl_c or isinstance(stop, SIGTERMException)
        ):
            raise  # another exit, e.g. submitit requeueing after a SLURM signal outside fit: nothing saved
        run_state = next(c for c in trainer.callbacks if isinstance(c, RunState))
        signal_name = run_state.stop_signal or ("SIGTERM" if isinstance(stop, SIGTERMException) else "SIGINT")
        preemption = preemption_of(trainer)
        if preemption and preemption.signal_name:  # SLURM's time-limit / preemption warning
            signal_name = preemption.signal_name
        result.update(status="interrupted", signal=signal_name, epochs=trainer.current_epoch)
        result.update(
            global_step=trainer.global_step, ckpt_path=str(output_dir / "checkpoints" / INTERRUPTED)
        )
        finish(result, output_dir, trainer.loggers)
        if preemption:
            preemption.requeue()
        raise SystemExit(130 if signal_name == "SIGINT" else 143) from None
    finally:
        close_loggers()
    return result


def best_checkpoint(trainer: L.Trainer) -> dict[str, Any]:
    callback = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
    if callback is None or not (callback.best_model_path or callback.last_model_path):
        return {}
    score = callback.best_model_score
    return {  # no best with save_top_k=0: the test runs on the final weights
        "monitor": callback.monitor,
        "score": None if score is None else float(score),
        "ckpt_path": callback.best_model_path or None,
        "last_ckpt_path": callback.last_model_path or None,
    }


@rank_zero_only
def say(message: str) -> None:
    """One line on stderr for the user, from rank 0."""
    print(f"litlab: {message}", file=sys.stderr, flush=True)


@rank_zero_only
def finish(result: dict[str, Any], output_dir: Path, loggers: list[Any] = ()) -> None:
    """The table first, then metrics.json: a full disk loses neither (the record then goes to $TMPDIR
    or the cwd, and the run fails with one line saying so)."""
    print_results(result)
    record, full = write_metrics(result, output_dir)
    record_summary(list(loggers), result)
    if full is not None:
        full.record = record
        raise full


def write_metrics(result: dict[str, Any], output_dir: Path) -> tuple[Path, DiskFullError | None]:
    """metrics.json is what sweeps, reports and resume read: written atomically, last. Returns where
    it went, and the error of a full run directory (the record then lies elsewhere)."""
    path, full = write_text_with_fallback(
        output_dir / "metrics.json", json.dumps(result, indent=2, default=str)
    )
    if full is not None:
        print(f"litlab: metrics.json written to {path} instead (its run directory is full)", file=sys.stderr)
    return path, full


@rank_zero_only
def record_failure(cfg: DictConfig, error: BaseException) -> None:
    """A failed job leaves metrics.json with status=failed and the error, for sweeps and reports. An
    Optuna trial stopped by its pruner (``TrialPruned``) is status=pruned: stopped early on purpose.
    Under DDP the error is that of the rank that failed first (``litlab.ranks.failure_record``)."""
    output_dir = Path(cfg.paths.output_dir)
    write_metrics(
        {
            "task_name": cfg.task_name,
            "overrides": hydra_overrides(),
            "seed": cfg.get("seed"),
            "status": "pruned" if type(error).__name__ == "TrialPruned" else "failed",
            **failure_record(output_dir, error),
        },
        output_dir,
    )


def run_entry_point(task: Any, cfg: DictConfig) -> Any:
    """Run ``task``; turn known user errors into one line. In a multirun a failure is recorded and the sweep goes on."""
    from litlab.errors import LitlabError
    from litlab.sweeps.jobs import (
        apply_gpu,
        apply_threads,
        check_fresh_run_dir,
        finished_result,
        interrupted_checkpoint,
        requeued,
    )

    multirun = HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN"
    output_dir = Path(cfg.paths.output_dir)
    # DDP's extra ranks start in their job's directory on purpose (rank 0 checked it before them)
    if not (cfg.get("resume") or requeued()) and rank_zero_only.rank == 0:
        try:
            check_fresh_run_dir(output_dir, cfg.get("ckpt_path"))
        except ConfigError as error:  # nothing recorded: the directory is the other run's
            print(
                f"litlab: job {output_dir.name} failed: {error}" if multirun else f"error: {error}",
                file=sys.stderr,
            )
            if multirun:
                return None
            sys.exit(1)
    if cfg.get("resume") or requeued():
        if done := finished_result(output_dir):
            print(f"litlab: resume: {output_dir} already completed, skipped", file=sys.stderr)
            return done
        if cfg.get("ckpt_path") is None and (last := interrupted_checkpoint(output_dir)):
            print(f"litlab: resume: continuing the interrupted job from {last}", file=sys.stderr)
            cfg.ckpt_path = str(last)
    if OmegaConf.select(cfg, "extras.print_config", default=True):
        print_config_tree(cfg, output_dir)
    if global_rank() == 0:
        clear_rank_errors(output_dir)
    try:
        apply_threads(cfg.get("threads"))
        apply_gpu(str((cfg.get("trainer") or {}).get("accelerator", "auto")))
        with isolated_job():
            result = task(cfg)
        raise_if_a_rank_failed()
        return result
    except Exception as raised:
        # Lightning's word for a bad Trainer setting (limit_train_batches=0.01 of 54 batches, ...)
        error = from_lightning_misuse(raised) if isinstance(raised, MisconfigurationException) else raised
        error = as_disk_full(error) or as_tracking_error(error) or error  # one line, whatever raised it
        if global_rank() != 0:
            write_rank_error(output_dir, error)
        if getattr(error, "record", None) is None:  # not when the run's record was just written elsewhere
            record_failure(cfg, error)
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        if multirun:
            print(
                f"litlab: job {output_dir.name} failed: {type(error).__name__}: {message}",
                file=sys.stderr,
            )
            return None
        if isinstance(error, LitlabError):
            print(f"error: {message}", file=sys.stderr)
            sys.exit(1)
        raise
