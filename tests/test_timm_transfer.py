"""The timm transfer family on timm's tiny test models: heads, channels, weights, freezing, schedules."""

from __future__ import annotations

import functools
import time

import huggingface_hub
import lightning as L
import pytest
import timm
import torch
from safetensors.torch import save_file
from torch.utils.data import DataLoader, TensorDataset

from litlab.errors import ConfigError
from litlab.models.schedulers import warmup_cosine
from litlab.models.transfer.finetuning import backbone_blocks, milestone_chunks
from litlab.models.transfer.module import TimmClassifier

SGD = functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9)


def model(**kwargs) -> TimmClassifier:
    options = {"backbone": "test_resnet", "num_classes": 5, "input_shape": [3, 32, 32], "optimizer": SGD}
    return TimmClassifier(**{**options, **kwargs})


def fit(module: TimmClassifier, epochs: int, callbacks=(), shape=(3, 32, 32)) -> L.Trainer:
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(
        torch.randn(64, *shape, generator=generator), torch.randint(0, 5, (64,), generator=generator)
    )
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
    trainer.fit(module, DataLoader(data, batch_size=32))
    return trainer


def backbone_state(net: torch.nn.Module, head: str = "fc.") -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items() if not k.startswith(head)}


def test_head_is_reset_to_the_classes_and_one_channel_input_works():
    grey = model(num_classes=3, input_shape=[1, 28, 28])
    assert grey(torch.rand(2, 1, 28, 28)).shape == (2, 3)
    assert grey.net.conv1[0].in_channels == 1 and grey.net.fc.out_features == 3


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_weights_file_loads_the_backbone_and_resets_the_mismatched_head(tmp_path, suffix):
    source = timm.create_model("test_resnet", num_classes=1000)  # an ImageNet-style 1000-class head
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        save_file(source.state_dict(), str(path))
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    loaded = model(pretrained_path=str(path))
    for key, value in backbone_state(source).items():
        assert torch.equal(loaded.net.state_dict()[key], value), key
    assert loaded.net.fc.weight.shape == (5, source.fc.in_features)
    grey = model(pretrained_path=str(path), input_shape=[1, 32, 32])  # RGB filters summed for 1 channel
    assert torch.allclose(grey.net.conv1[0].weight, source.conv1[0].weight.sum(1, keepdim=True))


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file(timm.create_model("test_efficientnet").state_dict(), str(path))
    with pytest.raises(ConfigError, match="another architecture"):
        model(pretrained_path=str(path))


def test_clear_errors_for_unknown_backbone_and_missing_weights(tmp_path):
    with pytest.raises(ConfigError, match="unknown model.backbone 'resnet_does_not_exist'"):
        model(backbone="resnet_does_not_exist")
    with pytest.raises(ConfigError, match=r"model.pretrained_path=.*missing.safetensors does not exist"):
        model(pretrained_path=str(tmp_path / "missing.safetensors"))
    with pytest.raises(ConfigError, match="model.finetune=gradual needs"):
        model(finetune="gradual")


def test_pretrained_without_cache_or_network_fails_fast_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    start = time.perf_counter()
    with pytest.raises(
        ConfigError, match=r"test_resnet.r160_in1k/resolve/main/model.safetensors.*pretrained_path"
    ):
        model(pretrained=True)
    assert time.perf_counter() - start < 10


def test_discriminative_learning_rate():
    optimizer = model(backbone_lr_factor=0.1).configure_optimizers()
    head, body = optimizer.param_groups
    assert head["lr"] == 0.1 and body["lr"] == pytest.approx(0.01)
    assert len(head["params"]) == 2  # fc weight and bias


def test_linear_probe_trains_only_the_head_and_keeps_batchnorm_statistics():
    probe = model(finetune="linear_probe")
    before = backbone_state(probe.net)
    head_before = probe.net.fc.weight.clone()
    fit(probe, epochs=1)
    assert [n for n, p in probe.net.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    for key, value in probe.net.state_dict().items():  # running means/vars included
        if key in before:
            assert torch.equal(value, before[key]), key
    assert not torch.equal(probe.net.fc.weight, head_before)


class RecordGroups(L.Callback):
    """What the optimiser and the backbone look like during each epoch (after the unfreeze hook)."""

    def __init__(self) -> None:
        self.epochs: list[dict] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        optimizer = trainer.optimizers[0]
        trainable = {n for n, p in pl_module.net.named_parameters() if p.requires_grad}
        self.epochs.append(
            {
                "groups": [{id(p) for p in g["params"]} for g in optimizer.param_groups],
                "initial_lrs": [g["initial_lr"] for g in optimizer.param_groups],
                "trainable": trainable,
                "bn_training": pl_module.net.layer1[0].bn1.training,
            }
        )


def test_gradual_unfreezing_adds_param_groups_at_each_milestone():
    scheduler = functools.partial(warmup_cosine, warmup_fraction=0.0, final_factor=0.0)
    gradual = model(finetune="gradual", unfreeze_at=[1, 2], backbone_lr_factor=0.1, scheduler=scheduler)
    top, bottom = milestone_chunks(backbone_blocks(gradual.net, ("fc.",)), 2)
    assert "layer4.0.conv1.weight" in top and "conv1.0.weight" in bottom
    record = RecordGroups()
    trainer = fit(gradual, epochs=3, callbacks=[record])
    params = dict(gradual.net.named_parameters())
    head = {"fc.weight", "fc.bias"}
    first, second, third = record.epochs
    assert first["trainable"] == head and len(first["groups"]) == 1 and not first["bn_training"]
    assert second["trainable"] == head | set(top) and len(second["groups"]) == 2
    assert second["groups"][1] == {id(params[n]) for n in top}
    assert third["trainable"] == set(params) and len(third["groups"]) == 3 and third["bn_training"]
    assert third["groups"][2] == {id(params[n]) for n in bottom}
    assert third["initial_lrs"] == pytest.approx([0.1, 0.01, 0.01])
    scheduler = trainer.lr_scheduler_configs[0].scheduler  # the new groups follow the cosine schedule
    factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
    assert [g["lr"] for g in trainer.optimizers[0].param_groups] == pytest.approx(
        [0.1 * factor, 0.01 * factor, 0.01 * factor]
    )


def test_pretrained_uses_timm_cache_offline(tmp_path, monkeypatch):
    """Weights already in the Hugging Face cache load through timm's own mechanism, with no network."""
    source = timm.create_model("test_resnet", num_classes=1000)
    offline_before = huggingface_hub.constants.HF_HUB_OFFLINE
    snapshot = tmp_path / "models--timm--test_resnet.r160_in1k" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    save_file(source.state_dict(), str(snapshot / "model.safetensors"))
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("litlab.models.transfer.weights.network_reachable", lambda *a: pytest.fail("probed"))
    loaded = model(pretrained=True)
    for key, value in backbone_state(source).items():
        assert torch.equal(loaded.net.state_dict()[key], value), key
    assert loaded.net.fc.out_features == 5
    assert offline_before == huggingface_hub.constants.HF_HUB_OFFLINE  # offline only while loading
