"""CNN family: the reference CNN, the Keras-tutorial CNN and a residual CNN, one module for all three."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from litlab.errors import ConfigError
from litlab.models.base import ClassificationModule
from litlab.models.registry import activation as make_activation


def conv_bn_act(c_in: int, c_out: int, act: str, stride: int = 1, bn: bool = True) -> nn.Sequential:
    """3x3 conv + BatchNorm + activation; without BatchNorm the conv gets its bias back."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=not bn),
        nn.BatchNorm2d(c_out) if bn else nn.Identity(),
        make_activation(act),
    )


def reference_cnn(
    in_channels: int, outputs: int, act: str, dropout: float, width: int, bn: bool
) -> nn.Sequential:
    """conv 32, 32 s2, 64, 64 s2 (BatchNorm + LeakyReLU each), dense 128 + BatchNorm + dropout, dense out."""
    w = width
    return nn.Sequential(
        conv_bn_act(in_channels, w, act, bn=bn),
        conv_bn_act(w, w, act, stride=2, bn=bn),
        conv_bn_act(w, 2 * w, act, bn=bn),
        conv_bn_act(2 * w, 2 * w, act, stride=2, bn=bn),
        nn.Flatten(),
        nn.LazyLinear(128, bias=not bn),
        nn.BatchNorm1d(128) if bn else nn.Identity(),
        make_activation(act),
        nn.Dropout(dropout),
        nn.Linear(128, outputs),
    )


def keras_cnn(
    in_channels: int, outputs: int, act: str, dropout: float, width: int, bn: bool
) -> nn.Sequential:
    """The Keras tutorial CNN: conv32-pool-conv64-pool-conv64 (valid padding), dense 64; BatchNorm optional."""
    w = width

    def conv(c_in: int, c_out: int) -> list[nn.Module]:
        # no placeholder without BatchNorm: the tutorial net's state-dict keys stay as they were
        return (
            [nn.Conv2d(c_in, c_out, 3, bias=False), nn.BatchNorm2d(c_out)]
            if bn
            else [nn.Conv2d(c_in, c_out, 3)]
        )

    return nn.Sequential(
        *conv(in_channels, w),
        make_activation(act),
        nn.MaxPool2d(2),
        *conv(w, 2 * w),
        make_activation(act),
        nn.MaxPool2d(2),
        *conv(2 * w, 2 * w),
        make_activation(act),
        nn.Flatten(),
        nn.LazyLinear(64),
        make_activation(act),
        nn.Dropout(dropout),
        nn.Linear(64, outputs),
    )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, act: str, bn: bool = True) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_act(channels, channels, act, bn=bn), conv_bn_act(channels, channels, act, bn=bn)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def residual_cnn(
    in_channels: int, outputs: int, act: str, dropout: float, width: int, bn: bool
) -> nn.Sequential:
    """A ResNet-9-style net (prep, three pooled stages, two residual blocks): fast and accurate on CIFAR."""
    w = width
    return nn.Sequential(
        conv_bn_act(in_channels, w, act, bn=bn),
        conv_bn_act(w, 2 * w, act, bn=bn),
        nn.MaxPool2d(2),
        ResidualBlock(2 * w, act, bn),
        conv_bn_act(2 * w, 4 * w, act, bn=bn),
        nn.MaxPool2d(2),
        conv_bn_act(4 * w, 8 * w, act, bn=bn),
        nn.MaxPool2d(2),
        ResidualBlock(8 * w, act, bn),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(8 * w, outputs, bias=False),
    )


ARCHITECTURES = {"reference": reference_cnn, "keras": keras_cnn, "residual": residual_cnn}


class CNNClassifier(ClassificationModule):
    def __init__(
        self,
        arch: str = "reference",
        width: int = 32,
        activation: str = "leaky_relu",
        dropout: float = 0.5,
        batch_norm: bool = True,
        init: str = "torch",
        **base: Any,
    ) -> None:
        super().__init__(**base)
        if arch not in ARCHITECTURES:
            raise ConfigError(f"unknown model.arch {arch!r}; choose one of {sorted(ARCHITECTURES)}")
        if init not in ("torch", "keras"):
            raise ConfigError(f"unknown model.init {init!r}; choose torch or keras")
        if len(self.input_shape) != 3:
            raise ConfigError(f"model=cnn needs image input (C, H, W), got shape {self.input_shape}")
        self.net = ARCHITECTURES[arch](
            self.input_shape[0], self.num_outputs, activation, dropout, width, batch_norm
        )
        with torch.no_grad():  # materialise the lazy dense layer so checkpoints and optimisers see it
            self.net.eval()(torch.zeros(2, *self.input_shape))
            if init == "keras":  # Keras' defaults, for its recipes: Glorot-uniform kernels, zero biases
                for layer in self.net.modules():
                    if isinstance(layer, nn.Conv2d | nn.Linear):
                        nn.init.xavier_uniform_(layer.weight)
                        if layer.bias is not None:
                            nn.init.zeros_(layer.bias)
        self.net.train()
