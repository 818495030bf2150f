"""A classifier checkpoint's predictions to ``predictions.csv``: one row per sample of a split, with its
index, the true label when the data has one, the predicted label and one probability per class."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from litlab.errors import ConfigError

SPLITS = ("test", "val")


def prediction_rows(probabilities: list[Any], labels: list[Any] | None) -> list[list[Any]]:
    import torch

    probs = torch.cat([p.float().cpu() for p in probabilities])
    if probs.dim() == 1:  # one logit (binary cross-entropy): P(class 1)
        probs = torch.stack([1 - probs, probs], dim=1)
    known = torch.cat([t.long().cpu() for t in labels]).tolist() if labels else [""] * len(probs)
    predicted = probs.argmax(1).tolist()
    return [
        [index, known[index], predicted[index], *(f"{p:.6g}" for p in row)]
        for index, row in enumerate(probs.tolist())
    ]


def predict(cfg: DictConfig) -> dict[str, Any]:
    import torch

    from litlab.checkpoints import check_data_fits, rebuild_model
    from litlab.data.base import class_names
    from litlab.gathered_predict import predict as gathered_predictions
    from litlab.models.base import ClassificationModule
    from litlab.pipeline import finish, hydra_overrides, start_tracking
    from litlab.utils.config import build, build_all
    from litlab.utils.report import close_loggers

    start = time.perf_counter()
    if cfg.get("split") not in SPLITS:
        raise ConfigError(f"split={cfg.get('split')!r} must be one of {SPLITS}")
    model, saved, path = rebuild_model(cfg.get("ckpt_path"), "ckpt_path", "; cannot rebuild the model")
    if not isinstance(model, ClassificationModule):
        raise ConfigError(
            f"ckpt_path={path} holds a {type(model).__name__}, not a classifier: predict.py needs a "
            "classifier's checkpoint (src/sample.py draws from a GAN)"
        )
    data_cfg = cfg.data if cfg.get("data") else saved.data
    if not cfg.get("data") and "data_dir" in data_cfg:
        data_cfg.data_dir = cfg.paths.data_dir  # the training machine's path may not exist here
    datamodule = build(data_cfg, "data")
    check_data_fits(model, datamodule, "ckpt_path", path)
    datamodule.predict_split = cfg.split
    output_dir = Path(cfg.paths.output_dir)
    start_tracking(cfg, output_dir)
    loggers = build_all(cfg.get("logger"), "logger")
    trainer = build(cfg.trainer, "trainer", logger=loggers or False)
    try:  # every sample once and in order, on one process or gathered from the ranks of a DDP run
        probabilities = [torch.tensor(gathered_predictions(trainer, model, datamodule))]
    finally:
        close_loggers()
    # the labels in the same (the split's own) order, read from the loader without the model
    labels = [model.unpack(batch)[1] for batch in datamodule.predict_dataloader()]
    rows = prediction_rows(
        probabilities, labels if getattr(datamodule, "predict_labels_known", True) else None
    )
    names = class_names(datamodule, model.hparams.num_classes)
    csv_path = output_dir / "predictions.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "label", "predicted", *(f"prob_{name}" for name in names)])
        writer.writerows(rows)
    result: dict[str, Any] = {
        "task_name": cfg.task_name,
        "overrides": hydra_overrides(),
        "ckpt_path": str(path),
        "split": cfg.split,
        "status": "completed",
        "predictions_csv": str(csv_path),
        "rows": len(rows),
        "wall_time_s": round(time.perf_counter() - start, 2),
    }
    if rows and rows[0][1] != "":  # labelled: the accuracy, where the results table shows it
        section = "test" if cfg.split == "test" else "final"
        result[section] = {f"{cfg.split}/acc": sum(r[1] == r[2] for r in rows) / len(rows)}
    finish(result, output_dir)
    return result
