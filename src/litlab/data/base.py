"""What every litlab data module shares: a global batch size, a checkpointed shuffle order, a seeded split."""

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


class ShuffledDataModule(L.LightningDataModule):
    """``batch_size`` is global: each process of a distributed run loads ``device_batch_size``.

    The training shuffle draws from a generator of its own, seeded from the run seed and saved in
    checkpoints (``state_dict``), so a resumed run reshuffles exactly as the uninterrupted one.
    """

    batch_size: int
    shuffle_rng: torch.Generator | None = None
    predict_split = "test"  # the split predict_dataloader serves, in order (predict.py's split=)

    @property
    def device_batch_size(self) -> int:
        world_size = self.trainer.world_size if self.trainer is not None else 1
        return per_device_batch_size(self.batch_size, world_size)

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
