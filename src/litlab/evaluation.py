"""Testing a saved checkpoint: the model is rebuilt from the config stored inside it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from litlab.checkpoints import load_litlab_checkpoint
from litlab.pipeline import finish, hydra_overrides, scalars
from litlab.utils.config import build, build_all
from litlab.utils.report import close_loggers


def load_run_config(ckpt_path: str | None) -> tuple[Path, DictConfig]:
    path, checkpoint = load_litlab_checkpoint(ckpt_path, "ckpt_path", "; cannot rebuild the model")
    return path, OmegaConf.create(checkpoint["litlab_config"])


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    start = time.perf_counter()
    path, saved = load_run_config(cfg.get("ckpt_path"))
    data_cfg = cfg.data if cfg.get("data") else saved.data
    if not cfg.get("data") and "data_dir" in data_cfg:
        data_cfg.data_dir = cfg.paths.data_dir  # the training machine's path may not exist here
    datamodule = build(data_cfg, "data")
    model = build(
        saved.model, "model", num_classes=datamodule.num_classes, input_shape=list(datamodule.input_shape)
    )
    loggers = build_all(cfg.get("logger"), "logger")
    trainer = build(cfg.trainer, "trainer", logger=loggers or False)
    try:
        metrics = trainer.test(model, datamodule=datamodule, ckpt_path=str(path), verbose=False)[0]
    finally:
        close_loggers()
    result = {
        "task_name": cfg.task_name,
        "overrides": hydra_overrides(),
        "ckpt_path": str(path),
        "status": "completed",
        "test": scalars(metrics),
        "wall_time_s": round(time.perf_counter() - start, 2),
    }
    finish(result, Path(cfg.paths.output_dir))
    return result
