"""GAN family: real train.py / sample.py runs on tiny MNIST-format files, and the quality scores."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image
from torch import nn

from fakedata import class_images
from litlab.metrics.gan_scores import (
    ClassifierFeatures,
    frechet_distance,
    histogram_entropy,
    mean_confidence,
)
from litlab.models.mlp import mlp

FAST = ["logger=csv", "trainer.accelerator=cpu", "data.val_size=100", "data.batch_size=32", "seed=0"]


def gan_run(run_script, mnist_dir, *extra: str, **kwargs):
    return run_script(
        "model=gan",
        "data=mnist",
        "data.normalize=symmetric",
        f"paths.data_dir={mnist_dir}",
        *FAST,
        *extra,
        **kwargs,
    )


def state(run, name: str) -> dict[str, torch.Tensor]:
    return torch.load(run.run_dir / "checkpoints" / name, map_location="cpu", weights_only=False)[
        "state_dict"
    ]


def changed(before: dict, after: dict, prefix: str) -> bool:
    keys = [k for k in before if k.startswith(prefix) and before[k].is_floating_point()]
    return bool(keys) and all(not torch.equal(before[k], after[k]) for k in keys if k.endswith("weight"))


def test_gan_trains_checkpoints_renders_and_resumes(run_script, mnist_dir):
    """model=gan brings its own callbacks (one checkpoint callback, no last-v1.ckpt); a resumed run
    replays the uninterrupted one."""
    full = gan_run(run_script, mnist_dir, "trainer.max_epochs=2")
    final = full.metrics["final"]
    assert all(
        math.isfinite(final[k]) for k in ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake")
    )
    first, last = state(full, "epoch_000.ckpt"), state(full, "last.ckpt")
    assert changed(first, last, "generator.") and changed(first, last, "discriminator.")
    assert set(first) >= {"fixed_noise"} and full.metrics["global_step"] == 2 * 2 * 16  # 2 epochs, D + G
    for name in ("epoch_000", "epoch_001", "last"):
        assert Image.open(full.run_dir / "samples" / f"{name}.png").size == (8 * 30 + 2, 8 * 30 + 2)
    assert set(full.metrics["test"]) == {"test/d_loss", "test/g_loss", "test/d_real", "test/d_fake"}

    # the replay runs in fp32: under bf16 autocast a 1-ulp difference in a kernel's reduction order
    # (seen between processes on CI's CPU) flips an activation's 8-bit rounding, and 16 adversarial
    # steps grow it to 1e-3 in the losses, which would test the CPU rather than the resume
    fp32 = "trainer.precision=32-true"
    replayed = gan_run(run_script, mnist_dir, "trainer.max_epochs=2", "test=false", fp32)
    half = gan_run(run_script, mnist_dir, "trainer.max_epochs=1", "test=false", fp32)  # callbacks=gan
    assert sorted(p.name for p in (half.run_dir / "checkpoints").iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
    resumed = gan_run(
        run_script,
        mnist_dir,
        "trainer.max_epochs=2",
        "test=false",
        fp32,
        f"ckpt_path={half.run_dir / 'checkpoints' / 'last.ckpt'}",
    )
    assert resumed.metrics["global_step"] == replayed.metrics["global_step"] == full.metrics["global_step"]
    for key in ("train/d_loss", "train/g_loss"):
        assert resumed.metrics["final"][key] == pytest.approx(replayed.metrics["final"][key], rel=1e-6)


def test_gan_with_classifier_callbacks_names_callbacks_gan(run_script, mnist_dir):
    """callbacks=default monitors val/acc, which a GAN does not log: one line naming the fix."""
    run = gan_run(run_script, mnist_dir, "trainer.max_epochs=1", "callbacks=default", expect_ok=False)
    assert run.proc.returncode == 1
    assert run.proc.stderr.strip().splitlines()[-1].startswith("error: ModelCheckpoint monitors 'val/acc'")
    assert "callbacks=gan" in run.proc.stderr.strip().splitlines()[-1]


@pytest.mark.heavy
def test_dcgan_samples_and_scores_with_a_template_classifier(run_script, mnist_dir):
    gan = run_script(
        "model=dcgan", "data=mnist", "data.normalize=symmetric", f"paths.data_dir={mnist_dir}",
        "trainer.max_epochs=1", "test=false", "model.r1_gamma=1.0", "model.r1_every=2", *FAST,
    )  # fmt: skip
    assert math.isfinite(gan.metrics["final"]["train/g_loss"])
    classifier = run_script(
        "model=cnn", "data=mnist", f"paths.data_dir={mnist_dir}", "trainer.max_epochs=2", *FAST
    )
    assert classifier.metrics["test"]["test/acc"] > 0.9
    sampled = run_script(
        f"ckpt_path={gan.run_dir / 'checkpoints' / 'last.ckpt'}",
        f"classifier_ckpt={classifier.metrics['best']['ckpt_path']}",
        f"paths.data_dir={mnist_dir}",
        "n=16",
        "num_score=300",
        "per_class=true",
        "per_class_n=5",
        "truncation=1.5",
        script="sample",
    )
    assert sampled.metrics["truncation"] == 1.5
    scores = sampled.metrics["scores"]
    assert scores["fid"] > 0 and 0.1 <= scores["confidence"] <= 1 and 0 <= scores["class_entropy"] <= 1
    assert Image.open(sampled.run_dir / "samples.png").size == (4 * 30 + 2, 4 * 30 + 2)
    assert Image.open(sampled.run_dir / "samples_per_class.png").size == (5 * 30 + 2, 10 * 30 + 2)


def test_trainer_gradient_clipping_is_a_one_line_error(run_script, mnist_dir):
    run = gan_run(run_script, mnist_dir, "trainer.gradient_clip_val=1.0", expect_ok=False)
    assert run.proc.returncode == 1 and "Traceback" not in run.output
    assert "error: trainer.gradient_clip_val=1.0 does not apply to a GAN" in run.output
    assert "model.gradient_clip_val=1.0" in run.output


@pytest.mark.heavy
def test_conditional_dcgan_draws_the_class_it_is_given(run_script, mnist_dir):
    """model.conditional: G(z, y) depends on y, D gets a class embedding, per-class grids need no classifier."""
    gan = run_script(
        "model=dcgan", "model.conditional=true", "model.width=8", "data=mnist", "data.normalize=symmetric",
        f"paths.data_dir={mnist_dir}", "trainer.max_epochs=1", "test=false", *FAST,
    )  # fmt: skip
    assert math.isfinite(gan.metrics["final"]["train/g_loss"])
    ckpt = gan.run_dir / "checkpoints" / "last.ckpt"
    weights = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert weights["fixed_labels"].tolist()[:12] == [*range(10), 0, 1]
    assert "discriminator.embedding.weight" in weights
    sampled = run_script(f"ckpt_path={ckpt}", "n=20", "per_class=true", "per_class_n=3", script="sample")
    assert Image.open(sampled.run_dir / "samples_per_class.png").size == (3 * 30 + 2, 10 * 30 + 2)

    from litlab.models.gan.sampling import load_gan

    model = load_gan(str(ckpt))
    sevens = model.generate(4, labels=torch.full((4,), 7))
    torch.manual_seed(0)
    noise = torch.randn(2, model.hparams.latent_dim)
    sampler = model.prepare_sampler().eval()
    with torch.no_grad():
        as_one = model.draw(sampler, noise, torch.tensor([1, 1]))
        as_eight = model.draw(sampler, noise, torch.tensor([8, 8]))
    assert sevens.shape == (4, 1, 28, 28) and not torch.allclose(as_one, as_eight)


def test_per_class_grid_of_an_unconditional_gan_needs_a_classifier(run_script, mnist_dir):
    gan = gan_run(
        run_script, mnist_dir, "trainer.max_epochs=1", "test=false", "trainer.limit_train_batches=2"
    )
    ckpt = gan.run_dir / "checkpoints" / "last.ckpt"
    run = run_script(f"ckpt_path={ckpt}", "per_class=true", script="sample", expect_ok=False)
    assert (
        run.proc.returncode == 1
        and "error: per_class=true" in run.output
        and "classifier_ckpt=" in run.output
    )


# --- the score functions on inputs with known answers -------------------------------------------
class Identity(nn.Module):
    num_features = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()


def test_frechet_distance_of_shifted_gaussians_is_the_squared_shift():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(4000, 4, generator=generator)
    shifted = torch.randn(4000, 4, generator=generator) + 1.0  # same covariance, mean moved by (1,1,1,1)
    assert frechet_distance(Identity(), real, shifted) == pytest.approx(4.0, abs=0.25)
    assert frechet_distance(Identity(), real, real) == pytest.approx(0.0, abs=1e-3)


def test_real_vs_real_is_closer_than_real_vs_noise():
    labels = torch.arange(600) % 10
    train = torch.from_numpy(class_images(labels.numpy(), (1, 28, 28), seed=1))
    test = torch.from_numpy(class_images(labels.numpy(), (1, 28, 28), seed=2))
    noise = torch.randint(
        0, 256, (600, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(3)
    )
    torch.manual_seed(0)
    features = ClassifierFeatures(mlp(784, [64, 32], 10))
    floor, ceiling = frechet_distance(features, test, train), frechet_distance(features, test, noise)
    assert 0 <= floor < ceiling / 10


def test_class_histogram_entropy_and_confidence():
    assert histogram_entropy(torch.arange(1000) % 10, 10) == pytest.approx(1.0)
    assert histogram_entropy(torch.full((1000,), 3), 10) == pytest.approx(0.0)
    assert histogram_entropy(torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]), 10) == pytest.approx(
        math.log(5) / math.log(10)
    )
    assert mean_confidence(torch.tensor([[1.0, 0.0], [0.5, 0.5]])) == pytest.approx(0.75)


def test_generator_weight_average_follows_the_documented_update():
    """g_ema keeps average <- decay * average + (1 - decay) * live after each generator step, and samples from it."""
    from functools import partial

    from litlab.models.gan import GAN

    gan = GAN(
        num_classes=10,
        input_shape=[1, 8, 8],
        optimizer=partial(torch.optim.Adam),
        arch="dcgan",
        width=4,
        g_ema=0.9,
    )
    assert gan.sampler is gan.generator_ema and not any(
        p.requires_grad for p in gan.generator_ema.parameters()
    )
    before = [p.detach().clone() for p in gan.generator_ema.parameters()]
    with torch.no_grad():
        for p in gan.generator.parameters():
            p.add_(1.0)
    gan.update_ema()
    for average, old, live in zip(
        gan.generator_ema.parameters(), before, gan.generator.parameters(), strict=True
    ):
        assert torch.allclose(average, 0.9 * old + 0.1 * live)
    assert gan.generate(3).shape == (3, 1, 8, 8)
    # the average got BatchNorm statistics of its own (standing statistics), not the initial zeros/ones
    norm = next(m for m in gan.generator_ema.modules() if isinstance(m, nn.BatchNorm2d))
    assert norm.running_mean.abs().sum() > 0 and norm.momentum == 0.1
    plain = GAN(
        num_classes=10, input_shape=[1, 8, 8], optimizer=partial(torch.optim.Adam), arch="dcgan", width=4
    )
    assert plain.sampler is plain.generator and plain.generator_ema is None


def test_r1_penalty_is_half_gamma_times_the_squared_input_gradient():
    """For D(x) = w . x the gradient at every image is w: the penalty is gamma/2 * ||w||^2, times
    r1_every under lazy regularisation; it must stay in the graph so the discriminator learns from it."""
    from functools import partial

    from litlab.errors import ConfigError
    from litlab.models.gan import GAN

    gan = GAN(
        num_classes=10, input_shape=[1, 4, 4], optimizer=partial(torch.optim.Adam), arch="dcgan", width=4,
        r1_gamma=2.0, r1_every=4,
    )  # fmt: skip
    gan.discriminator = nn.Sequential(nn.Flatten(), nn.Linear(16, 1))
    w = gan.discriminator[1].weight
    real = torch.randn(5, 1, 4, 4).requires_grad_(True)
    penalty = gan.r1_penalty(real, gan.discriminator(real))
    assert penalty.item() == pytest.approx(0.5 * 2.0 * 4 * w.pow(2).sum().item(), rel=1e-5)
    penalty.backward()
    assert torch.allclose(w.grad, 0.5 * 2.0 * 4 * 2 * w)  # d/dw of c * ||w||^2
    with pytest.raises(ConfigError, match="r1_every"):
        GAN(num_classes=10, input_shape=[1, 4, 4], optimizer=partial(torch.optim.Adam), r1_every=0)


def test_truncated_noise_stays_inside_the_threshold_and_zero_is_refused():
    """truncation=t draws every latent from [-t, t]; plain noise goes past it; t <= 0 is a config error."""
    from functools import partial

    from litlab.errors import ConfigError
    from litlab.models.gan import GAN

    gan = GAN(
        num_classes=10, input_shape=[1, 8, 8], optimizer=partial(torch.optim.Adam), arch="dcgan", width=4
    )
    torch.manual_seed(0)
    truncated, plain = gan.noise(2000, truncation=0.5), gan.noise(2000)
    assert truncated.abs().max() <= 0.5 and plain.abs().max() > 2.0
    assert 0.2 < truncated.std() < 0.3  # a [-0.5, 0.5]-truncated normal has std 0.28, not 1
    assert gan.generate(4, truncation=0.5).shape == (4, 1, 8, 8)
    with pytest.raises(ConfigError, match="truncation"):
        gan.noise(2, truncation=0.0)
