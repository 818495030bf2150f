"""Length-bucketed batches shared out over the ranks of a DDP run.

Lightning shards a loader by swapping its sampler for a ``DistributedSampler``; it cannot do that
for a loader driven by a custom batch sampler (``BucketBatchSampler``, or a list of
length-sorted evaluation batches) and raises "can't inject a (distributed) sampler into your batch
sampler". These samplers shard themselves and yield whole batches of indices, for a
``DataLoader(batch_size=None, sampler=...)`` (``dataset[list]`` fetches a batch). Being ``DistributedSampler``s, Lightning leaves them in
place and calls their ``set_epoch``. Every rank gets the same number of batches: a rank with one
batch fewer would leave the others waiting in DDP's gradient all-reduce.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from litlab.data.text import BucketBatchSampler, trim_batch


class DistributedBucketSampler(DistributedSampler):
    """``BucketBatchSampler``'s batches, every ``num_replicas``-th one for this rank.

    All ranks draw the same batches from a generator seeded by ``seed`` and the epoch (as
    Lightning's ``DistributedSampler`` is seeded), so the ranks' batches are disjoint; the last
    ``len(batches) % num_replicas`` batches of an epoch are left out so that all ranks step alike."""

    def __init__(
        self,
        lengths: torch.Tensor,
        batch_size: int,
        num_replicas: int,
        rank: int,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(range(len(lengths)), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.lengths, self.batch_size, self.drop_last_batch = lengths, batch_size, drop_last

    def _bucketed(self) -> BucketBatchSampler:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return BucketBatchSampler(self.lengths, self.batch_size, generator, self.drop_last_batch)

    def __len__(self) -> int:
        return len(self._bucketed()) // self.num_replicas

    def __iter__(self) -> Iterator[list[int]]:
        batches = list(self._bucketed())
        usable = len(batches) - len(batches) % self.num_replicas
        return iter(batches[self.rank : usable : self.num_replicas])


class DistributedSortedBatches(DistributedSampler):
    """Evaluation batches in length order, for this rank: every ``num_replicas``-th sample of the
    length order (so each rank's batches stay compact), padded to a multiple of ``num_replicas`` by
    repeating the first samples, as ``DistributedSampler`` pads."""

    def __init__(self, lengths: torch.Tensor, batch_size: int, num_replicas: int, rank: int) -> None:
        super().__init__(range(len(lengths)), num_replicas=num_replicas, rank=rank, shuffle=False)
        order = lengths.argsort(stable=True)
        order = torch.cat([order, order[: (-len(order)) % num_replicas]])
        self.batches = [b.tolist() for b in order[rank::num_replicas].split(batch_size)]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)


def bucketed_loader(
    dataset: Dataset,
    lengths: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    drop_last: bool,
    world_size: int,
    rank: int,
) -> DataLoader:
    """Training batches of similar lengths: one process draws them from ``generator`` (saved in
    checkpoints), the ranks of a DDP run from the run seed and the epoch."""
    if world_size == 1:
        sampler = BucketBatchSampler(lengths, batch_size, generator, drop_last)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=trim_batch)
    seed = int(os.environ.get("PL_GLOBAL_SEED", 0))  # the run seed: the same on every rank
    sharded = DistributedBucketSampler(lengths, batch_size, world_size, rank, seed, drop_last)
    return DataLoader(dataset, batch_size=None, sampler=sharded, collate_fn=trim_batch)


def length_sorted_loader(
    dataset: Dataset, lengths: torch.Tensor, batch_size: int, world_size: int, rank: int
) -> DataLoader:
    """Evaluation batches in length order: the fewest padded steps, and the order changes no metric."""
    if world_size == 1:
        batches = [b.tolist() for b in lengths.argsort(stable=True).split(batch_size)]
        return DataLoader(dataset, batch_sampler=batches, collate_fn=trim_batch)
    sharded = DistributedSortedBatches(lengths, batch_size, world_size, rank)
    return DataLoader(dataset, batch_size=None, sampler=sharded, collate_fn=trim_batch)
