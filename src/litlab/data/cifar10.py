"""CIFAR-10 from the official python-pickle release (extracted folder or the tar.gz archive).

File integrity is checked by parsing, not by md5: a pixel-exact repack with other md5s loads.
Only a fresh download is md5-checked, against the official archive.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from litlab.data.cache import cached, source_stamps
from litlab.data.download import extract_once, find_or_download, is_writable_dir, offline_hint, writable_home
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
        expected = f"{ARCHIVE} or the extracted {FOLDER}/"
        find_or_download(
            archive, URL, ARCHIVE_MD5, self.download, offline_hint("CIFAR-10", self.data_dir, expected)
        )
        return extract_once(archive, FOLDER)

    def load_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        folder = self.ensure_files()
        sources = [folder / name for name in (TRAIN_FILES if train else TEST_FILES)]
        for path in sources:
            self._check_exists(path)

        def parse() -> list[torch.Tensor]:
            parts = [parse_batch(path.read_bytes(), str(path)) for path in sources]
            # one copy of the pixels, into the final array (not a copy per batch and then a cat)
            return [torch.from_numpy(np.concatenate([p[i] for p in parts])) for i in (0, 1)]

        split = "train" if train else "test"
        (images, labels), _, _ = cached(
            writable_home(folder, key=folder),
            f"cifar10-{split}",
            source_stamps(sources),
            parse,
            f"parsing the CIFAR-10 {split} batches",
        )
        return images, labels

    @staticmethod
    def _check_exists(path: Path) -> None:
        if not path.exists():
            raise DataError(
                f"CIFAR-10 file {path} is missing; re-extract {ARCHIVE} or delete {path.parent} to re-fetch"
            )
