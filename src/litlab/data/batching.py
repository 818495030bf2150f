"""Whole-batch access to in-memory tensors, and whole-batch augmentation on the training device.

A DataLoader over a dataset with ``__getitems__`` fetches a batch with one tensor index instead of
``batch_size`` Python calls plus a collate; with ``num_workers=0`` that is memory speed.
Lightning still swaps in a DistributedSampler under DDP, because the sampler stays standard.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from litlab.data.resumable import resumable_loader


class TensorBatchDataset(Dataset):
    """Rows of in-memory tensors, or with ``rows`` only those rows, gathered batch by batch: a split
    then copies no data (for CIFAR-10's train/val split, 150 MB at every startup)."""

    def __init__(self, *tensors: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        assert all(len(t) == len(tensors[0]) for t in tensors)
        self.source, self.rows = tensors, rows

    @property
    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The rows as whole tensors (a copy when ``rows`` is set)."""
        return self.source if self.rows is None else take(self.source, self.rows)

    def __len__(self) -> int:
        return len(self.source[0]) if self.rows is None else len(self.rows)

    def __getitem__(self, index: int | slice | list[int]) -> tuple[torch.Tensor, ...]:
        if isinstance(index, list):  # a whole batch from a batch-yielding sampler (litlab.data.sharding)
            return self.__getitems__(index)
        if self.rows is not None:
            index = self.rows[index]
        return tuple(t[index] for t in self.source)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices)
        if self.rows is not None:
            index = self.rows[index]  # the rows stay on the host, beside the sampler's order
        device = self.source[0].device
        if device.type != "cpu":  # data on an accelerator: send the index, not the images
            index = index.pin_memory().to(device, non_blocking=True)
        return take(self.source, index)


def take(tensors: tuple[torch.Tensor, ...], index: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Rows ``index`` of each tensor. ``index_select`` copies whole rows; ``t[index]`` gathers element by
    element, several times slower for a batch of uint8 images."""
    return tuple(t.index_select(0, index.to(t.device)) for t in tensors)


def keep_batch(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """collate_fn for TensorBatchDataset: the batch is already stacked."""
    return batch


def batch_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
    sampler: Sampler | None = None,
) -> DataLoader:
    """A loader that never draws from the global RNG (it has its own generator), so that
    building or iterating loaders (e.g. a sanity check after resume) cannot shift dropout or
    augmentation randomness; and that resumes mid-epoch at the batch it stopped at
    (``litlab.data.resumable``): the resumed run then replays the uninterrupted one exactly."""
    if sampler is not None:  # an explicit shard (data.shuffle=false under DDP): Lightning keeps a
        # loader's own DistributedSampler, but would not see one inside the resumable batch sampler
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            collate_fn=keep_batch,
            generator=torch.Generator(),
        )
    return resumable_loader(
        dataset,
        batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        generator=generator if generator is not None else torch.Generator(),
        collate_fn=keep_batch,
    )


def random_crop(images: torch.Tensor, padding: int, mode: str = "constant") -> torch.Tensor:
    """Per-sample random crop of a padded NCHW batch (zero padding, or ``mode="reflect"`` for a
    translate that invents no black border), done as one gather."""
    n, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4, mode=mode)
    dy = torch.randint(0, 2 * padding + 1, (n,), device=images.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), device=images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, :, None]
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def random_hflip(images: torch.Tensor) -> torch.Tensor:
    flip = torch.rand(images.shape[0], device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def alternating_hflip(
    images: torch.Tensor, sample_ids: torch.Tensor, bits: torch.Tensor, epoch: int
) -> torch.Tensor:
    """airbench's alternating flip: each sample keeps one random bit for the whole run and is flipped
    when ``bit XOR (epoch odd)``, so a sample flipped in one epoch is not flipped in the next. Over
    two epochs every image is seen both ways, which random flips only give on average."""
    flip = bits[sample_ids.to(bits.device)].to(images.device) ^ bool(epoch % 2)
    return torch.where(flip[:, None, None, None], images.flip(3), images)
