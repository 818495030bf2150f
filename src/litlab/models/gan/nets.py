"""Generator/discriminator pairs for the GAN family, chosen by ``model.arch``.

Discriminators end in a logit: the reference's sigmoid is folded into the loss
(``binary_cross_entropy_with_logits``), which is the same function but stable under bf16 autocast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
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


class ConditionalGenerator(nn.Module):
    """A generator told which class to draw: a one-hot class code joins the noise (cGAN, Mirza and
    Osindero 2014), so the first layer of the wrapped net takes latent_dim + num_classes inputs."""

    def __init__(self, net: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.net, self.num_classes = net, num_classes

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        code = F.one_hot(labels, self.num_classes).to(noise.dtype)
        return self.net(torch.cat([noise, code], dim=1))


class ProjectionDiscriminator(nn.Module):
    """A discriminator that judges "a real image of this class": its logit gains the inner product of a
    learned class embedding with its penultimate features (projection discriminator, Miyato and Koyama
    2018), which pushes the generator towards images its class clearly owns."""

    def __init__(self, net: nn.Sequential, num_classes: int) -> None:
        super().__init__()
        self.features, self.head = net[:-1], net[-1]
        self.embedding = nn.Embedding(num_classes, self.head.in_features)
        nn.init.normal_(self.embedding.weight, std=0.02)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        features = self.features(images)
        projection = (self.embedding(labels) * features).sum(dim=1, keepdim=True)
        return self.head(features) + projection


ARCHITECTURES: dict[str, Callable[[int, Sequence[int], int], tuple[nn.Module, nn.Module]]] = {
    "dense": dense_gan,
    "dcgan": dcgan,
}


def build_pair(
    arch: str, latent_dim: int, image_shape: Sequence[int], width: int, num_classes: int = 0
) -> tuple[nn.Module, nn.Module]:
    """The pair for ``arch``; with ``num_classes`` > 0, class-conditional (G(z, y) and D(x, y))."""
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown model.arch {arch!r} for a GAN; choose one of {sorted(ARCHITECTURES)}")
    if len(image_shape) != 3:
        raise ConfigError(f"a GAN needs image data (C, H, W), got shape {tuple(image_shape)}")
    if num_classes <= 0:
        return ARCHITECTURES[arch](latent_dim, image_shape, width)
    generator, discriminator = ARCHITECTURES[arch](latent_dim + num_classes, image_shape, width)
    return ConditionalGenerator(generator, num_classes), ProjectionDiscriminator(discriminator, num_classes)
