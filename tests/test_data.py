"""The real CIFAR-10 and MNIST parsers on tiny files in the official formats."""

from __future__ import annotations

import gzip
import sys
from functools import partial
from pathlib import Path

import pytest
import torch

from litlab.data import cifar10 as cifar_module
from litlab.data import mnist as mnist_module
from litlab.data.batching import random_crop, random_hflip
from litlab.data.cifar10 import CIFAR10DataModule
from litlab.data.download import file_md5
from litlab.data.mnist import MNISTDataModule
from litlab.errors import ConfigError, DataError

sys.path.insert(0, str(Path(__file__).parent))
from fakedata import write_cifar10, write_mnist  # noqa: E402


def test_cifar_folder_loads_with_seeded_split(cifar_dir):
    dm = CIFAR10DataModule(str(cifar_dir), val_size=50, download=False)
    dm.setup()
    assert len(dm.splits["train"]) == 450 and len(dm.splits["val"]) == 50 and len(dm.splits["test"]) == 200
    images, labels = dm.splits["train"].tensors
    assert images.dtype == torch.uint8 and images.shape[1:] == (3, 32, 32) and labels.max() < 10
    again = CIFAR10DataModule(str(cifar_dir), val_size=50, download=False)
    again.setup()
    assert torch.equal(again.splits["val"].tensors[0], dm.splits["val"].tensors[0])
    other_seed = CIFAR10DataModule(str(cifar_dir), val_size=50, split_seed=1, download=False)
    other_seed.setup()
    assert not torch.equal(other_seed.splits["val"].tensors[1], dm.splits["val"].tensors[1])


def test_cifar_archive_is_extracted_once(tmp_path):
    write_cifar10(tmp_path, archive=True)
    dm = CIFAR10DataModule(str(tmp_path), val_size=50, download=False)
    dm.prepare_data()
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    assert batch.exists()
    mtime = batch.stat().st_mtime_ns
    CIFAR10DataModule(str(tmp_path), val_size=50, download=False).setup()
    assert batch.stat().st_mtime_ns == mtime


def test_cifar_archive_in_read_only_dir_is_extracted_to_the_cache(tmp_path, monkeypatch):
    from litlab.data import download as download_module

    data_dir, cache = tmp_path / "shared", tmp_path / "cache"
    write_cifar10(data_dir, archive=True)
    monkeypatch.setenv("LITLAB_CACHE_DIR", str(cache))
    monkeypatch.setattr(download_module, "is_writable_dir", lambda path: False)  # as on a read-only mount
    dm = CIFAR10DataModule(str(data_dir), val_size=50, download=False)
    dm.setup()
    assert len(dm.splits["test"]) == 200 and not (data_dir / "cifar-10-batches-py").exists()
    assert len(list(cache.glob("*/cifar-10-batches-py/test_batch"))) == 1


def test_replaced_archive_is_extracted_again(tmp_path):
    write_cifar10(tmp_path, archive=True)
    CIFAR10DataModule(str(tmp_path), val_size=50, download=False).setup()
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()  # a half-finished extraction
    (tmp_path / "cifar-10-python.tar.gz").touch()
    dm = CIFAR10DataModule(str(tmp_path), val_size=50, download=False)
    dm.setup()
    assert len(dm.splits["test"]) == 200


def test_parsed_cifar_split_is_cached_and_follows_its_files(tmp_path, monkeypatch):
    folder = write_cifar10(tmp_path)
    first = CIFAR10DataModule(str(tmp_path), val_size=50, download=False)
    first.setup()
    assert len(list(folder.glob(".litlab-cifar10-train-*.pt"))) == 1
    assert len(list(folder.glob(".litlab-cifar10-test-*.pt"))) == 1

    def no_parsing(raw: bytes, name: str):
        raise AssertionError(f"{name} was parsed although its cache is current")

    monkeypatch.setattr(cifar_module, "parse_batch", no_parsing)
    cached = CIFAR10DataModule(str(tmp_path), val_size=50, download=False)
    cached.setup()
    for split in ("train", "val", "test"):
        for ours, theirs in zip(cached.splits[split].tensors, first.splits[split].tensors, strict=True):
            assert torch.equal(ours, theirs) and ours.dtype == theirs.dtype
    monkeypatch.undo()

    write_cifar10(tmp_path, per_batch=120)  # the batch files are replaced: the cache must not be used
    replaced = CIFAR10DataModule(str(tmp_path), val_size=50, download=False)
    replaced.setup()
    assert len(replaced.splits["train"]) == 5 * 120 - 50

    for cache in folder.glob(".litlab-cifar10-train-*.pt"):
        cache.write_bytes(b"damaged")  # a broken cache is rebuilt
    rebuilt = CIFAR10DataModule(str(tmp_path), val_size=50, download=False)
    rebuilt.setup()
    assert torch.equal(rebuilt.splits["train"].tensors[0], replaced.splits["train"].tensors[0])


def test_truncated_cifar_batch_names_the_file(tmp_path):
    folder = write_cifar10(tmp_path)
    batch = folder / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:5000])
    with pytest.raises(DataError, match="data_batch_3"):
        CIFAR10DataModule(str(tmp_path), download=False, val_size=50).setup()


def test_missing_cifar_offline_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match=r"cifar-10-python.tar.gz.*paths.data_dir=.*DATA_DIR"):
        CIFAR10DataModule(str(tmp_path), download=False).prepare_data()


def test_failed_download_leaves_no_partial_file_and_explains(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar_module, "URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    with pytest.raises(DataError, match=r"download of .* failed.*|not found in"):
        CIFAR10DataModule(str(tmp_path), download=True).prepare_data()
    assert list(tmp_path.iterdir()) == []


def test_download_checks_the_md5(tmp_path, monkeypatch):
    source = write_cifar10(tmp_path / "src", archive=True)
    monkeypatch.setattr(cifar_module, "URL", source.as_uri())
    with pytest.raises(DataError, match="corrupt: md5"):
        CIFAR10DataModule(str(tmp_path / "dst"), download=True).prepare_data()
    monkeypatch.setattr(cifar_module, "ARCHIVE_MD5", file_md5(source))
    dm = CIFAR10DataModule(str(tmp_path / "dst"), download=True, val_size=50)
    dm.prepare_data()
    dm.setup()
    assert len(dm.splits["test"]) == 200


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_files_gzipped_or_not(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    dm = MNISTDataModule(str(tmp_path), val_size=100, download=False)
    dm.setup()
    images, labels = dm.splits["train"].tensors
    assert images.shape == (500, 1, 28, 28) and images.dtype == torch.uint8 and len(labels) == 500
    assert len(dm.splits["test"]) == 200


def test_truncated_mnist_file_names_it(tmp_path):
    folder = write_mnist(tmp_path, gz=False)
    victim = folder / "train-images-idx3-ubyte"
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        MNISTDataModule(str(tmp_path), val_size=100, download=False).setup()


def test_corrupt_mnist_deflate_data_names_the_file(tmp_path):
    """Bytes flipped inside the deflate stream: zlib.error, a CRC or a length error, never a traceback."""
    import zlib

    folder = write_mnist(tmp_path)
    victim = folder / "train-images-idx3-ubyte.gz"
    raw = bytearray(victim.read_bytes())
    raw[40:60] = bytes(b ^ 0xFF for b in raw[40:60])
    victim.write_bytes(bytes(raw))
    with pytest.raises(zlib.error):
        gzip.decompress(bytes(raw))  # the fault is the one the issue saw
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz is truncated or corrupt .*replace it"):
        MNISTDataModule(str(tmp_path), val_size=100, download=False).setup()


def test_missing_mnist_offline_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_module, "MIRROR", "http://127.0.0.1:9/")
    with pytest.raises(DataError, match=r"MNIST not found.*paths.data_dir"):
        MNISTDataModule(str(tmp_path), download=True).prepare_data()


def test_class_subset_and_label_budget(cifar_dir):
    dm = CIFAR10DataModule(
        str(cifar_dir), val_size=20, class_subset=[5, 6, 7], labels_per_class=4, download=False
    )
    dm.setup()
    labels = dm.splits["train"].tensors[1]
    assert dm.num_classes == 3 and sorted(labels.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    assert set(dm.splits["test"].tensors[1].tolist()) <= {0, 1, 2}


def test_bad_class_subset_is_a_config_error(cifar_dir):
    with pytest.raises(ConfigError, match="class_subset"):
        CIFAR10DataModule(str(cifar_dir), class_subset=[3, 12])


def test_batch_augmentation_keeps_pixels_and_shapes():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    cropped = random_crop(images, padding=2)
    assert cropped.shape == images.shape
    for original, shifted in zip(images, cropped, strict=True):  # every kept pixel comes from the original
        kept = shifted[shifted != 0]
        assert torch.isin(kept, original).all()
    torch.manual_seed(0)
    flipped = random_hflip(images.repeat(50, 1, 1, 1))
    same = (flipped == images.repeat(50, 1, 1, 1)).flatten(1).all(1)
    mirrored = (flipped == images.repeat(50, 1, 1, 1).flip(3)).flatten(1).all(1)
    assert (same | mirrored).all() and 20 < int(mirrored.sum()) < 80


def test_a_folder_marked_read_only_counts_as_read_only_even_for_root(tmp_path):
    from litlab.data.download import is_writable_dir

    assert is_writable_dir(tmp_path)
    tmp_path.chmod(0o555)
    try:
        assert not is_writable_dir(tmp_path)
    finally:
        tmp_path.chmod(0o755)


def test_on_device_placement_draws_the_same_images_and_pixels(cifar_dir):
    """data.on_device puts the uint8 set on the trainer's device once (here the CPU: the same code
    path as on a GPU); which images a seed draws, and their augmented pixels, do not change."""
    import lightning as L

    from litlab.models.mlp import MLPClassifier

    class Seen(L.Callback):
        def __init__(self) -> None:
            self.batches: list[tuple[torch.Tensor, torch.Tensor]] = []

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.batches.append((batch[0].clone(), batch[1].clone()))

    def fit(on_device: bool):
        L.seed_everything(3, verbose=False)
        datamodule = CIFAR10DataModule(
            str(cifar_dir), batch_size=64, val_size=100, crop_padding=2, hflip=True, translate=1,
            download=False, on_device=on_device,
        )  # fmt: skip
        model = MLPClassifier(
            num_classes=10,
            input_shape=[3, 32, 32],
            optimizer=partial(torch.optim.SGD, lr=0.01),
            hidden_sizes=[8],
        )
        seen = Seen()
        trainer = L.Trainer(
            max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
            num_sanity_val_steps=0, limit_val_batches=0, callbacks=[seen],
        )  # fmt: skip
        trainer.fit(model, datamodule=datamodule)
        assert datamodule.splits["train"].source[0].device == trainer.strategy.root_device
        return seen.batches

    host, device = fit(False), fit(True)
    assert len(host) == len(device) == 2 * 7  # 400 training images, batches of 64, two epochs
    for (host_x, host_y), (device_x, device_y) in zip(host, device, strict=True):
        assert torch.equal(host_y, device_y) and torch.equal(host_x, device_x)
