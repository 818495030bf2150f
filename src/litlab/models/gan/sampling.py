"""What ``sample.py`` does: sample grids from a GAN checkpoint and, given a classifier, quality scores."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from litlab.checkpoints import rebuild_model
from litlab.errors import ConfigError
from litlab.metrics.gan_scores import load_classifier, quality_scores
from litlab.models.gan.module import GAN
from litlab.pipeline import finish, hydra_overrides
from litlab.utils.images import make_grid, save_grid


def load_gan(ckpt_path: str | None) -> GAN:
    """Rebuild a GAN from the config stored in its checkpoint, with the generator in eval mode."""
    model, _, path = rebuild_model(ckpt_path, "ckpt_path", "; cannot rebuild the model")
    if not isinstance(model, GAN):
        raise ConfigError(
            f"ckpt_path={path} holds a {type(model).__name__}, not a GAN; pass a model=gan/dcgan run"
        )
    return model.eval()


def per_class_grid(
    images: torch.Tensor, predictions: torch.Tensor, num_classes: int, per_row: int
) -> torch.Tensor:
    """One row per class, filled with samples the classifier assigns to it (blank where it found too few)."""
    rows = []
    for cls in range(num_classes):
        chosen = images[predictions == cls][:per_row]
        blank = torch.full((per_row - len(chosen), *images.shape[1:]), 255, dtype=torch.uint8)
        rows.append(torch.cat([chosen, blank]))
    return make_grid(torch.cat(rows), nrow=per_row)


def sample(cfg: DictConfig) -> dict[str, Any]:
    start = time.perf_counter()
    if cfg.n < 1:
        raise ConfigError(f"n={cfg.n}: ask for at least one sample")
    gan = load_gan(cfg.ckpt_path)
    conditional = bool(gan.hparams.conditional)
    if cfg.per_class and not cfg.classifier_ckpt and not conditional:
        raise ConfigError(
            "per_class=true sorts samples by class, which needs a classifier for an unconditional GAN: "
            "pass classifier_ckpt=<an MNIST classifier .ckpt from train.py model=cnn data=mnist>"
        )
    if cfg.get("seed") is not None:
        torch.manual_seed(cfg.seed)
    output_dir = Path(cfg.paths.output_dir)
    nrow = cfg.nrow or (gan.hparams.num_classes if conditional else None)  # conditional: a column per class
    grid_path = save_grid(
        make_grid(gan.generate(cfg.n, truncation=cfg.truncation), nrow=nrow),
        cfg.output or output_dir / "samples.png",
    )
    result: dict[str, Any] = {
        "task_name": cfg.task_name,
        "overrides": hydra_overrides(),
        "ckpt_path": str(cfg.ckpt_path),
        "grid": str(grid_path),
    }
    if cfg.classifier_ckpt:
        features, datamodule = load_classifier(cfg.classifier_ckpt, cfg.paths.data_dir)
        fake = gan.generate(cfg.num_score, truncation=cfg.truncation)
        result["scores"] = quality_scores(features, fake, datamodule.splits["test"].tensors[0])
        result["num_score"] = cfg.num_score
        result["truncation"] = cfg.truncation
        if cfg.per_class and not conditional:
            predictions = features.probabilities(fake).argmax(-1)
            grid = per_class_grid(fake, predictions, datamodule.num_classes, cfg.per_class_n)
            result["per_class_grid"] = str(save_grid(grid, output_dir / "samples_per_class.png"))
    if cfg.per_class and conditional:  # row c: samples drawn as class c
        classes = gan.hparams.num_classes
        labels = torch.arange(classes).repeat_interleave(cfg.per_class_n)
        grid = make_grid(
            gan.generate(len(labels), labels=labels, truncation=cfg.truncation), nrow=cfg.per_class_n
        )
        result["per_class_grid"] = str(save_grid(grid, output_dir / "samples_per_class.png"))
    result.update(status="completed", wall_time_s=round(time.perf_counter() - start, 2))
    finish(result, output_dir)
    print(f"grid: {grid_path}", *(f"{k}: {v:.4f}" for k, v in result.get("scores", {}).items()), sep="\n")
    return result
