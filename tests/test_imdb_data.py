"""IMDB data: tokeniser, train-only vocabulary, PAD/UNK, truncation, the encoded cache, bad input."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from fakedata import write_imdb  # noqa: E402
from litlab.data.imdb import IMDBDataModule  # noqa: E402
from litlab.data.text import PAD_ID, UNK_ID, BucketBatchSampler, Vocabulary, pad_ragged, tokenise  # noqa: E402
from litlab.errors import ConfigError, DataError  # noqa: E402


def datamodule(root: Path, **overrides) -> IMDBDataModule:
    settings = {"data_dir": str(root), "val_size": 20, "download": False, "max_len": 50, **overrides}
    dm = IMDBDataModule(**settings)
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def imdb_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imdb")
    write_imdb(root)
    return root


def test_tokeniser_lowercases_strips_breaks_and_splits_punctuation():
    assert tokenise("A GREAT film.<br /><br />Don't miss it!!") == [
        "a", "great", "film", ".", "don't", "miss", "it", "!", "!",
    ]  # fmt: skip
    assert tokenise("Great<br/>Film", lowercase=False) == ["Great", "Film"]


def test_vocabulary_ranks_by_frequency_caps_size_and_drops_rare_words():
    docs = [["b", "a", "b", "c"], ["b", "a", "d"]]
    vocab = Vocabulary.build(docs, max_size=2)
    assert vocab.itos == ["<pad>", "<unk>", "b", "a"] and (vocab.stoi["<pad>"], vocab.stoi["<unk>"]) == (0, 1)
    assert Vocabulary.build(docs, max_size=10, min_freq=2).itos[2:] == ["b", "a"]
    assert vocab.encode(["a", "zzz", "b"]) == [3, UNK_ID, 2]


@pytest.mark.parametrize("truncation, kept", [("pre", [3, 4, 5]), ("post", [1, 2, 3])])
def test_truncation_side_and_end_padding(truncation, kept):
    ids, offsets = torch.tensor([1, 2, 3, 4, 5, 7], dtype=torch.int32), torch.tensor([0, 5, 6, 6])
    tokens, lengths = pad_ragged(ids, offsets, max_len=3, truncation=truncation)
    assert tokens.tolist() == [kept, [7, PAD_ID, PAD_ID], [PAD_ID] * 3] and lengths.tolist() == [3, 1, 0]


def test_vocabulary_comes_from_train_only_and_unknown_words_become_unk(imdb_dir):
    dm = datamodule(imdb_dir)
    assert "testonly" not in dm.vocab.stoi and "great" in dm.vocab.stoi
    assert "<br" not in dm.vocab.stoi and "." in dm.vocab.stoi
    test_tokens, test_lengths, test_labels = dm.splits["test"].tensors
    assert (test_tokens == UNK_ID).any() and not (dm.splits["train"].tensors[0] == UNK_ID).any()
    assert len(test_labels) == 80 and test_labels.float().mean() == 0.5  # official test split, both classes
    assert len(dm.splits["train"]) + len(dm.splits["val"]) == 120 and len(dm.splits["val"]) == 20
    padding = torch.arange(50) >= test_lengths[:, None]
    assert (test_tokens[padding] == PAD_ID).all() and (test_tokens[~padding] != PAD_ID).all()


def test_validation_split_is_seeded(imdb_dir):
    first, again = datamodule(imdb_dir), datamodule(imdb_dir)
    other = datamodule(imdb_dir, split_seed=1)
    assert torch.equal(first.splits["val"].tensors[0], again.splits["val"].tensors[0])
    assert not torch.equal(first.splits["val"].tensors[0], other.splits["val"].tensors[0])


def test_cache_is_reused_and_a_changed_setting_never_reads_a_stale_one(tmp_path):
    write_imdb(tmp_path)
    cold = datamodule(tmp_path)
    warm = datamodule(tmp_path, max_len=20)  # max_len applies after the cache: still a hit
    assert cold.setup_info["cache_hit"] is False and warm.setup_info["cache_hit"] is True
    assert warm.setup_info["cache_path"] == cold.setup_info["cache_path"]
    assert warm.splits["test"].tensors[0].shape[1] == 20 and warm.vocab.itos == cold.vocab.itos
    with pytest.warns(UserWarning, match="training tokens unknown"):
        small = datamodule(tmp_path, max_size=5)
    assert small.setup_info["cache_hit"] is False and len(small.vocab) == 7
    assert datamodule(tmp_path, min_freq=3).setup_info["cache_hit"] is False
    assert datamodule(tmp_path, lowercase=False).vocab.itos != cold.vocab.itos
    review = next((tmp_path / "aclImdb" / "train" / "pos").glob("0_*.txt"))
    review.write_text("A brand new superb review.")  # edited data: the old encoding must not be used
    edited = datamodule(tmp_path)
    assert edited.setup_info["cache_hit"] is False and "brand" in edited.vocab.stoi


def test_archive_in_read_only_dir_loads_like_the_folder(tmp_path, imdb_dir):
    read_only = tmp_path / "ro"
    write_imdb(read_only, archive=True)
    read_only.chmod(0o555)  # a shared, read-only data folder (honoured even when running as root)
    from_archive = datamodule(read_only, fallback_cache_dir=str(tmp_path / "cache"))
    assert sorted(p.name for p in read_only.iterdir()) == ["aclImdb_v1.tar.gz"]  # nothing written there
    assert list((tmp_path / "cache").glob(".litlab-imdb-*.pt"))
    from_folder = datamodule(imdb_dir)
    for split in ("train", "val", "test"):
        for ours, theirs in zip(
            from_archive.splits[split].tensors, from_folder.splits[split].tensors, strict=True
        ):
            assert torch.equal(ours, theirs)


def test_archive_is_extracted_once_and_unsup_is_optional(tmp_path):
    write_imdb(tmp_path, archive=True)
    dm = datamodule(tmp_path)
    assert (tmp_path / "aclImdb" / "train" / "pos").is_dir() and not (
        tmp_path / "aclImdb" / "train" / "unsup"
    ).exists()
    marker = tmp_path / "aclImdb" / ".litlab-extracted"
    stamp = marker.stat().st_mtime_ns
    assert datamodule(tmp_path).vocab.itos == dm.vocab.itos and marker.stat().st_mtime_ns == stamp


def test_bucketed_batches_cover_every_review_once_with_similar_lengths():
    lengths = torch.randint(1, 400, (1000,))
    sampler = BucketBatchSampler(lengths, 32, torch.Generator().manual_seed(0), pool_batches=10)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000)) and len(batches) == len(sampler)
    spread = sum(int(lengths[b].max() - lengths[b].min()) for b in batches) / len(batches)
    assert spread < 60  # random batches of 32 would spread over ~370 tokens
    assert batches != list(BucketBatchSampler(lengths, 32, torch.Generator().manual_seed(1)))


def test_missing_data_offline_names_the_fix(tmp_path):
    with pytest.raises(DataError, match=r"IMDB not found in .*aclImdb_v1.tar.gz.*paths.data_dir="):
        datamodule(tmp_path)


def test_missing_and_empty_class_folders_are_named(tmp_path):
    folder = write_imdb(tmp_path)
    for review in (folder / "test" / "neg").iterdir():
        review.unlink()
    with pytest.raises(DataError, match=r"test/neg holds no .txt reviews"):
        datamodule(tmp_path)
    (folder / "test" / "neg").rmdir()
    with pytest.raises(DataError, match=r"test/neg is missing"):
        datamodule(tmp_path)


def test_corrupt_archive_is_named(tmp_path):
    archive = write_imdb(tmp_path, archive=True)
    archive.write_bytes(archive.read_bytes()[:300])
    with pytest.raises(DataError, match="truncated or corrupt"):
        datamodule(tmp_path)


def test_non_utf8_review_warns_and_still_loads(tmp_path):
    folder = write_imdb(tmp_path)
    next((folder / "train" / "pos").glob("0_*.txt")).write_bytes(b"Superb \xff\xfe film")
    with pytest.warns(UserWarning, match=r"1 review file\(s\) are not valid UTF-8 \(first: .*/0_\d+.txt\)"):
        dm = datamodule(tmp_path)
    assert "superb" in dm.vocab.stoi


def test_too_small_vocabulary_is_an_error_or_a_warning(tmp_path):
    write_imdb(tmp_path)
    with pytest.raises(DataError, match="vocabulary is empty.*lower data.min_freq"):
        datamodule(tmp_path, min_freq=10**6)
    with pytest.warns(UserWarning, match="% of training tokens unknown; raise data.max_size"):
        datamodule(tmp_path, max_size=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        datamodule(tmp_path)  # the default vocabulary covers the tiny set: no warning


def test_bad_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="data.truncation='middle'"):
        IMDBDataModule(str(tmp_path), truncation="middle")
    with pytest.raises(ConfigError, match="max_len"):
        IMDBDataModule(str(tmp_path), max_len=0)


def test_distributed_buckets_are_disjoint_equal_per_rank_and_seeded_by_epoch():
    from litlab.data.sharding import DistributedBucketSampler, DistributedSortedBatches

    lengths = torch.randint(1, 400, (1000,), generator=torch.Generator().manual_seed(0))
    ranks = [DistributedBucketSampler(lengths, 32, num_replicas=2, rank=r, seed=7) for r in (0, 1)]
    epoch0 = [list(sampler) for sampler in ranks]
    assert len(epoch0[0]) == len(epoch0[1]) == len(ranks[0]) == 16  # 32 batches of 32 (one short): 16 each
    seen = [i for batches in epoch0 for batch in batches for i in batch]
    assert len(seen) == len(set(seen))  # no sample on both ranks
    for sampler in ranks:
        sampler.set_epoch(1)
    assert [list(sampler) for sampler in ranks] != epoch0
    evaluation = [DistributedSortedBatches(lengths[:999], 100, num_replicas=2, rank=r) for r in (0, 1)]
    assert len(evaluation[0]) == len(evaluation[1]) == 5
    covered = {i for sampler in evaluation for batch in sampler for i in batch}
    assert covered == set(range(999))  # every sample evaluated (one twice: the padding)
