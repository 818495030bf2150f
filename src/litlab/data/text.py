"""Text pieces shared by sequence data sets: tokeniser, vocabulary, ragged encoding, bucketed batches.

Encoded corpora are kept ragged (one flat int32 tensor plus offsets), so ``max_len`` and the
truncation side are applied at load time and never invalidate a cache of the encoding.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import Sampler

from litlab.errors import ConfigError, DataError

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
TRUNCATION_SIDES = ("pre", "post")  # Keras names: "pre" drops the head, "post" drops the tail
TOKENISER_VERSION = 1  # bump when tokenise() changes: it is part of every cache key

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TOKEN = re.compile(r"[\w']+|[^\w\s]")


def tokenise(text: str, lowercase: bool = True) -> list[str]:
    """Words (apostrophes kept: "don't") and single punctuation marks; ``<br />`` tags become spaces."""
    text = _BREAK.sub(" ", text)
    return _TOKEN.findall(text.lower() if lowercase else text)


class Vocabulary:
    """Word <-> id, PAD = 0 and UNK = 1, then words by falling frequency (ties alphabetically)."""

    def __init__(self, words: Sequence[str]) -> None:
        self.itos = [PAD, UNK, *words]
        self.stoi = {word: index for index, word in enumerate(self.itos)}

    @classmethod
    def build(cls, documents: Iterable[Sequence[str]], max_size: int, min_freq: int = 1) -> Vocabulary:
        counts: Counter[str] = Counter()
        for tokens in documents:
            counts.update(tokens)
        ranked = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        return cls(ranked[:max_size])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        get = self.stoi.get
        return [get(token, UNK_ID) for token in tokens]


def encode_ragged(documents: Iterable[Sequence[str]], vocab: Vocabulary) -> tuple[torch.Tensor, torch.Tensor]:
    """All documents as one flat int32 id tensor plus int64 offsets (``offsets[i]:offsets[i+1]``)."""
    ids: list[int] = []
    offsets = [0]
    for tokens in documents:
        ids.extend(vocab.encode(tokens))
        offsets.append(len(ids))
    return torch.tensor(ids, dtype=torch.int32), torch.tensor(offsets, dtype=torch.int64)


def pad_ragged(
    ids: torch.Tensor, offsets: torch.Tensor, max_len: int, truncation: str = "pre"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut every document to ``max_len`` tokens and pad at the end: (int32 [N, max_len], int64 lengths).

    Padding always goes at the end: models pack by length, so where the padding sits never changes
    a result; only which tokens are kept does ("pre" keeps the last ``max_len``, as Keras does)."""
    starts, full = offsets[:-1], offsets[1:] - offsets[:-1]
    lengths = full.clamp(max=max_len)
    if truncation == "pre":
        starts = starts + full - lengths
    positions = torch.arange(max_len)
    index = (starts[:, None] + positions).clamp(max=max(len(ids) - 1, 0))
    keep = positions < lengths[:, None]
    padded = torch.where(keep, ids[index] if len(ids) else 0, PAD_ID).to(torch.int32)
    return padded, lengths


def trim_batch(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """collate_fn for (tokens, lengths, labels) batches: drop the columns that are padding in every row."""
    tokens, lengths, labels = batch
    return tokens[:, : max(int(lengths.max()), 1)].long(), lengths, labels


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar lengths, so little time is spent on padding (or on packing it away).

    Shuffles, cuts the order into pools of ``pool_batches`` batches, sorts each pool by length,
    splits it into batches and shuffles the batches: still random, but each batch is compact."""

    def __init__(
        self,
        lengths: torch.Tensor,
        batch_size: int,
        generator: torch.Generator,
        drop_last: bool = False,
        pool_batches: int = 50,
    ) -> None:
        self.lengths, self.batch_size, self.generator = lengths, batch_size, generator
        self.drop_last, self.pool = drop_last, batch_size * pool_batches

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(len(self.lengths), generator=self.generator)
        batches: list[torch.Tensor] = []
        for pool in order.split(self.pool):
            pool = pool[self.lengths[pool].argsort(stable=True)]
            batches.extend(pool.split(self.batch_size))
        if self.drop_last:  # only the last pool can end in a short batch
            batches = [b for b in batches if len(b) == self.batch_size]
        for i in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[i].tolist()


def load_word_vectors(path: Path, itos: Sequence[str], dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Vectors for the vocabulary from a GloVe or word2vec text file: (float [V, dim], bool found [V]).

    word2vec's "count dim" header line is skipped; words absent from the vocabulary are skipped
    without parsing, so a multi-GB file costs one pass of reading."""
    if not path.is_file():
        raise DataError(f"model.embedding_path={path} does not exist; point it at a GloVe/word2vec .txt file")
    index = {word: i for i, word in enumerate(itos)}
    vectors = torch.zeros(len(itos), dim)
    found = torch.zeros(len(itos), dtype=torch.bool)
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle):
            parts = line.rstrip().split(" ")
            if number == 0 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header
            if len(parts) - 1 != dim:
                if number < 2:
                    raise ConfigError(
                        f"{path} holds {len(parts) - 1}-dimensional vectors; set model.embedding_dim={len(parts) - 1}"
                    )
                parts = [" ".join(parts[:-dim]), *parts[-dim:]]  # a word with spaces (GloVe 840B)
            row = index.get(parts[0])
            if row is None or found[row]:
                continue
            try:
                vectors[row] = torch.tensor([float(v) for v in parts[1:]])
            except ValueError as error:
                raise DataError(f"{path} line {number + 1} is not 'word v1 ... v{dim}' ({error})") from error
            found[row] = True
    return vectors, found
