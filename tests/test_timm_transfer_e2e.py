"""End-to-end runs of train.py with model=timm on tiny data: it learns, and its backbone transfers."""

from __future__ import annotations

import functools
import time

import pytest
import torch

from litlab.errors import ConfigError
from litlab.models.transfer.module import TimmClassifier

FAST = [
    "logger=csv",
    "trainer.accelerator=cpu",
    "data.val_size=100",
    "data.batch_size=32",
    "data.download=false",
]
TIMM = ["model=timm", "model.backbone=test_resnet", "model.optimizer.lr=0.01", *FAST, "data.batch_size=16"]


@pytest.mark.heavy
def test_timm_backbone_learns_and_transfers_to_one_channel_mnist(run_script, cifar_dir, mnist_dir):
    source = run_script(
        *TIMM, f"paths.data_dir={cifar_dir}", "data.class_subset=[0,1,2,3,4]", "trainer.max_epochs=3"
    )
    assert source.metrics["test"]["test/acc"] > 0.5  # chance is 0.2
    ckpt = source.metrics["best"]["ckpt_path"]
    target = run_script(  # another data set, 1 channel, 28 px, gradual unfreezing with a lower backbone lr
        *TIMM,
        "data=mnist",
        f"paths.data_dir={mnist_dir}",
        f"model.backbone_ckpt={ckpt}",
        "model.backbone=null",
        "model.finetune=gradual",
        "model.unfreeze_at=[1]",
        "model.backbone_lr_factor=0.1",
        "data.labels_per_class=30",
        "trainer.max_epochs=3",
    )
    assert target.metrics["test"]["test/acc"] > 0.4  # chance is 0.1
    # the backbone really is the source's: weights equal, head fresh and sized for the new classes
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    transferred = TimmClassifier(
        backbone=None, backbone_ckpt=ckpt, num_classes=10, input_shape=[3, 28, 28], optimizer=torch.optim.SGD
    )
    for key, value in transferred.state_dict().items():
        if key.startswith("net.") and not key.startswith("net.fc."):
            assert torch.equal(value, state[key]), key
    assert transferred.net.fc.out_features == 10


def test_cnn_checkpoint_as_backbone(run_script, cifar_dir):
    cnn = run_script("model=cnn", f"paths.data_dir={cifar_dir}", "trainer.max_epochs=1", *FAST)
    ckpt = cnn.metrics["best"]["ckpt_path"]
    build = functools.partial(TimmClassifier, backbone=None, backbone_ckpt=ckpt, optimizer=torch.optim.SGD)
    with pytest.raises(ConfigError, match="cannot take 28x28 input.*model.input_size"):
        build(num_classes=4, input_shape=[1, 28, 28])  # its dense layer was sized for 32 px
    grey = build(num_classes=4, input_shape=[1, 28, 28], input_size=32)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    head = grey.net.litlab_head
    for key, value in grey.state_dict().items():
        if key.startswith("net.") and not key.startswith(f"net.{head}.") and key != "net.0.0.weight":
            assert torch.equal(value, state[key]), key
    assert torch.allclose(grey.net[0][0].weight, state["net.0.0.weight"].sum(1, keepdim=True))
    assert grey(torch.rand(2, 1, 28, 28)).shape == (2, 4)


def test_pretrained_weights_unreachable_is_one_clear_line_and_no_hang(run_script, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: no network
    start = time.perf_counter()
    run = run_script(
        "model=timm", "model.backbone=test_resnet", "model.pretrained=true", *FAST, expect_ok=False
    )
    assert time.perf_counter() - start < 60
    assert run.proc.returncode == 1
    error = [line for line in run.proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "model.safetensors" in error[0] and "model.pretrained_path" in error[0]
