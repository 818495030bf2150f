"""MLP family: flatten, then Linear -> [BatchNorm] -> activation -> [Dropout] per hidden layer.

With no hidden layers, one output and ``bias=False`` it is the reference NumPy perceptron.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import nn

from litlab.models.base import ClassificationModule
from litlab.models.registry import activation as make_activation


def mlp(
    in_features: int,
    hidden_sizes: Sequence[int],
    out_features: int,
    activation: str = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
    bias: bool = True,
) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for size in hidden_sizes:
        layers.append(nn.Linear(width, size, bias=bias and not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(size))
        layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, out_features, bias=bias))
    return nn.Sequential(*layers)


class MLPClassifier(ClassificationModule):
    def __init__(
        self,
        hidden_sizes: Sequence[int] = (100,),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        bias: bool = True,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.net = mlp(
            math.prod(self.input_shape),
            list(hidden_sizes),
            self.num_outputs,
            activation,
            dropout,
            batch_norm,
            bias,
        )
