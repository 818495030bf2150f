"""What every litlab data module shares: a global batch size and a checkpointed shuffle order."""

from __future__ import annotations

import lightning as L
import torch

from litlab.distributed import per_device_batch_size


class ShuffledDataModule(L.LightningDataModule):
    """``batch_size`` is global: each process of a distributed run loads ``device_batch_size``.

    The training shuffle draws from a generator of its own, seeded from the run seed and saved in
    checkpoints (``state_dict``), so a resumed run reshuffles exactly as the uninterrupted one.
    """

    batch_size: int
    shuffle_rng: torch.Generator | None = None

    @property
    def device_batch_size(self) -> int:
        world_size = self.trainer.world_size if self.trainer is not None else 1
        return per_device_batch_size(self.batch_size, world_size)

    def _shuffle_rng(self) -> torch.Generator:
        if self.shuffle_rng is None:
            self.shuffle_rng = torch.Generator().manual_seed(torch.initial_seed() % 2**63)
        return self.shuffle_rng

    def state_dict(self) -> dict:
        return {"shuffle_rng": self._shuffle_rng().get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        if "shuffle_rng" in state_dict:
            self._shuffle_rng().set_state(state_dict["shuffle_rng"])
