"""The Large Movie Review Dataset (aclImdb): 25,000 train and 25,000 test reviews, labelled neg/pos.

Read from the official layout (``aclImdb/{train,test}/{neg,pos}/*.txt``), extracted or straight
from ``aclImdb_v1.tar.gz`` when the data dir is read-only (``train/unsup`` is not needed). The
encoded corpus and vocabulary go to the shared keyed cache (``data/cache.py``): tokenising 50,000
reviews happens once per setting.
"""

from __future__ import annotations

import os
import tarfile
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from litlab.data.base import ShuffledDataModule
from litlab.data.batching import TensorBatchDataset
from litlab.data.cache import cached
from litlab.data.download import extract_once, find_or_download, is_writable_dir, offline_hint
from litlab.data.sharding import bucketed_loader, length_sorted_loader
from litlab.data.text import (
    TOKENISER_VERSION,
    TRUNCATION_SIDES,
    UNK_ID,
    Vocabulary,
    encode_ragged,
    pad_ragged,
    tokenise,
    trim_batch,
)
from litlab.errors import ConfigError, DataError

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
ARCHIVE = "aclImdb_v1.tar.gz"
ARCHIVE_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"  # the official archive; a repack is accepted unchecked
FOLDER = "aclImdb"
CLASSES = ("neg", "pos")  # label 0, label 1
SPLITS = ("train", "test")
EXTRACTED_MARKER = ".litlab-extracted"
MAX_UNK_FRACTION = 0.2  # more unknown training tokens than this: warn that the vocabulary is too small

Reviews = dict[str, tuple[list[str], list[int]]]  # split -> (texts, labels)


def read_folder(folder: Path) -> Reviews:
    reviews: Reviews = {}
    bad: list[str] = []
    for split in SPLITS:
        texts, labels = [], []
        for label, name in enumerate(CLASSES):
            class_dir = folder / split / name
            if not class_dir.is_dir():
                raise DataError(
                    f"{class_dir} is missing; re-extract {ARCHIVE} or delete {folder} to re-fetch"
                )
            files = sorted(class_dir.glob("*.txt"))
            if not files:
                raise DataError(f"{class_dir} holds no .txt reviews; re-extract {ARCHIVE} or delete {folder}")
            texts.extend(decode(f.read_bytes(), str(f), bad) for f in files)
            labels.extend([label] * len(files))
        reviews[split] = (texts, labels)
    warn_undecodable(bad)
    return reviews


def read_archive(archive: Path) -> Reviews:
    """Stream the reviews out of the tar.gz without extracting it (the data dir may be read-only)."""
    found: dict[tuple[str, int], list[tuple[str, bytes]]] = {(s, c): [] for s in SPLITS for c in range(2)}
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                parts = member.name.split("/")
                wanted = len(parts) == 4 and parts[1] in SPLITS and parts[2] in CLASSES
                if member.isfile() and wanted and parts[3].endswith(".txt"):
                    raw = tar.extractfile(member).read()  # type: ignore[union-attr]
                    found[parts[1], CLASSES.index(parts[2])].append((parts[3], raw))
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataError(f"{archive} is truncated or corrupt ({error}); replace it") from error
    reviews: Reviews = {}
    bad: list[str] = []
    for split in SPLITS:
        texts, labels = [], []
        for label, name in enumerate(CLASSES):
            files = sorted(found[split, label])
            if not files:
                raise DataError(
                    f"{archive} has no {FOLDER}/{split}/{name}/*.txt; it is not the aclImdb archive"
                )
            texts.extend(decode(raw, f"{archive}:{split}/{name}/{n}", bad) for n, raw in files)
            labels.extend([label] * len(files))
        reviews[split] = (texts, labels)
    warn_undecodable(bad)
    return reviews


def decode(raw: bytes, name: str, bad: list[str]) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        bad.append(name)
        return raw.decode("utf-8", errors="replace")


def warn_undecodable(bad: list[str]) -> None:
    if bad:
        warnings.warn(
            f"{len(bad)} review file(s) are not valid UTF-8 (first: {bad[0]}); undecodable bytes were "
            "replaced by U+FFFD. Re-save them as UTF-8 to silence this.",
            stacklevel=2,
        )


class IMDBDataModule(ShuffledDataModule):
    name = "imdb"
    classes = CLASSES

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        val_size: int = 5000,
        split_seed: int = 0,
        folds: int | None = None,
        fold: int = 0,
        max_len: int = 400,
        truncation: str = "pre",
        max_size: int = 20000,
        min_freq: int = 1,
        lowercase: bool = True,
        bucket: bool = True,
        cache_dir: str | None = None,
        fallback_cache_dir: str = "data/cache",
        download: bool = True,
        drop_last: bool = False,
    ) -> None:
        super().__init__()
        if truncation not in TRUNCATION_SIDES:
            raise ConfigError(f"data.truncation={truncation!r} is not one of {TRUNCATION_SIDES}")
        if min(batch_size, eval_batch_size, max_len, max_size, min_freq) < 1 or val_size < 0:
            raise ConfigError(
                "data.batch_size, eval_batch_size, max_len, max_size and min_freq must be >= 1, val_size >= 0"
            )
        self.data_dir = Path(data_dir).expanduser()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.configure_split(val_size, split_seed, folds, fold)
        self.max_len, self.truncation = max_len, truncation
        self.max_size, self.min_freq, self.lowercase = max_size, min_freq, lowercase
        self.bucket, self.download, self.drop_last = bucket, download, drop_last
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.fallback_cache_dir = Path(fallback_cache_dir).expanduser()
        self.vocab: Vocabulary | None = None
        self.splits: dict[str, TensorBatchDataset] = {}
        self.setup_info: dict[str, float | bool | str] = {}

    num_classes = len(CLASSES)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.max_len,)

    # --- finding the files -------------------------------------------------------------------
    def source(self) -> Path:
        """The extracted folder, or the archive when the data dir is read-only."""
        folder, archive = self.data_dir / FOLDER, self.data_dir / ARCHIVE
        if folder.is_dir() and ((folder / EXTRACTED_MARKER).exists() or not archive.exists()):
            return folder
        hint = offline_hint("IMDB", self.data_dir, f"{ARCHIVE} or the extracted {FOLDER}/")
        find_or_download(archive, URL, ARCHIVE_MD5, self.download, hint)
        if not is_writable_dir(self.data_dir):
            return archive  # read in place: the encoded cache makes later runs cheap
        folder = extract_once(archive, FOLDER)
        (folder / EXTRACTED_MARKER).touch()
        return folder

    @staticmethod
    def fingerprint(source: Path) -> list:
        """Cheap identity of the source files, so edited or replaced data is re-encoded."""
        if source.is_file():
            stat = source.stat()
            return [str(source.resolve()), stat.st_size, stat.st_mtime_ns]
        entries = []
        for split in SPLITS:
            for name in CLASSES:
                class_dir = source / split / name
                stats = [f.stat() for f in os.scandir(class_dir)] if class_dir.is_dir() else []
                newest = max((s.st_mtime_ns for s in stats), default=0)
                entries.append([f"{split}/{name}", len(stats), sum(s.st_size for s in stats), newest])
        return [str(source.resolve()), entries]

    # --- encoding and its cache --------------------------------------------------------------
    def encode(self, source: Path) -> dict:
        reviews = read_folder(source) if source.is_dir() else read_archive(source)
        train_texts, train_labels = reviews["train"]
        train_tokens = [tokenise(t, self.lowercase) for t in train_texts]
        vocab = Vocabulary.build(train_tokens, self.max_size, self.min_freq)  # train only: no test leak
        if len(vocab) <= 2:
            raise DataError(
                f"the IMDB vocabulary is empty: no training word occurs {self.min_freq}+ times; "
                "lower data.min_freq"
            )
        encoded = {
            "itos": vocab.itos,
            "train": (*encode_ragged(train_tokens, vocab), torch.tensor(train_labels)),
        }
        del train_tokens
        test_texts, test_labels = reviews["test"]
        test_tokens = (tokenise(t, self.lowercase) for t in test_texts)
        encoded["test"] = (*encode_ragged(test_tokens, vocab), torch.tensor(test_labels))
        return encoded

    def load_encoded(self) -> dict:
        """The encoded corpus and vocabulary, keyed by every setting that changes them and by the
        source files (max_len and the truncation side apply afterwards, so they share one cache)."""
        source = self.source()
        settings = {
            "tokeniser": TOKENISER_VERSION,
            "lowercase": self.lowercase,
            "max_size": self.max_size,
            "min_freq": self.min_freq,
            "source": self.fingerprint(source),
        }
        root = self.cache_dir or (
            self.data_dir if is_writable_dir(self.data_dir) else self.fallback_cache_dir
        )
        encoded, path, hit = cached(
            root,
            "imdb",
            settings,
            lambda: self.encode(source),
            "reading and tokenising the IMDB reviews",
        )
        self.setup_info.update(cache_hit=hit, cache_path=str(path))
        return encoded

    # --- Lightning hooks ---------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.source()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        start = time.perf_counter()
        encoded = self.load_encoded()
        self.vocab = Vocabulary(encoded["itos"][2:])
        ids, offsets, labels = encoded["train"]
        tokens, lengths = pad_ragged(ids, offsets, self.max_len, self.truncation)
        self.warn_if_vocab_too_small(ids)
        train_idx, val_idx = self.split_rows(labels, "reviews")
        self.splits["train"] = TensorBatchDataset(tokens[train_idx], lengths[train_idx], labels[train_idx])
        self.splits["val"] = TensorBatchDataset(tokens[val_idx], lengths[val_idx], labels[val_idx])
        ids, offsets, labels = encoded["test"]
        tokens, lengths = pad_ragged(ids, offsets, self.max_len, self.truncation)
        self.splits["test"] = TensorBatchDataset(tokens, lengths, labels)
        self.setup_info["setup_s"] = round(time.perf_counter() - start, 3)

    def warn_if_vocab_too_small(self, train_ids: torch.Tensor) -> None:
        unknown = float((train_ids == UNK_ID).float().mean()) if len(train_ids) else 1.0
        if unknown > MAX_UNK_FRACTION:
            warnings.warn(
                f"the IMDB vocabulary ({len(self.vocab)} tokens) leaves {100 * unknown:.0f} % of training "
                "tokens unknown; raise data.max_size or lower data.min_freq",
                stacklevel=2,
            )

    @property
    def vocab_size(self) -> int:
        if self.vocab is None:
            raise RuntimeError("call setup() first: the vocabulary is built from the training split")
        return len(self.vocab)

    def train_dataloader(self) -> DataLoader:
        data = self.splits["train"]
        if self.bucket:
            lengths, rng = data.tensors[1], self._shuffle_rng()
            return bucketed_loader(data, lengths, self.device_batch_size, rng, self.drop_last, *self.ranks)
        return DataLoader(
            data,
            batch_size=self.device_batch_size,
            shuffle=True,
            drop_last=self.drop_last,
            generator=self._shuffle_rng(),
            collate_fn=trim_batch,
        )

    def _eval_loader(self, split: str) -> DataLoader:
        """Evaluation batches in length order: the fewest padded steps, and the order changes no metric."""
        data = self.splits[split]
        return length_sorted_loader(data, data.tensors[1], self.eval_batch_size, *self.ranks)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
