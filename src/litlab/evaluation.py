"""Testing a saved checkpoint: the model is rebuilt from the config stored inside it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from litlab.checkpoints import check_data_fits, rebuild_model
from litlab.pipeline import finish, hydra_overrides, scalars, start_tracking
from litlab.utils.config import build, build_all
from litlab.utils.report import close_loggers


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    start = time.perf_counter()
    model, saved, path = rebuild_model(cfg.get("ckpt_path"), "ckpt_path", "; cannot rebuild the model")
    data_cfg = cfg.data if cfg.get("data") else saved.data
    if not cfg.get("data") and "data_dir" in data_cfg:
        data_cfg.data_dir = cfg.paths.data_dir  # the training machine's path may not exist here
    datamodule = build(data_cfg, "data")
    check_data_fits(model, datamodule, "ckpt_path", path)
    start_tracking(cfg, Path(cfg.paths.output_dir))
    loggers = build_all(cfg.get("logger"), "logger")
    trainer = build(cfg.trainer, "trainer", logger=loggers or False)
    try:
        metrics = trainer.test(model, datamodule=datamodule, verbose=False)[0]
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
