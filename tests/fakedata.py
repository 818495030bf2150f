"""Tiny data sets written in the official on-disk formats, so tests exercise the real parsers.

Each class gets its own fixed random template plus noise: learnable in a few epochs, so
end-to-end tests can assert that accuracy beats chance.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np


def class_images(labels: np.ndarray, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    templates = np.random.default_rng(1234).integers(0, 256, size=(10, *shape))
    noise = rng.normal(0, 40, size=(len(labels), *shape))
    return np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)


def cifar_batch(n: int, seed: int) -> dict:
    labels = np.random.default_rng(seed).integers(0, 10, size=n)
    data = class_images(labels, (3, 32, 32), seed).reshape(n, 3072)
    return {b"batch_label": b"fake", b"labels": labels.tolist(), b"data": data, b"filenames": [b"x.png"] * n}


def write_cifar10(root: Path, per_batch: int = 100, test: int = 200, archive: bool = False) -> Path:
    """Write cifar-10-batches-py/ (or the .tar.gz holding it) under root."""
    files = {f"data_batch_{i}": cifar_batch(per_batch, seed=i) for i in range(1, 6)}
    files["test_batch"] = cifar_batch(test, seed=99)
    files["batches.meta"] = {
        b"label_names": [b"c%d" % i for i in range(10)],
        b"num_cases_per_batch": per_batch,
    }
    root.mkdir(parents=True, exist_ok=True)
    if archive:
        with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
            for name, content in files.items():
                raw = pickle.dumps(content)
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
        return root / "cifar-10-python.tar.gz"
    folder = root / "cifar-10-batches-py"
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(pickle.dumps(content))
    return folder


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root: Path, train: int = 600, test: int = 200, gz: bool = True) -> Path:
    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", train, 1), ("t10k", test, 2)):
        labels = np.random.default_rng(seed).integers(0, 10, size=n)
        images = class_images(labels, (28, 28), seed)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            raw = idx_bytes(array)
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return folder


POSITIVE = ["great", "excellent", "loved", "wonderful", "superb", "brilliant"]
NEGATIVE = ["awful", "boring", "hated", "terrible", "dull", "worst"]
NEUTRAL = [f"word{i}" for i in range(60)] + ["the", "movie", "film", "plot", "actor", "a", "and"]


def review(rng: np.random.Generator, label: int, extra: list[str]) -> str:
    """Neutral filler with a few sentiment words, <br /> tags and punctuation, as real reviews have."""
    words = list(rng.choice(NEUTRAL + extra, size=rng.integers(5, 40)))
    cues = POSITIVE if label else NEGATIVE
    for _ in range(rng.integers(1, 4)):
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(cues)).capitalize())
    half = len(words) // 2
    return " ".join(words[:half]) + ".<br /><br />" + " ".join(words[half:]) + "!"


def imdb_files(per_class: int = 60, test_per_class: int = 40) -> dict[str, bytes]:
    """aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt; test reviews also use words train never has."""
    files: dict[str, bytes] = {"aclImdb/imdb.vocab": "\n".join(POSITIVE + NEGATIVE + NEUTRAL).encode()}
    for split, n, seed, extra in (("train", per_class, 1, []), ("test", test_per_class, 2, ["testonly"])):
        rng = np.random.default_rng(seed)
        for label, name in enumerate(("neg", "pos")):
            for i in range(n):
                rating = int(rng.integers(7, 11) if label else rng.integers(1, 5))
                files[f"aclImdb/{split}/{name}/{i}_{rating}.txt"] = review(rng, label, extra).encode()
    return files


def write_imdb(root: Path, per_class: int = 60, test_per_class: int = 40, archive: bool = False) -> Path:
    """Write the extracted aclImdb/ folder (or aclImdb_v1.tar.gz) under root."""
    files = imdb_files(per_class, test_per_class)
    root.mkdir(parents=True, exist_ok=True)
    if archive:
        with tarfile.open(root / "aclImdb_v1.tar.gz", "w:gz") as tar:
            for name, raw in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
        return root / "aclImdb_v1.tar.gz"
    for name, raw in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(raw)
    return root / "aclImdb"
