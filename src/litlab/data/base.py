"""What every litlab data module shares: a global batch size, a checkpointed shuffle order, a seeded split
(a held-out validation set, or one fold of a stratified k-fold split of the training set)."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from litlab.data.batching import batch_loader
from litlab.distributed import per_device_batch_size
from litlab.errors import ConfigError


def seeded_split(n: int, val_size: int, seed: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(train rows, validation rows) of ``n``: a permutation drawn from ``data.split_seed`` alone,
    its first ``val_size`` rows for validation, so a split never depends on the run seed."""
    if val_size >= n:
        raise ConfigError(f"data.val_size={val_size} leaves no training data ({n} {what})")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[val_size:], order[:val_size]


def fold_split(labels: torch.Tensor, folds: int, fold: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train rows, validation rows) for fold ``fold`` of ``folds``: each class's rows are permuted by
    ``data.split_seed`` and dealt round-robin into the folds, so the folds are disjoint, cover the
    training split, keep its class balance, and are the same for every run seed and every fold."""
    generator = torch.Generator().manual_seed(seed)
    fold_of = torch.empty(len(labels), dtype=torch.long)
    offset = 0  # each class starts dealing where the last one stopped: fold sizes differ by at most 1
    for label in torch.unique(labels):
        rows = torch.nonzero(labels == label).flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)]
        fold_of[rows] = (torch.arange(len(rows)) + offset) % folds
        offset += len(rows)
    return torch.nonzero(fold_of != fold).flatten(), torch.nonzero(fold_of == fold).flatten()


def check_folds(folds: int | None, fold: int) -> None:
    if folds is None:
        if fold:
            raise ConfigError(
                f"data.fold={fold} needs data.folds=k (k-fold cross-validation); e.g. data.folds=5"
            )
        return
    if not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"data.folds={folds!r} must be an integer >= 2, or null for the val_size split")
    if not isinstance(fold, int) or not 0 <= fold < folds:
        raise ConfigError(f"data.fold={fold!r} must be one of 0..{folds - 1} (data.folds={folds})")


class ShuffledDataModule(L.LightningDataModule):
    """``batch_size`` is global: each process of a distributed run loads ``device_batch_size``.

    The training shuffle draws from a generator of its own, seeded from the run seed and saved in
    checkpoints (``state_dict``), so a resumed run reshuffles exactly as the uninterrupted one.
    """

    batch_size: int
    shuffle_rng: torch.Generator | None = None
    predict_split = "test"  # the split predict_dataloader serves, in order (predict.py's split=)
    val_size: int
    split_seed: int
    folds: int | None = None
    fold: int = 0

    def configure_split(self, val_size: int, split_seed: int, folds: int | None, fold: int) -> None:
        check_folds(folds, fold)
        self.val_size, self.split_seed, self.folds, self.fold = val_size, split_seed, folds, fold

    def split_rows(self, labels: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(train rows, validation rows): fold ``data.fold`` of ``data.folds`` when k-fold is on,
        else the seeded ``data.val_size`` hold-out. The test split is never touched."""
        if self.folds is not None:
            return fold_split(labels, self.folds, self.fold, self.split_seed)
        return seeded_split(len(labels), self.val_size, self.split_seed, what)

    @property
    def device_batch_size(self) -> int:
        world_size = self.trainer.world_size if self.trainer is not None else 1
        return per_device_batch_size(self.batch_size, world_size)

    @property
    def ranks(self) -> tuple[int, int]:
        """(world size, this process's global rank), (1, 0) outside a distributed run."""
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def _shuffle_rng(self) -> torch.Generator:
        if self.shuffle_rng is None:
            self.shuffle_rng = torch.Generator().manual_seed(torch.initial_seed() % 2**63)
        return self.shuffle_rng

    def predict_dataloader(self) -> DataLoader:
        """``predict_split`` in the split's own order, so row i of predictions.csv is sample i (the
        evaluation loaders may reorder, IMDB's by length; padding changes no prediction)."""
        split = self.splits[self.predict_split]
        return batch_loader(split, self.eval_batch_size, shuffle=False)

    def state_dict(self) -> dict:
        return {"shuffle_rng": self._shuffle_rng().get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        if "shuffle_rng" in state_dict:
            self._shuffle_rng().set_state(state_dict["shuffle_rng"])


def class_names(datamodule: object, num_classes: int) -> list[str]:
    """The names of the classes the model predicts (a ``class_subset`` renumbers them), else their ids."""
    names = list(getattr(datamodule, "classes", ()) or ())
    subset = getattr(datamodule, "class_subset", None)
    if subset is not None and names:
        names = [names[int(i)] for i in subset]
    return names if len(names) == num_classes else [str(i) for i in range(num_classes)]
