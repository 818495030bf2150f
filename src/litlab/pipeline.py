"""What ``train.py`` and ``eval.py`` do, kept out of the entry points so tests and tools can call it."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerStatus
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from litlab.callbacks import INTERRUPTED, RunState
from litlab.checkpoint_io import AtomicCheckpointIO
from litlab.checkpoints import check_checkpoint_fits
from litlab.distributed import install_hydra_relaunch, isolated_job
from litlab.errors import ConfigError
from litlab.utils.config import build, build_all
from litlab.utils.report import close_loggers, print_results


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
    callbacks = build_all(cfg.get("callbacks"), "callbacks")
    callbacks.append(RunState(OmegaConf.to_container(cfg, resolve=True), output_dir / "checkpoints"))
    loggers = build_all(cfg.get("logger"), "logger")
    options: dict[str, Any] = {}
    # checkpoints come from the callbacks config alone: callbacks=none gets no Lightning default
    if cfg.trainer.get("enable_checkpointing") is None:
        options["enable_checkpointing"] = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    # checkpoints written atomically beside their target (Lightning's go through $TMPDIR), unless
    # the config brings its own plugins (+trainer.plugins=...)
    if not cfg.trainer.get("plugins"):
        options["plugins"] = [AtomicCheckpointIO()]
    trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False, **options)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return datamodule, model, trainer


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
            predictions = trainer.predict(model, datamodule=datamodule)
            result["predictions"] = torch.cat(predictions).tolist()
    except SystemExit as stop:  # Lightning turns Ctrl-C and SIGTERM into SystemExit after RunState saved
        if trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        signal_name = "SIGTERM" if isinstance(stop, SIGTERMException) else "SIGINT"
        result.update(status="interrupted", signal=signal_name, epochs=trainer.current_epoch)
        result.update(
            global_step=trainer.global_step, ckpt_path=str(output_dir / "checkpoints" / INTERRUPTED)
        )
        finish(result, output_dir)
        raise SystemExit(143 if signal_name == "SIGTERM" else 130) from None
    finally:
        close_loggers()
    result.update(status="completed", epochs=trainer.current_epoch, global_step=trainer.global_step)
    result["threads"] = torch.get_num_threads()
    result["visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")  # a parallel sweep's GPU per job
    result["wall_time_s"] = round(time.perf_counter() - start, 2)
    finish(result, output_dir)
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
def finish(result: dict[str, Any], output_dir: Path) -> None:
    write_metrics(result, output_dir)
    print_results(result)


def write_metrics(result: dict[str, Any], output_dir: Path) -> Path:
    """metrics.json is what sweeps, reports and resume read: written atomically, last."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "metrics.json"
    partial = path.with_suffix(".json.part")
    partial.write_text(json.dumps(result, indent=2, default=str))
    partial.replace(path)
    return path


@rank_zero_only
def record_failure(cfg: DictConfig, error: BaseException) -> None:
    """A failed job leaves metrics.json with status=failed and the error, for sweeps and reports. An
    Optuna trial stopped by its pruner (``TrialPruned``) is status=pruned: stopped early on purpose."""
    output_dir = Path(cfg.paths.output_dir)
    write_metrics(
        {
            "task_name": cfg.task_name,
            "overrides": hydra_overrides(),
            "seed": cfg.get("seed"),
            "status": "pruned" if type(error).__name__ == "TrialPruned" else "failed",
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exception(error)[-12:],
        },
        output_dir,
    )


def run_entry_point(task: Any, cfg: DictConfig) -> Any:
    """Run ``task``; turn known user errors into one line. In a multirun a failure is recorded and the sweep goes on."""
    from litlab.errors import LitlabError
    from litlab.sweeps.jobs import (
        apply_gpu,
        apply_threads,
        finished_result,
        interrupted_checkpoint,
        requeued,
    )

    multirun = HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN"
    output_dir = Path(cfg.paths.output_dir)
    if cfg.get("resume") or requeued():
        if done := finished_result(output_dir):
            print(f"litlab: resume: {output_dir} already completed, skipped", file=sys.stderr)
            return done
        if cfg.get("ckpt_path") is None and (last := interrupted_checkpoint(output_dir)):
            print(f"litlab: resume: continuing the interrupted job from {last}", file=sys.stderr)
            cfg.ckpt_path = str(last)
    try:
        apply_threads(cfg.get("threads"))
        apply_gpu(str((cfg.get("trainer") or {}).get("accelerator", "auto")))
        with isolated_job():
            return task(cfg)
    except Exception as error:
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
