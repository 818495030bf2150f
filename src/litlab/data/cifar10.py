"""CIFAR-10 from the official python-pickle release (extracted folder or the tar.gz archive).

File integrity is checked by parsing, not by md5: a pixel-exact repack with other md5s loads.
Only a fresh download is md5-checked, against the official archive.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from litlab.data.array_cache import cached_arrays
from litlab.data.download import download, extract_once, is_writable_dir, offline_hint
from litlab.data.image import InMemoryImageDataModule
from litlab.errors import DataError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]


def parse_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        entry = pickle.loads(raw, encoding="bytes")
        data = np.asarray(entry[b"data"], dtype=np.uint8)
        labels = np.asarray(entry[b"labels"], dtype=np.int64)
    except Exception as error:  # a damaged pickle can raise almost anything
        raise DataError(
            f"CIFAR-10 file {name} is truncated or corrupt ({type(error).__name__}); replace it"
        ) from error
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(
            f"CIFAR-10 file {name} has data of shape {data.shape}, expected (N, 3072); replace it"
        )
    return data.reshape(-1, 3, 32, 32), labels


class CIFAR10DataModule(InMemoryImageDataModule):
    name = "cifar10"
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    image_shape = (3, 32, 32)
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)

    def ensure_files(self) -> Path:
        """Return the folder of batch files: extracted already, extracted now from the archive, or downloaded."""
        folder, archive = self.data_dir / FOLDER, self.data_dir / ARCHIVE
        # beside a writable archive, only extract_once's marker proves the folder whole (a killed
        # extraction leaves test_batch and half the rest)
        if (folder / "test_batch").exists() and not (archive.exists() and is_writable_dir(self.data_dir)):
            return folder
        if not archive.exists():
            expected = f"{ARCHIVE} or the extracted {FOLDER}/"
            if not self.download:
                raise DataError(offline_hint("CIFAR-10", self.data_dir, expected))
            try:
                download(URL, archive, ARCHIVE_MD5)
            except DataError as error:
                raise DataError(offline_hint("CIFAR-10", self.data_dir, expected) + f" ({error})") from error
        return extract_once(archive, FOLDER)

    def load_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        folder = self.ensure_files()
        names = TRAIN_FILES if train else TEST_FILES
        for name in names:
            self._check_exists(folder / name)

        def parse() -> tuple[np.ndarray, np.ndarray]:
            parts = [parse_batch((folder / name).read_bytes(), str(folder / name)) for name in names]
            # one copy of the pixels, into the final array (a copy per batch and then a cat cost 0.2 s)
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

        images, labels = cached_arrays(
            [folder / name for name in names], f"cifar10-{'train' if train else 'test'}", parse
        )
        return torch.from_numpy(images), torch.from_numpy(labels)

    @staticmethod
    def _check_exists(path: Path) -> None:
        if not path.exists():
            raise DataError(
                f"CIFAR-10 file {path} is missing; re-extract {ARCHIVE} or delete {path.parent} to re-fetch"
            )
