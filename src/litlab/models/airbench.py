"""airbench-style CIFAR net (Keller Jordan's airbench94): each of its tricks is a switch, for ablations.

The net: a 2x2 patch-whitening conv, then three groups of (conv, maxpool, BN, GELU, conv, BN, GELU),
a global max-pool and a bias-free linear head whose logits are scaled down. The tricks:

- ``whiten``: the first conv is frozen at the eigenvectors of the training images' 2x2-patch
  covariance, scaled by 1/sqrt(eigenvalue) (plus their negatives), so its output patches are white.
  Computed in ``on_fit_start`` from ``trainer.datamodule.train_images``. Off: an ordinary trainable conv.
- ``dirac_init``: each conv starts as an identity on its first ``c_in`` output channels (plus the
  default random init elsewhere), so a fresh deep net passes its input through.
- ``bn_fixed_weight``: BatchNorm scales stay frozen at 1; only the shifts train (at lr x ``bias_lr_factor``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from litlab.errors import ConfigError
from litlab.models.base import ClassificationModule

WHITEN_EPS = 5e-4  # airbench's eigenvalue floor: keeps near-zero-variance directions from blowing up


def patches(images: torch.Tensor, size: int) -> torch.Tensor:
    """Every ``size`` x ``size`` patch of an NCHW batch, flattened to rows of C*size*size."""
    c = images.shape[1]
    unfolded = images.unfold(2, size, 1).unfold(3, size, 1)  # N, C, H', W', size, size
    return unfolded.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * size * size).float()


def whitening_filters(images: torch.Tensor, size: int, eps: float = WHITEN_EPS) -> torch.Tensor:
    """Conv filters (2*C*size^2, C, size, size) that whiten the patches: eigenvectors of the patch
    second-moment matrix over sqrt(eigenvalue + eps), then the same filters negated (so that the
    GELU after them keeps both signs)."""
    rows = patches(images, size)
    covariance = rows.T @ rows / len(rows)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    c = images.shape[1]
    filters = (eigenvectors.T / (eigenvalues[:, None] + eps).sqrt()).flip(0).reshape(-1, c, size, size)
    return torch.cat([filters, -filters])


class ConvGroup(nn.Module):
    """conv, maxpool 2, BN, GELU, conv, BN, GELU: one resolution stage of airbench."""

    def __init__(self, c_in: int, c_out: int, bn_momentum: float, bn_fixed_weight: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding="same", bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = self.batch_norm(c_out, bn_momentum, bn_fixed_weight)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding="same", bias=False)
        self.norm2 = self.batch_norm(c_out, bn_momentum, bn_fixed_weight)
        self.act = nn.GELU()

    @staticmethod
    def batch_norm(channels: int, momentum: float, fixed_weight: bool) -> nn.BatchNorm2d:
        norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=momentum)
        norm.weight.requires_grad_(not fixed_weight)
        return norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def airbench_net(
    in_channels: int,
    outputs: int,
    widths: Sequence[int],
    bn_momentum: float,
    bn_fixed_weight: bool,
    dirac_init: bool,
    scale: float,
    whiten_size: int = 2,
) -> nn.Sequential:
    whiten_width = 2 * in_channels * whiten_size**2
    channels = [whiten_width, *widths]
    net = nn.Sequential(
        nn.Conv2d(in_channels, whiten_width, whiten_size, padding=0, bias=True),
        nn.GELU(),
        *(
            ConvGroup(a, b, bn_momentum, bn_fixed_weight)
            for a, b in zip(channels, channels[1:], strict=False)
        ),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(channels[-1], outputs, bias=False),
        Scale(scale),
    )
    if dirac_init:
        for group in net[2:-4]:
            for conv in (group.conv1, group.conv2):
                with torch.no_grad():
                    nn.init.dirac_(conv.weight[: conv.in_channels])
    return net


class AirbenchClassifier(ClassificationModule):
    def __init__(
        self,
        widths: Sequence[int] = (64, 256, 256),
        whiten: bool = True,
        whiten_images: int = 5000,
        whiten_bias_epochs: int = 3,
        dirac_init: bool = True,
        bn_fixed_weight: bool = True,
        bn_momentum: float = 0.4,
        bias_lr_factor: float = 64.0,
        scale: float = 1 / 9,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        if len(self.input_shape) != 3 or min(self.input_shape[1:]) < 2 ** (len(widths) + 1):
            raise ConfigError(
                f"model=airbench needs images large enough for {len(widths)} poolings, got {self.input_shape}"
            )
        self.net = airbench_net(
            self.input_shape[0], self.num_outputs, widths, bn_momentum, bn_fixed_weight, dirac_init, scale
        )
        self.net[0].weight.requires_grad_(not whiten)
        # persistent: a resumed or evaluated checkpoint keeps its filters instead of recomputing them
        self.register_buffer("whitened", torch.tensor(False))

    def on_fit_start(self) -> None:
        if not self.hparams.whiten or bool(self.whitened):
            return
        datamodule = self.trainer.datamodule
        if not hasattr(datamodule, "train_images"):
            raise ConfigError(
                "model.whiten=true needs an image data module with train_images() (cifar10, mnist)"
            )
        images = datamodule.train_images(self.hparams.whiten_images).to(self.device)
        conv = self.net[0]
        with torch.no_grad():
            conv.weight.copy_(whitening_filters(images, conv.kernel_size[0]))
        self.whitened.fill_(True)

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        """airbench trains the whitening layer's bias for a few epochs only, then freezes it. Frozen
        by dropping its (all-reduced) gradient, not by ``requires_grad``: DDP registered the bias as
        trainable and would wait for a gradient that never comes. A ``None`` gradient is skipped by
        the optimiser, momentum and weight decay included, as a frozen parameter is."""
        if self.current_epoch >= self.hparams.whiten_bias_epochs:
            self.net[0].bias.grad = None

    def parameter_groups(self) -> list[dict[str, Any]]:
        """BatchNorm shifts at lr x ``bias_lr_factor`` (airbench's bias_scaler), everything else at lr.
        ``_BatchNorm`` also matches the SyncBatchNorm that Lightning swaps in under DDP."""
        norm_biases = {
            id(m.bias)
            for m in self.net.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.bias.requires_grad
        }
        # frozen parameters stay in the groups: they get no gradient, so the optimiser skips them
        rest = [p for p in self.parameters() if id(p) not in norm_biases]
        biases = [p for p in self.parameters() if id(p) in norm_biases]
        factor = self.hparams.bias_lr_factor
        if factor == 1.0 or not biases:
            return [{"params": rest + biases}]
        return [{"params": rest}, {"params": biases, "lr_factor": factor}]
