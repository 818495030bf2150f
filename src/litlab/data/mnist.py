"""MNIST from the four official idx files, gzipped or not."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from litlab.data.cache import cached, source_stamps
from litlab.data.download import find_or_download, offline_hint, writable_home
from litlab.data.image import InMemoryImageDataModule
from litlab.errors import DataError

MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FILES = {  # official gz name -> md5
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
IDX_DTYPE = {0x08: np.uint8}


def parse_idx(path: Path) -> np.ndarray:
    """Parse an idx file (magic 0x0000 08 ndim, big-endian dims, then the data), checking its length."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise DataError(
            f"MNIST file {path} is truncated or corrupt ({error}); replace it with a fresh copy"
        ) from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPE:
        raise DataError(f"MNIST file {path} is not an idx file of uint8 (bad magic); replace it")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset, expected = 4 + 4 * ndim, int(np.prod(dims))
    if len(raw) - offset != expected:
        raise DataError(
            f"MNIST file {path} holds {len(raw) - offset} bytes of data, expected {expected}; replace it"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


class MNISTDataModule(InMemoryImageDataModule):
    name = "mnist"
    classes = tuple(str(i) for i in range(10))
    image_shape = (1, 28, 28)
    mean = (0.1307,)
    std = (0.3081,)

    def _search_dirs(self) -> list[Path]:
        return [self.data_dir / "MNIST" / "raw", self.data_dir / "mnist", self.data_dir]

    def _find(self, gz_name: str) -> Path | None:
        for folder in self._search_dirs():
            for candidate in (folder / gz_name, folder / gz_name.removesuffix(".gz")):
                if candidate.exists():
                    return candidate
        return None

    def ensure_files(self) -> None:
        hint = offline_hint(
            "MNIST", self.data_dir, "the four idx files (train-images-idx3-ubyte[.gz], ...) or MNIST/raw/"
        )
        for name, md5 in FILES.items():
            if self._find(name) is None:
                find_or_download(
                    self.data_dir / "MNIST" / "raw" / name, MIRROR + name, md5, self.download, hint
                )

    def load_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        prefix = "train" if train else "t10k"
        image_file = self._find(f"{prefix}-images-idx3-ubyte.gz")
        label_file = self._find(f"{prefix}-labels-idx1-ubyte.gz")
        if image_file is None or label_file is None:
            raise DataError(offline_hint("MNIST", self.data_dir, f"{prefix}-images/labels idx files"))

        def parse() -> list[torch.Tensor]:
            images, labels = parse_idx(image_file), parse_idx(label_file)
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise DataError(f"MNIST files {image_file} and {label_file} disagree in shape; replace them")
            return [torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))]

        folder = image_file.parent
        (images, labels), _, _ = cached(
            writable_home(folder, key=folder),
            f"mnist-{prefix}",
            source_stamps([image_file, label_file]),
            parse,
            f"parsing the MNIST {'training' if train else 'test'} idx files",
        )
        return images, labels
