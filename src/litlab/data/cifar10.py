"""CIFAR-10 from the official python-pickle release (extracted folder or the tar.gz archive).

File integrity is checked by parsing, not by md5: a pixel-exact repack with other md5s loads.
Only a fresh download is md5-checked, against the official archive.
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from litlab.data.download import download, extract_tar, is_writable_dir, offline_hint
from litlab.data.image import InMemoryImageDataModule
from litlab.errors import DataError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]


def parse_batch(raw: bytes, name: str) -> tuple[torch.Tensor, torch.Tensor]:
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
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels)


class CIFAR10DataModule(InMemoryImageDataModule):
    name = "cifar10"
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    image_shape = (3, 32, 32)
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)

    def ensure_files(self) -> None:
        folder, archive = self.data_dir / FOLDER, self.data_dir / ARCHIVE
        if (folder / "test_batch").exists():
            return
        if not archive.exists():
            if not self.download:
                raise DataError(
                    offline_hint("CIFAR-10", self.data_dir, f"{ARCHIVE} or the extracted {FOLDER}/")
                )
            try:
                download(URL, archive, ARCHIVE_MD5)
            except DataError as error:
                raise DataError(
                    offline_hint("CIFAR-10", self.data_dir, f"{ARCHIVE} or the extracted {FOLDER}/")
                    + f" ({error})"
                ) from error
        if is_writable_dir(self.data_dir):
            extract_tar(archive, self.data_dir)
        # read-only data dir (a shared mount): load_split reads straight from the archive instead

    def load_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        names = TRAIN_FILES if train else TEST_FILES
        folder = self.data_dir / FOLDER
        if (folder / "test_batch").exists():
            parts = [parse_batch(self._read(folder / name), str(folder / name)) for name in names]
        else:
            parts = self._read_from_archive(self.data_dir / ARCHIVE, names)
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    @staticmethod
    def _read(path: Path) -> bytes:
        if not path.exists():
            raise DataError(
                f"CIFAR-10 file {path} is missing; re-extract {ARCHIVE} or delete {path.parent} to re-fetch"
            )
        return path.read_bytes()

    @staticmethod
    def _read_from_archive(archive: Path, names: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        found: dict[str, bytes] = {}
        try:
            with tarfile.open(archive) as tar:
                for member in tar:
                    name = Path(member.name).name
                    if member.isfile() and name in names:
                        found[name] = tar.extractfile(member).read()  # type: ignore[union-attr]
        except (tarfile.TarError, EOFError, OSError) as error:
            raise DataError(f"{archive} is truncated or corrupt ({error}); replace it") from error
        if missing := [n for n in names if n not in found]:
            raise DataError(f"{archive} lacks {missing}; it is not the CIFAR-10 python archive")
        return [parse_batch(found[n], f"{archive}:{n}") for n in names]
