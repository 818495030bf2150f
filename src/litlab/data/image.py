"""Shared LightningDataModule for image classification sets that fit in RAM as uint8 tensors.

Subclasses only say how to find and parse their official files (``load_split``); splitting,
class subsets, label budgets, batching, normalisation and augmentation live here, once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DistributedSampler

from litlab.data.base import ShuffledDataModule
from litlab.data.batching import (
    TensorBatchDataset,
    alternating_hflip,
    batch_loader,
    random_crop,
    random_hflip,
)
from litlab.errors import ConfigError

NORMALIZE_MODES = ("standard", "symmetric", "unit")


class InMemoryImageDataModule(ShuffledDataModule):
    name = "images"
    classes: tuple[str, ...] = ()
    image_shape: tuple[int, int, int] = (1, 1, 1)
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_size: int = 5000,
        split_seed: int = 0,
        folds: int | None = None,
        fold: int = 0,
        normalize: str = "standard",
        crop_padding: int = 0,
        hflip: bool = False,
        translate: int = 0,
        alternating_flip: bool = False,
        class_subset: Sequence[int] | None = None,
        labels_per_class: int | None = None,
        download: bool = True,
        drop_last: bool = False,
        on_device: bool = True,
        shuffle: bool = True,
    ) -> None:
        super().__init__()
        if normalize not in NORMALIZE_MODES:
            raise ConfigError(f"data.normalize={normalize!r} is not one of {NORMALIZE_MODES}")
        if batch_size < 1 or eval_batch_size < 1 or val_size < 0:
            raise ConfigError("data.batch_size and data.eval_batch_size must be >= 1, data.val_size >= 0")
        if hflip and alternating_flip:
            raise ConfigError("data.hflip and data.alternating_flip are two flip schemes: set one of them")
        if translate < 0 or crop_padding < 0:
            raise ConfigError("data.translate and data.crop_padding must be >= 0")
        if class_subset is not None:
            bad = [c for c in class_subset if not 0 <= int(c) < len(self.classes)]
            if bad or len(set(class_subset)) != len(class_subset):
                raise ConfigError(
                    f"data.class_subset={list(class_subset)} must be distinct ids in 0..{len(self.classes) - 1}"
                )
        self.data_dir = Path(data_dir).expanduser()
        self.batch_size = batch_size  # global: divided over the processes of a distributed run
        self.eval_batch_size = eval_batch_size
        self.configure_split(val_size, split_seed, folds, fold)
        self.normalize = normalize
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.translate = translate
        self.alternating_flip = alternating_flip
        self.class_subset = [int(c) for c in class_subset] if class_subset is not None else None
        self.labels_per_class = labels_per_class
        self.download = download
        self.shuffle = shuffle  # false: the data's order; under DDP rank r takes samples r, r+W, ...
        self.drop_last = drop_last
        self.on_device = on_device
        self.splits: dict[str, TensorBatchDataset] = {}
        self.flip_bits: torch.Tensor | None = None

    # --- what subclasses provide -------------------------------------------------------------
    def ensure_files(self) -> None:
        """Make the official files available (finding, extracting or downloading them)."""
        raise NotImplementedError

    def load_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (uint8 images NCHW, int64 labels) of the official train or test split."""
        raise NotImplementedError

    # --- shape facts, known before any data is read ------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_subset) if self.class_subset is not None else len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.image_shape

    # --- Lightning hooks ---------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.ensure_files()

    def setup(self, stage: str | None = None) -> None:
        """Load what the stage needs: fitting never waits for the test split (startup), testing never
        for the training split; ``stage=None`` loads everything."""
        _ = self.device_batch_size  # a global batch that does not divide over the processes fails here
        self.ensure_files()
        wants_val = stage in (None, "fit", "validate") or (stage == "predict" and self.predict_split == "val")
        if wants_val and "train" not in self.splits:
            self._setup_train_val()
        if stage in (None, "test", "predict") and "test" not in self.splits:
            test = self.placed(*self._select_classes(*self.load_split(train=False)))
            self.splits["test"] = TensorBatchDataset(*test)

    def placed(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The uint8 set on the training device (``data.on_device``), moved once: each batch is then
        gathered, normalised and augmented there, and no step waits for a host-to-device copy of
        images. Each DDP rank holds the whole set (CIFAR-10 is 150 MB of uint8) and gathers the rows
        of its shard, so Lightning's DistributedSampler shards as usual. On the CPU nothing moves."""
        trainer = self.trainer
        if not self.on_device or trainer is None:
            return images, labels
        device = trainer.strategy.root_device
        return images.to(device), labels.to(device)

    def _setup_train_val(self) -> None:
        images, labels = self._select_classes(*self.load_split(train=True))
        train_idx, val_idx = self.split_rows(labels, "images")
        train_idx = self._label_budget(train_idx, labels)
        images, labels = self.placed(images, labels)  # the row indices stay on the host
        self.splits["train"] = TensorBatchDataset(images, labels, rows=train_idx)
        self.splits["val"] = TensorBatchDataset(images, labels, rows=val_idx)

    def _select_classes(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.class_subset is None:
            return images, labels
        remap = torch.full((len(self.classes),), -1, dtype=torch.long)
        remap[torch.tensor(self.class_subset)] = torch.arange(len(self.class_subset))
        keep = remap[labels] >= 0
        return images[keep], remap[labels[keep]]

    def _label_budget(self, train_idx: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Keep the first ``labels_per_class`` of each class in the (already shuffled) train order."""
        if self.labels_per_class is None:
            return train_idx
        train_labels = labels[train_idx]
        keep = torch.zeros(len(train_idx), dtype=torch.bool)
        for cls in range(self.num_classes):
            keep[(train_labels == cls).nonzero().flatten()[: self.labels_per_class]] = True
        return train_idx[keep]

    def train_dataloader(self):
        train = self.splits["train"]
        if self.alternating_flip:  # the loader also yields sample ids; on_after_batch_transfer drops them
            images, labels = train.tensors
            train = TensorBatchDataset(images, labels, torch.arange(len(train), device=labels.device))
        world_size, rank = self.ranks
        sharded = None
        if not self.shuffle and world_size > 1:  # Lightning would shard it with a shuffling sampler
            sharded = DistributedSampler(train, num_replicas=world_size, rank=rank, shuffle=False)
        return batch_loader(
            train,
            self.device_batch_size,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
            generator=self._shuffle_rng(),
            sampler=sharded,
        )

    def val_dataloader(self):
        return batch_loader(self.splits["val"], self.eval_batch_size, shuffle=False)

    def test_dataloader(self):
        return batch_loader(self.splits["test"], self.eval_batch_size, shuffle=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Normalise (and in training, augment) the whole uint8 batch on the training device."""
        images, labels, *sample_ids = batch
        images = self.to_float(images)
        if self.trainer is None or not self.trainer.training:
            return images, labels
        return self.augment(images, sample_ids), labels

    def augment(self, images: torch.Tensor, sample_ids: list[torch.Tensor]) -> torch.Tensor:
        if self.crop_padding > 0:
            images = random_crop(images, self.crop_padding)
        if self.translate > 0:
            images = random_crop(images, self.translate, mode="reflect")
        if self.hflip:
            images = random_hflip(images)
        if self.alternating_flip and sample_ids:
            bits = self._flip_bits(len(self.splits["train"]), images.device)
            images = alternating_hflip(images, sample_ids[0], bits, self.trainer.current_epoch)
        return images

    def train_images(self, limit: int | None = None) -> torch.Tensor:
        """The first ``limit`` training images, normalised as the model sees them (for data-dependent
        initialisation such as patch whitening)."""
        if "train" not in self.splits:
            self.setup("fit")
        return self.to_float(self.splits["train"][:limit][0])

    def _flip_bits(self, n: int, device: torch.device) -> torch.Tensor:
        """One fixed random bit per training sample, from the run seed: a resumed run gets the same bits.
        Kept on the training device, so no step copies them."""
        if self.flip_bits is None or len(self.flip_bits) != n:
            generator = torch.Generator().manual_seed(torch.initial_seed() % 2**63 + 1)
            self.flip_bits = torch.rand(n, generator=generator) < 0.5
        self.flip_bits = self.flip_bits.to(device)
        return self.flip_bits

    def to_float(self, images: torch.Tensor) -> torch.Tensor:
        images = images.float().div_(255.0)
        if self.normalize == "symmetric":
            return images.mul_(2.0).sub_(1.0)
        if self.normalize == "standard":
            mean, std = self._mean_std(images.device)
            return images.sub_(mean).div_(std)
        return images

    @functools.cache  # noqa: B019 - one entry per device, for the data module's lifetime
    def _mean_std(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, -1, 1, 1)
        return torch.tensor(self.mean, device=device).view(shape), torch.tensor(self.std, device=device).view(
            shape
        )
