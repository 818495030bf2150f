"""Quality scores for generated images, measured with a litlab classifier instead of Inception.

Inception features mean little on 28x28 grey digits; an MNIST classifier's penultimate layer does.
  * FID in that feature space (torchmetrics' FrechetInceptionDistance with a custom extractor);
  * mean top-class confidence: do the samples look like *some* digit;
  * normalised entropy of the predicted-class histogram: 1 = every class equally often (full mode
    coverage), 0 = one class only (mode collapse).
All functions take uint8 image tensors (N, C, H, W), the form real data and saved PNGs share.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from litlab.errors import ConfigError


class ClassifierFeatures(nn.Module):
    """uint8 images -> a classifier's penultimate-layer features (the input of its last Linear)."""

    def __init__(self, net: nn.Sequential, to_float: nn.Module | None = None) -> None:
        super().__init__()
        if not isinstance(net, nn.Sequential) or not isinstance(net[-1], nn.Linear):
            raise ConfigError(
                "the scoring classifier must be an nn.Sequential ending in nn.Linear (mlp, cnn)"
            )
        self.body, self.head = net[:-1], net[-1]
        self.to_float = to_float or UnitScale()
        self.num_features = self.head.in_features  # read by torchmetrics instead of probing
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(self.to_float(images)).float()

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        chunks = [self.head(self(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
        return torch.cat(chunks).softmax(-1)


class UnitScale(nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.float() / 255.0


class DataModuleScale(nn.Module):
    """The normalisation the classifier was trained with, taken from its own DataModule."""

    def __init__(self, datamodule: object) -> None:
        super().__init__()
        self.datamodule = datamodule

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.datamodule.to_float(images)


@torch.no_grad()
def frechet_distance(
    features: nn.Module, real: torch.Tensor, fake: torch.Tensor, batch_size: int = 1000
) -> float:
    """FID between two uint8 image sets in the feature space of ``features``."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=features, normalize=False)
    for images, is_real in ((real, True), (fake, False)):
        for i in range(0, len(images), batch_size):
            metric.update(images[i : i + batch_size], real=is_real)
    return float(metric.compute())


def mean_confidence(probabilities: torch.Tensor) -> float:
    """Mean probability of the top class: near 1 when samples look like clear digits."""
    return float(probabilities.max(-1).values.mean())


def histogram_entropy(predictions: torch.Tensor, num_classes: int) -> float:
    """Entropy of the predicted-class histogram over log(num_classes): 1 for perfect coverage."""
    counts = torch.bincount(predictions.flatten(), minlength=num_classes).double()
    p = counts[counts > 0] / counts.sum()
    return max(0.0, float(-(p * p.log()).sum() / math.log(num_classes)))  # no -0.0 for one class


def quality_scores(features: ClassifierFeatures, fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """All three scores for ``fake`` images against the ``real`` reference set."""
    probabilities = features.probabilities(fake)
    return {
        "fid": frechet_distance(features, real, fake),
        "confidence": mean_confidence(probabilities),
        "class_entropy": histogram_entropy(probabilities.argmax(-1), probabilities.shape[-1]),
    }


def load_classifier(ckpt_path: str | Path, data_dir: str | Path) -> tuple[ClassifierFeatures, object]:
    """Rebuild a litlab classifier from its checkpoint; returns its features and its (set-up) DataModule."""
    from litlab.checkpoints import check_data_fits, rebuild_model
    from litlab.models.base import ClassificationModule
    from litlab.utils.config import build

    model, saved, path = rebuild_model(str(ckpt_path), "classifier_ckpt")
    if not isinstance(model, ClassificationModule):
        raise ConfigError(f"classifier_ckpt={path} is not a classifier; train one with model=cnn data=mnist")
    saved.data.data_dir = str(data_dir)
    datamodule = build(saved.data, "data")
    check_data_fits(model, datamodule, "classifier_ckpt", path)
    datamodule.setup("test")
    return ClassifierFeatures(model.net, DataModuleScale(datamodule)), datamodule
