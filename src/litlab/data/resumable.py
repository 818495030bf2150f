"""A training loader that resumes mid-epoch where it stopped, through Lightning's stateful-loader protocol.

Lightning 2.6 puts ``state_dict()`` of every train loader that has one into each checkpoint
(``FitLoop.on_save_checkpoint``) and, when it restarts inside an epoch, hands it back to
``load_state_dict()`` before the loader's iterator is created. Without it a resumed epoch draws a
new permutation and runs the remaining number of batches of it: samples seen twice or never, and
another result than the uninterrupted run. Here the state is the shuffle generator as it was when
the epoch's permutation was drawn, and how many batches the epoch already gave out, so the resumed
iterator redraws the same permutation and skips the batches already trained on (by index, without
gathering their rows).

The state lives in a ``BatchSampler`` subclass: Lightning re-creates it with a
``DistributedSampler`` inside under DDP (whose permutation is a function of seed and epoch) and with
a ``SequentialSampler`` for ``overfit_batches``, and the loader only forwards to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler


class ResumableBatchSampler(BatchSampler):
    """Batches of ``sampler`` that remember where the current epoch is."""

    def __init__(self, sampler: Any, batch_size: int, drop_last: bool) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.epoch_start_rng: torch.Tensor | None = None  # the generator before this epoch's draw
        self.batches_given = 0
        self.pending: dict[str, Any] | None = None  # a loaded state, for the next iterator

    def __iter__(self) -> Iterator[list[int]]:
        # taken now, applied at the first batch: Lightning may create an iterator it never reads (the
        # epoch it restarts in was already complete), and the next one must then start afresh
        pending, self.pending = self.pending, None
        return self._batches(pending)

    def _batches(self, pending: dict[str, Any] | None) -> Iterator[list[int]]:
        generator = getattr(self.sampler, "generator", None)
        skip = 0
        if pending is not None and pending["batches_given"] < len(self):
            skip = pending["batches_given"]
            if generator is not None and pending["epoch_start_rng"] is not None:
                generator.set_state(pending["epoch_start_rng"])
        self.epoch_start_rng = generator.get_state() if generator is not None else None
        self.batches_given = 0
        for batch in super().__iter__():
            self.batches_given += 1
            if self.batches_given > skip:
                yield batch

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_start_rng": self.epoch_start_rng, "batches_given": self.batches_given}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pending = dict(state_dict)


class ResumableLoader(DataLoader):
    """A DataLoader whose ``state_dict`` is its batch sampler's: what makes Lightning save and restore
    the epoch's position (it checks the loader, not the sampler). No ``__init__`` of its own, so
    Lightning re-creates it with a distributed sampler exactly as a plain DataLoader."""

    def state_dict(self) -> dict[str, Any]:
        return self.batch_sampler.state_dict() if hasattr(self.batch_sampler, "state_dict") else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict and hasattr(self.batch_sampler, "load_state_dict"):
            self.batch_sampler.load_state_dict(state_dict)


def resumable_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    drop_last: bool,
    generator: torch.Generator,
    collate_fn: Any,
) -> ResumableLoader:
    """The shuffle draws from ``generator`` only; the loader's own generator (its iterators draw a
    worker seed from it) is a separate one, so an iterator Lightning creates and drops on resume
    moves no permutation."""
    sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return ResumableLoader(
        dataset,
        batch_sampler=ResumableBatchSampler(sampler, batch_size, drop_last),
        collate_fn=collate_fn,
        generator=torch.Generator(),
    )
