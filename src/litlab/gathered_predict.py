"""A run's predictions in the data's order, each once, on one process or on the ranks of a DDP run.

Under DDP Lightning shares the predict set out with an "unrepeated" sampler that asserts every
rank gets at least one sample: a predict set smaller than the world (the perceptron's single
query) kills rank 1 with a bare ``AssertionError``. Here each rank predicts its share under a
padded ``DistributedSampler`` (so every rank has a sample), the shares and their indices are
gathered, and the duplicates of the padding are dropped: rank 0 records the full list, in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, DistributedSampler


def predict(trainer: L.Trainer, model: L.LightningModule, datamodule: L.LightningDataModule) -> list:
    with sharded_predict_set(trainer, datamodule) as indices:
        outputs = trainer.predict(model, datamodule=datamodule)
    local = torch.cat(outputs).tolist() if outputs else []
    if not indices:  # one process: Lightning's own order
        return local
    import torch.distributed as dist

    shares: list[Any] = [None] * trainer.world_size
    dist.all_gather_object(shares, (indices, local))  # every rank takes part, none is rank-zero-only
    merged: dict[int, Any] = {}
    for share_indices, rows in shares:
        for index, row in zip(share_indices, rows, strict=True):
            merged.setdefault(index, row)
    return [merged[index] for index in sorted(merged)]


@contextmanager
def sharded_predict_set(trainer: L.Trainer, datamodule: L.LightningDataModule) -> Iterator[list[int]]:
    """While open, the data module's predict loader is this rank's padded share; the list it yields
    fills with that share's dataset indices once Lightning has asked for the loader. The loader is
    built when Lightning asks, because only then are the ranks known (a run may predict first)."""
    original = datamodule.predict_dataloader
    indices: list[int] = []

    def share() -> DataLoader:
        loader = original()
        if trainer.world_size == 1 or not isinstance(loader, DataLoader):
            return loader
        sampler = DistributedSampler(
            loader.dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )
        indices[:] = list(sampler)
        # a loader built on a batch sampler (litlab's resumable one) has no batch_size of its own
        batch_size = loader.batch_size if loader.batch_size is not None else loader.batch_sampler.batch_size
        return DataLoader(
            loader.dataset,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=loader.collate_fn,
            num_workers=loader.num_workers,
            pin_memory=loader.pin_memory,
        )

    datamodule.predict_dataloader = share  # an instance attribute, shadowing the method until the end
    try:
        yield indices
    finally:
        del datamodule.predict_dataloader
