"""Image grids for generated samples: one PNG on disk, the same tensor for TensorBoard and W&B."""

from __future__ import annotations

import math
from pathlib import Path

import torch


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats (a tanh generator's range) to uint8 pixels, rounded as a saved PNG would be."""
    return images.detach().float().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """uint8 (N, C, H, W) -> one uint8 (C, H', W') grid, ``nrow`` images per row (default: square)."""
    from torchvision.utils import make_grid as tv_make_grid

    nrow = nrow or math.ceil(math.sqrt(len(images)))
    grid = tv_make_grid(images, nrow=nrow, padding=padding, pad_value=255)
    return grid[:1] if images.shape[1] == 1 else grid  # torchvision repeats grey to RGB


def save_grid(grid: torch.Tensor, path: str | Path) -> Path:
    """Write a uint8 (C, H, W) grid as a PNG (grey for one channel), creating the folder."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = grid.permute(1, 2, 0).numpy()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)
    return path
