"""The reference material's perceptron table: five rows, three binary inputs, output = first input.

Needs no files, so ``data=toy`` is the offline smoke run. Each epoch repeats the table
``steps_per_epoch`` times (one full batch a step, as the NumPy original did).
"""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from litlab.data.batching import TensorBatchDataset, batch_loader, keep_batch

TABLE_INPUTS = [[0, 0, 1], [1, 1, 1], [1, 1, 0], [1, 0, 1], [0, 0, 1]]
TABLE_TARGETS = [0, 1, 1, 1, 0]
QUERY = [[1, 0, 0]]


class ToyDataModule(L.LightningDataModule):
    name = "toy"

    def __init__(self, steps_per_epoch: int = 100) -> None:
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.inputs = torch.tensor(TABLE_INPUTS, dtype=torch.float32)
        self.targets = torch.tensor(TABLE_TARGETS, dtype=torch.long)

    num_classes = 2
    input_shape = (3,)
    predict_labels_known = False  # the query's label is a placeholder

    def _full_batches(self, repeats: int) -> DataLoader:
        dataset = TensorBatchDataset(self.inputs.repeat(repeats, 1), self.targets.repeat(repeats))
        return batch_loader(dataset, len(TABLE_TARGETS), shuffle=False)

    def train_dataloader(self) -> DataLoader:
        return self._full_batches(self.steps_per_epoch)

    def val_dataloader(self) -> DataLoader:
        return self._full_batches(1)

    def test_dataloader(self) -> DataLoader:
        return self._full_batches(1)

    def predict_dataloader(self) -> DataLoader:
        query = TensorBatchDataset(torch.tensor(QUERY, dtype=torch.float32), torch.zeros(1, dtype=torch.long))
        return DataLoader(query, batch_size=1, collate_fn=keep_batch)
