"""Speed recipes (airbench tricks): each technique's defining property, and cifar10_fast learning end to end."""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from litlab.data.cifar10 import CIFAR10DataModule
from litlab.ema import EMA, EMAState
from litlab.models.airbench import patches, whitening_filters
from litlab.models.mlp import MLPClassifier
from litlab.models.optim import SGDW
from litlab.models.registry import loss_function
from litlab.models.tta import tta_logits


def test_whitening_makes_the_patch_covariance_close_to_identity():
    generator = torch.Generator().manual_seed(0)
    mix = torch.randn(3, 3, generator=generator) + 2 * torch.eye(3)  # correlated channels
    noise = torch.randn(64, 3, 17, 17, generator=generator)
    images = torch.einsum("dc,nchw->ndhw", mix, noise[..., 1:, 1:] + 0.7 * noise[..., :-1, :-1])
    filters = whitening_filters(images, size=2)
    assert filters.shape == (24, 3, 2, 2)
    outputs = F.conv2d(images, filters[:12])  # the other 12 are the same filters negated
    assert torch.equal(filters[12:], -filters[:12])
    flat = outputs.permute(0, 2, 3, 1).reshape(-1, 12)
    covariance = flat.T @ flat / len(flat)
    raw = patches(images, 2)
    assert not torch.allclose(raw.T @ raw / len(raw), torch.eye(12), atol=0.5)  # it was far from white
    assert torch.allclose(covariance, torch.eye(12), atol=0.02)


def test_ema_state_is_the_running_average():
    net = torch.nn.Linear(3, 2)
    ema, expected = EMAState(net), net.weight.detach().clone()
    for step in range(5):
        with torch.no_grad():
            net.weight.add_(step + 1.0)
        ema.update(net, decay=0.8)
        expected = 0.8 * expected + 0.2 * net.weight.detach()
    assert torch.allclose(ema.weights["weight"], expected)


class Recorder(L.Callback):
    """The live weights after every optimiser step (runs before the EMA callback's update)."""

    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer, module, *args) -> None:
        self.weights.append(module.net[-1].weight.detach().clone())


def test_ema_callback_validates_and_ends_on_the_running_average(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    model = MLPClassifier(
        num_classes=2,
        input_shape=[4],
        optimizer=lambda params: torch.optim.SGD(params, lr=0.5),
        hidden_sizes=[8],
    )
    recorder = Recorder()
    ema = EMA(decay=0.6, every_n_steps=1, ramp_power=0.0, lookahead=False)
    trainer = L.Trainer(
        max_epochs=2,
        callbacks=[recorder, ema],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    initial = model.net[-1].weight.detach().clone()
    trainer.fit(model, loader, loader)
    expected = initial
    for live in recorder.weights:
        expected = 0.6 * expected + 0.4 * live
    assert len(recorder.weights) == 8 and not torch.allclose(recorder.weights[-1], expected)
    assert torch.allclose(model.net[-1].weight, expected, atol=1e-6)  # training ends on the average
    path = tmp_path / "ema.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)
    assert torch.allclose(saved["state_dict"]["net.3.weight"], expected, atol=1e-6)
    assert torch.equal(saved["ema_live_state_dict"]["net.3.weight"], model.net[-1].weight)


def test_tta_averages_the_views():
    torch.manual_seed(0)
    weight = torch.randn(5, 3 * 8 * 8)

    def forward(images):
        return images.flatten(1) @ weight.T

    images = torch.randn(4, 3, 8, 8)
    padded = F.pad(images, (1,) * 4, mode="reflect")
    views = [images, padded[..., :8, :8], padded[..., 2:, 2:]]
    plain = [forward(v) for v in views]
    mirrored = [forward(v.flip(-1)) for v in views]
    assert torch.allclose(tta_logits(forward, images, "none"), plain[0])
    assert torch.allclose(tta_logits(forward, images, "flip"), (plain[0] + mirrored[0]) / 2, atol=1e-5)
    expected = (plain[0] + mirrored[0]) / 4 + sum(plain[1:] + mirrored[1:]) / 8
    assert torch.allclose(tta_logits(forward, images, "flip_translate"), expected, atol=1e-5)


def test_tta_is_used_in_evaluation_only():
    model = MLPClassifier(
        num_classes=3, input_shape=[1, 4, 4], optimizer=torch.optim.SGD, hidden_sizes=[6], tta="flip"
    )
    images = torch.randn(2, 1, 4, 4)
    with torch.no_grad():
        assert torch.allclose(model.train().logits(images), model(images))
        mean = (model(images) + model(images.flip(-1))) / 2
        assert torch.allclose(model.eval().logits(images), mean, atol=1e-6)


def test_label_smoothing_mixes_in_the_uniform_target():
    """With smoothing e over K classes the target is (1 - e) one-hot + e / K: the loss is
    (1 - e) x cross-entropy + e x the mean over classes of -log p."""
    torch.manual_seed(0)
    logits, target = torch.randn(6, 10), torch.randint(0, 10, (6,))
    loss = loss_function("cross_entropy")
    log_p = logits.log_softmax(-1)
    expected = 0.8 * F.nll_loss(log_p, target) + 0.2 * (-log_p.mean(-1)).mean()
    assert torch.allclose(loss(logits, target, 0.2), expected)
    assert not torch.allclose(loss(logits, target, 0.0), expected)


def test_sgdw_weight_decay_does_not_depend_on_the_lr():
    shrunk = []
    for lr in (0.01, 1.0):
        weight = torch.nn.Parameter(torch.ones(3))
        optimizer = SGDW([weight], lr=lr, momentum=0.0, weight_decay=0.1, nesterov=False)
        weight.grad = torch.zeros(3)
        optimizer.step()
        shrunk.append(weight.detach().clone())
    assert torch.allclose(shrunk[0], torch.full((3,), 0.9)) and torch.allclose(shrunk[1], shrunk[0])


def flipped_in_epoch(dm, batch, epoch: int) -> torch.Tensor:
    dm.trainer = SimpleNamespace(training=True, current_epoch=epoch, world_size=1, global_rank=0)
    images, _ = dm.on_after_batch_transfer(batch, 0)
    plain = dm.to_float(batch[0])
    is_flipped = torch.isclose(images, plain.flip(-1)).flatten(1).all(1)
    assert torch.all(is_flipped | torch.isclose(images, plain).flatten(1).all(1))
    return is_flipped


def test_alternating_flip_flips_each_sample_every_other_epoch(cifar_dir):
    torch.manual_seed(0)
    dm = CIFAR10DataModule(str(cifar_dir), batch_size=400, val_size=0, alternating_flip=True, download=False)
    dm.setup()
    dm.trainer = SimpleNamespace(training=True, current_epoch=0, world_size=1, global_rank=0)
    batch = next(iter(dm.train_dataloader()))
    assert len(batch) == 3  # the loader carries sample ids ...
    assert len(dm.on_after_batch_transfer(batch, 0)) == 2  # ... and the model never sees them
    epochs = [flipped_in_epoch(dm, batch, e) for e in range(3)]
    assert 0.3 < epochs[0].float().mean() < 0.7  # epoch 0: a random half
    assert torch.equal(epochs[1], ~epochs[0]) and torch.equal(epochs[2], epochs[0])


def test_cifar10_fast_learns_on_tiny_cifar(run_script, cifar_dir):
    run = run_script(
        "experiment=cifar10_fast",
        f"paths.data_dir={cifar_dir}",
        "data.download=false",
        "data.batch_size=50",
        "trainer.accelerator=cpu",
    )
    metrics = run.metrics
    assert metrics["status"] == "completed" and metrics["test"]["test/acc"] > 0.5  # chance is 0.1
    assert metrics["final"]["train/acc"] > 0.3


def test_cifar10_fast_resumes_to_the_uninterrupted_result(run_script, cifar_dir):
    """The EMA's average and the live weights both come back from the checkpoint (lookahead off, so they
    differ). Constant lr and EMA decay: the one-epoch first run must not have a shorter schedule."""
    common = [
        "experiment=cifar10_fast",
        f"paths.data_dir={cifar_dir}",
        "data.download=false",
        "data.batch_size=50",
        "trainer.accelerator=cpu",
        "callbacks.ema.lookahead=false",
        "callbacks.ema.every_n_steps=3",
        "callbacks.ema.ramp_power=0",
        "model.scheduler=null",
        "seed=0",
    ]
    full = run_script(*common, "trainer.max_epochs=2")
    first = run_script(*common, "trainer.max_epochs=1")
    resumed = run_script(
        *common, "trainer.max_epochs=2", f"ckpt_path={first.metrics['best']['last_ckpt_path']}"
    )
    assert resumed.metrics["final"] == pytest.approx(full.metrics["final"], abs=1e-6)
    assert resumed.metrics["test"] == pytest.approx(full.metrics["test"], abs=1e-6)
