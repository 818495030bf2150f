"""Generator/discriminator pairs for the GAN family, chosen by ``model.arch``.

Discriminators end in a logit: the reference's sigmoid is folded into the loss
(``binary_cross_entropy_with_logits``), which is the same function but stable under bf16 autocast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from litlab.errors import ConfigError

# Keras BatchNormalization(momentum=0.8) keeps 80 % of the running average: PyTorch's momentum is 1 - 0.8.
KERAS_BN = {"momentum": 0.2, "eps": 1e-3}


class Reshape(nn.Module):
    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], *self.shape)


def dense_gan(latent_dim: int, image_shape: Sequence[int], width: int) -> tuple[nn.Module, nn.Module]:
    """The reference dense GAN; width=64 gives G 100-256-512-1024-784 and D 784-512-256-1."""
    pixels = math.prod(image_shape)
    layers: list[nn.Module] = []
    size = latent_dim
    for hidden in (4 * width, 8 * width, 16 * width):
        layers += [nn.Linear(size, hidden), nn.LeakyReLU(0.2), nn.BatchNorm1d(hidden, **KERAS_BN)]
        size = hidden
    generator = nn.Sequential(*layers, nn.Linear(size, pixels), nn.Tanh(), Reshape(image_shape))
    discriminator = nn.Sequential(
        nn.Flatten(),
        nn.Linear(pixels, 8 * width),
        nn.LeakyReLU(0.2),
        nn.Linear(8 * width, 4 * width),
        nn.LeakyReLU(0.2),
        nn.Linear(4 * width, 1),
    )
    return generator, discriminator


def dcgan(latent_dim: int, image_shape: Sequence[int], width: int) -> tuple[nn.Module, nn.Module]:
    """A DCGAN: G upsamples a (4w, H/4, W/4) seed twice with stride-2 transposed convolutions and ends in a
    3x3 conv; D mirrors it with stride-2 convolutions. BatchNorm everywhere except D's input and both ends."""
    channels, height, wide = image_shape
    if height % 4 or wide % 4:
        raise ConfigError(f"model.arch=dcgan needs image sides divisible by 4, got {tuple(image_shape)}")
    w = width
    seed = (4 * w, height // 4, wide // 4)
    generator = nn.Sequential(
        nn.Linear(latent_dim, math.prod(seed), bias=False),
        nn.BatchNorm1d(math.prod(seed)),
        nn.ReLU(),
        Reshape(seed),
        nn.ConvTranspose2d(4 * w, 2 * w, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(2 * w),
        nn.ReLU(),
        nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(w),
        nn.ReLU(),
        nn.Conv2d(w, channels, 3, padding=1),
        nn.Tanh(),
    )
    discriminator = nn.Sequential(
        nn.Conv2d(channels, w, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(2 * w),
        nn.LeakyReLU(0.2),
        nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False),
        nn.BatchNorm2d(4 * w),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(math.prod(seed), 1),
    )
    return generator, discriminator


ARCHITECTURES: dict[str, Callable[[int, Sequence[int], int], tuple[nn.Module, nn.Module]]] = {
    "dense": dense_gan,
    "dcgan": dcgan,
}


def build_pair(
    arch: str, latent_dim: int, image_shape: Sequence[int], width: int
) -> tuple[nn.Module, nn.Module]:
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown model.arch {arch!r} for a GAN; choose one of {sorted(ARCHITECTURES)}")
    if len(image_shape) != 3:
        raise ConfigError(f"a GAN needs image data (C, H, W), got shape {tuple(image_shape)}")
    return ARCHITECTURES[arch](latent_dim, image_shape, width)
