"""Test-time augmentation: logits averaged over flipped and shifted views of an NCHW batch.

Any image classifier gets it through ``model.tta`` (val, test and predict only; training never sees it).

- ``none``: the plain forward pass.
- ``flip``: mean of the image and its horizontal mirror.
- ``flip_translate``: airbench's level 2: half the weight on ``flip`` of the image, half on the mean of
  ``flip`` of the image shifted by one pixel diagonally, both ways (reflect padding). Six
  views: the two unshifted ones weigh 1/4 each, the four shifted ones 1/8 each.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Forward = Callable[[torch.Tensor], torch.Tensor]
TTA_MODES = ("none", "flip", "flip_translate")


def flip_logits(forward: Forward, images: torch.Tensor) -> torch.Tensor:
    # one forward pass over both views: a batch twice as big is cheaper than two calls
    both = forward(torch.cat([images, images.flip(-1)])).float()
    return both.view(2, len(images), *both.shape[1:]).mean(0)


def shifted(images: torch.Tensor, pixels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch shifted by ``pixels`` along the diagonal, both ways, borders filled by reflection."""
    h, w = images.shape[-2:]
    padded = F.pad(images, (pixels,) * 4, mode="reflect")
    return padded[..., :h, :w], padded[..., 2 * pixels :, 2 * pixels :]


def tta_logits(forward: Forward, images: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "none":
        return forward(images)
    logits = flip_logits(forward, images)
    if mode == "flip":
        return logits
    up_left, down_right = shifted(images)
    translated = 0.5 * (flip_logits(forward, up_left) + flip_logits(forward, down_right))
    return 0.5 * logits + 0.5 * translated
