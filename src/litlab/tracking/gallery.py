"""Once per validation epoch, a classifier's predictions where a researcher looks: a grid of validation
images titled with their predicted and true labels, and the confusion matrix, to W&B and TensorBoard.

Cheap enough for ``callbacks=default``: nothing at all runs without a W&B or TensorBoard logger, on
ranks other than 0, for models that are not classifiers, or (images) for data that are not images.
The images are the first ``num_images`` of the first validation batch (the validation loader does not
shuffle, so the same images every epoch); the confusion matrix counts every validation prediction of
rank 0 with one ``bincount`` per batch on the device, read once per epoch.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from litlab.data.base import class_names

IMAGE_LOGGERS = ("WandbLogger", "TensorBoardLogger")


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """Normalised float images (N, C, H, W) -> uint8 (N, H, W, C), each stretched to its own range:
    right for any ``data.normalize`` without knowing its constants."""
    flat = images.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    scaled = (flat - low[:, None]) / (high - low).clamp_min(1e-8)[:, None]
    return scaled.mul(255).round().to(torch.uint8).view_as(images).permute(0, 2, 3, 1)


def render_examples(pixels: torch.Tensor, preds: list[int], targets: list[int], names: list[str]) -> Any:
    """The grid as one RGB array (H, W, 3), each image titled ``pred / true`` (red when wrong)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(pixels)
    cols = min(8, n)
    rows = (n + cols - 1) // cols
    figure, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.9 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= n:
            continue
        image = pixels[index].numpy()
        axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")
        right = preds[index] == targets[index]
        axis.set_title(
            f"{names[preds[index]]}\n({names[targets[index]]})", fontsize=7, color="black" if right else "red"
        )
    figure.suptitle("predicted (true)", fontsize=8)
    figure.tight_layout()
    figure.canvas.draw()
    array = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return array


def render_confusion(counts: torch.Tensor, names: list[str]) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    k = len(names)
    size = max(3.0, 0.45 * k + 1.5)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(counts.numpy(), cmap="Blues")
    axis.set_xticks(range(k), names, rotation=90, fontsize=7)
    axis.set_yticks(range(k), names, fontsize=7)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    top = counts.max().item() or 1
    for i in range(k):
        for j in range(k):
            value = int(counts[i, j])
            axis.text(
                j,
                i,
                value,
                ha="center",
                va="center",
                fontsize=6,
                color="white" if value > top / 2 else "black",
            )
    figure.tight_layout()
    figure.canvas.draw()
    array = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return array


class ValidationGallery(L.Callback):
    def __init__(self, num_images: int = 16, confusion_matrix: bool = True) -> None:
        self.num_images = num_images
        self.confusion_matrix = confusion_matrix
        self.active = False
        self.counts: torch.Tensor | None = None
        self.examples: tuple[torch.Tensor, list[int], list[int]] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        from litlab.models.base import ClassificationModule

        self.active = (
            stage == "fit"
            and trainer.is_global_zero
            and isinstance(pl_module, ClassificationModule)
            and any(type(logger).__name__ in IMAGE_LOGGERS for logger in trainer.loggers)
        )

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.counts, self.examples = None, None

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self.active or trainer.sanity_checking or not isinstance(outputs, dict):
            return
        preds, target = outputs["preds"].long(), outputs["target"].long()
        k = pl_module.hparams.num_classes
        if self.confusion_matrix:
            counts = torch.bincount(target * k + preds, minlength=k * k)
            self.counts = counts if self.counts is None else self.counts + counts
        inputs = pl_module.unpack(batch)[0]
        if self.examples is None and isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
            n = self.num_images
            self.examples = (inputs[:n].detach().float().cpu(), preds[:n].tolist(), target[:n].tolist())

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.active or trainer.sanity_checking:
            return
        names = class_names(trainer.datamodule, pl_module.hparams.num_classes)
        images: dict[str, Any] = {}
        if self.examples is not None:
            pixels, preds, targets = self.examples
            images["val/examples"] = render_examples(to_pixels(pixels), preds, targets, names)
        counts = None
        if self.counts is not None:
            counts = self.counts.cpu().view(len(names), len(names))
            images["val/confusion_matrix"] = render_confusion(counts, names)
        self.log_images(trainer, images, counts, names)

    def log_images(
        self, trainer: L.Trainer, images: dict[str, Any], counts: torch.Tensor | None, names: list[str]
    ) -> None:
        step = trainer.global_step
        for logger in trainer.loggers:
            kind = type(logger).__name__
            if kind == "TensorBoardLogger":
                for key, array in images.items():
                    logger.experiment.add_image(key, array, step, dataformats="HWC")
            elif kind == "WandbLogger":
                import wandb

                logged: dict[str, Any] = {key: wandb.Image(array) for key, array in images.items()}
                if counts is not None:
                    logged["val/confusion_table"] = confusion_table(counts, names)
                logger.experiment.log({**logged, "trainer/global_step": step})


def confusion_table(counts: torch.Tensor, names: list[str]) -> Any:
    """W&B's own confusion-matrix chart, from counts (wandb.plot.confusion_matrix wants every sample)."""
    import wandb

    rows = [[names[i], names[j], int(counts[i, j])] for i in range(len(names)) for j in range(len(names))]
    table = wandb.Table(columns=["Actual", "Predicted", "nPredictions"], data=rows)
    fields = {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"}
    return wandb.plot_table("wandb/confusion_matrix/v1", table, fields, {"title": "validation"})
