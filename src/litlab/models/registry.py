"""Building blocks chosen by name from the CLI: activations and losses."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from litlab.errors import ConfigError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _cross_entropy(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    if logits.shape[-1] == 1:
        raise ConfigError("loss=cross_entropy needs >= 2 outputs; use loss=bce for a single logit")
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)


def _mse(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """MSE between predicted probabilities and (smoothed) one-hot targets, the classic Keras pairing."""
    if logits.shape[-1] == 1:
        return F.mse_loss(torch.sigmoid(logits.squeeze(-1)), target.to(logits.dtype))
    return F.mse_loss(logits.softmax(-1), _one_hot(target, logits, label_smoothing))


def _bce(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    if logits.shape[-1] == 1:
        soft = target.to(logits.dtype) * (1 - label_smoothing) + 0.5 * label_smoothing
        return F.binary_cross_entropy_with_logits(logits.squeeze(-1), soft)
    return F.binary_cross_entropy_with_logits(logits, _one_hot(target, logits, label_smoothing))


def _one_hot(target: torch.Tensor, logits: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    classes = logits.shape[-1]
    hot = F.one_hot(target, classes).to(logits.dtype)
    return hot * (1 - label_smoothing) + label_smoothing / classes


LOSSES = {"cross_entropy": _cross_entropy, "mse": _mse, "bce": _bce}


def loss_function(name: str) -> Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]:
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]


def output_units(num_classes: int, loss: str) -> int:
    """A two-class problem trained with BCE gets one logit; everything else one logit per class."""
    return 1 if num_classes == 2 and loss == "bce" else num_classes
