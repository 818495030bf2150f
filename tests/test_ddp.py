"""DDP on every experiment, 2 CPU processes on gloo (``make test-ddp``): it runs, and it is right.

Each case trains for real on tiny generated data; a test-only callback (``probes.WeightDigest``)
writes every rank's parameter digests after each epoch and at the end of fit, and the ranks must
agree. Cases that share their overrides run as one ``-m`` sweep: rank 0 then starts once per
sweep, and the sweep also proves that DDP jobs run one after another under Hydra multirun.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from fakedata import write_cifar10, write_imdb, write_mnist

pytestmark = pytest.mark.ddp

DDP = ["trainer=ddp_cpu", "trainer.devices=2"]
TINY = [
    "logger=csv",
    "data.download=false",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "+callbacks.digest._target_=probes.WeightDigest",
]
IMAGES = ["data.batch_size=16", "data.eval_batch_size=32", "data.val_size=100"]
# a sweep over experiment= first composes the default model, which lacks the keys of some
# experiments' models: "++" sets a key whether or not that config has it


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """CIFAR-10, MNIST and IMDB side by side: every experiment finds its data in one paths.data_dir."""
    root = tmp_path_factory.mktemp("ddp_data")
    write_cifar10(root)
    write_mnist(root)
    write_imdb(root)
    return root


def run(tmp_path: Path, name: str, *overrides: str, multirun: bool = True, timeout: int = 600):
    """``src/train.py`` (a sweep when ``multirun``) with its outputs in ``tmp_path/name``."""
    out = tmp_path / name
    where = [f"hydra.sweep.dir={out}"] if multirun else [f"hydra.run.dir={out}"]
    command = [
        sys.executable,
        str(ROOT / "src" / "train.py"),
        *(["-m"] if multirun else []),
        *overrides,
        *where,
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    tests = str(Path(__file__).parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)
    return proc, out


def jobs(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if (p / ".hydra").is_dir()), key=lambda p: int(p.name))


def check_job(job: Path, proc: subprocess.CompletedProcess) -> dict:
    """The job completed fit and test, and both ranks hold the same parameters after every epoch."""
    metrics = json.loads((job / "metrics.json").read_text())
    assert metrics["status"] == "completed", (metrics, proc.stderr[-3000:])
    assert metrics["test"], metrics
    ranks = [json.loads((job / "digests" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == ranks[1]["world_size"] == 2
    assert ranks[0]["epochs"] == ranks[1]["epochs"], f"{job}: the ranks' parameters differ after an epoch"
    assert ranks[0]["fit_end"] == ranks[1]["fit_end"], f"{job}: the ranks' parameters differ at the end"
    assert ranks[0]["param_groups"] == ranks[1]["param_groups"]
    assert not list(job.glob("rank*_error.json"))
    metrics["digests"] = ranks[0]
    return metrics


def check_sweep(proc: subprocess.CompletedProcess, sweep: Path, expected: int) -> list[dict]:
    assert proc.returncode == 0, proc.stderr[-4000:]
    found = jobs(sweep)
    assert len(found) == expected
    return [check_job(job, proc) for job in found]


def test_image_classifier_experiments(tmp_path, data_dir):
    """Every CIFAR-10/MNIST classifier experiment, 2 epochs (cifar10_fast freezes its whitening
    bias after epoch 0: the DDP crash of unused parameters came at that epoch boundary)."""
    experiments = [
        "cifar10_94",
        "cifar10_fast",
        "keras_cnn_cifar10",
        "seed_cnn_cifar10",
        "seed_mlp_cifar10",
        "seed_mlp_mnist",
    ]
    proc, sweep = run(
        tmp_path,
        "classifiers",
        f"experiment={','.join(experiments)}",
        f"paths.data_dir={data_dir}",
        "trainer.max_epochs=2",
        *DDP,
        *TINY,
        *IMAGES,
    )
    results = check_sweep(proc, sweep, len(experiments))
    for experiment, result in zip(experiments, results, strict=True):
        assert f"experiment={experiment}" in result["overrides"]
        assert result["epochs"] == 2
    fast = results[1]["digests"]
    assert fast["epochs"]["0"]["net"] != fast["epochs"]["1"]["net"]  # it trained in both epochs
    factors = [g["lr_factor"] for g in fast["param_groups"]]
    assert factors == [1.0, 64.0]  # airbench's BatchNorm-bias group kept its lr factor under DDP


def test_gan_experiments_with_ema_and_r1(tmp_path, data_dir):
    """The dense GAN and both DCGANs, with the generator's weight average and R1 on every batch:
    G, D and g_ema agree across ranks, and the rank-0-only sample grids do not hang the run."""
    experiments = ["dcgan_mnist", "cdcgan_mnist", "seed_gan_mnist"]
    proc, sweep = run(
        tmp_path,
        "gans",
        f"experiment={','.join(experiments)}",
        f"paths.data_dir={data_dir}",
        "trainer.max_epochs=1",
        "++model.g_ema=0.9",
        "++model.r1_gamma=1.0",
        "++model.r1_every=1",
        "++model.num_samples=16",
        *DDP,
        *TINY,
        *IMAGES,
    )
    for job, result in zip(jobs(sweep), check_sweep(proc, sweep, len(experiments)), strict=True):
        assert set(result["digests"]["fit_end"]) == {"generator", "discriminator", "generator_ema"}
        assert (job / "samples" / "last.png").is_file()
        assert not list(job.glob("**/samples_rank1*"))


def test_transfer_experiments_with_gradual_unfreezing(tmp_path, data_dir):
    """timm's gradual unfreezing under DDP: the chunk unfrozen at epoch 1 trains, and in step."""
    proc, sweep = run(
        tmp_path,
        "transfer",
        "experiment=transfer_source,transfer_target",
        f"paths.data_dir={data_dir}",
        "++model.backbone=test_resnet",
        "++model.finetune=gradual",
        "++model.unfreeze_at=[1]",
        "data.labels_per_class=null",
        "trainer.max_epochs=2",
        *DDP,
        *TINY,
        *IMAGES,
    )
    for result in check_sweep(proc, sweep, 2):
        digests = result["digests"]
        # the head, then the chunk unfrozen at epoch 1: had DDP not all-reduced its gradients, each
        # rank would have stepped it on its own shard and the epoch-1 digests (checked) would differ
        assert len(digests["param_groups"]) == 1 and digests["param_groups_end"] == [2]


def test_transfer_linear_probe(tmp_path, data_dir):
    proc, out = run(
        tmp_path,
        "probe",
        "experiment=transfer_source",
        f"paths.data_dir={data_dir}",
        "model.backbone=test_resnet",
        "model.finetune=linear_probe",
        "trainer.max_epochs=1",
        *DDP,
        *TINY,
        *IMAGES,
        multirun=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = check_job(out, proc)
    assert len(result["digests"]["param_groups"]) == 1  # the head alone trains


def test_text_experiments_and_recurrent_models(tmp_path, data_dir):
    """The length-bucketed IMDB batches shard themselves over the ranks (Lightning cannot inject its
    sampler into them): both LSTM experiments, then the plain RNN and the GRU."""
    common = [f"paths.data_dir={data_dir}", "data.val_size=40", "trainer.max_epochs=1", *DDP, *TINY]
    proc, sweep = run(tmp_path, "lstm", "experiment=seed_lstm_imdb,lstm_imdb_best", *common)
    check_sweep(proc, sweep, 2)
    proc, sweep = run(tmp_path, "rnn", "data=imdb", "model=rnn,gru", "data.batch_size=16", *common)
    check_sweep(proc, sweep, 2)


def test_perceptron_predicts_once_in_order(tmp_path, data_dir):
    """seed_perceptron predicts one query: fewer samples than ranks, once a bare AssertionError."""
    proc, out = run(
        tmp_path,
        "perceptron",
        "experiment=seed_perceptron",
        "trainer.max_epochs=1",
        *DDP,
        *[option for option in TINY if not option.startswith("data.")],
        multirun=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = check_job(out, proc)
    assert len(result["predictions"]) == 1 and result["predictions"][0] > 0.5  # the query's target is 1


def test_two_processes_match_one_with_the_same_global_batch(tmp_path, data_dir):
    """An MLP (no BatchNorm, no dropout, no augmentation; SGD in fp32, whose step is linear in the
    gradient, so float noise stays float noise) after 4 steps of global batch 32: DDP's gradient is
    the mean of the two ranks' half-batch means, the one process's batch mean. "The same samples":
    without shuffling, rank r's DistributedSampler takes images r, r+2, r+4, ..., so its step k
    holds the even (or odd) half of images 32k..32k+31, and the two halves are the one process's
    batch k. (Shuffled, the orders differ: the one process's loader draws its worker seed from the
    shuffle generator before the permutation.)"""
    common = [
        "model=mlp",
        "model/optimizer=sgd",
        "model.optimizer.lr=0.1",
        "trainer.precision=32-true",
        f"paths.data_dir={data_dir}",
        "seed=0",
        "data.batch_size=32",
        "data.val_size=100",
        "data.shuffle=false",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "logger=csv",
        "data.download=false",
        "+callbacks.digest._target_=probes.WeightDigest",
        "+callbacks.digest.save_weights=true",
    ]
    proc, ddp = run(tmp_path, "two", *common, *DDP, multirun=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    proc, one = run(tmp_path, "one", *common, "trainer=cpu", multirun=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    reference = torch.load(one / "digests" / "rank0.pt")
    digests = json.loads((one / "digests" / "rank0.json").read_text())
    for rank in (0, 1):
        weights = torch.load(ddp / "digests" / f"rank{rank}.pt")
        assert weights.keys() == reference.keys()
        for name, value in weights.items():
            torch.testing.assert_close(value, reference[name], rtol=1e-4, atol=1e-5, msg=name)
    steps = json.loads((ddp / "metrics.json").read_text())["global_step"]
    assert steps == json.loads((one / "metrics.json").read_text())["global_step"] == 4
    assert digests["start"] != digests["fit_end"]  # it trained


def leftovers(marker: Path) -> list[str]:
    """Processes still running whose command line names ``marker`` (a job's ranks do)."""
    lines = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in lines if str(marker) in line and "ps -eo" not in line]


def test_a_failure_on_rank_1_reaches_the_record(tmp_path, data_dir):
    """Rank 1 raises; rank 0 only sees the peer go. metrics.json names rank 1 and its traceback."""
    proc, out = run(
        tmp_path,
        "fails",
        "model=mlp",
        f"paths.data_dir={data_dir}",
        "trainer.max_epochs=1",
        "+callbacks.fail._target_=probes.FailOnRank",
        "+callbacks.fail.rank=1",
        *DDP,
        *TINY,
        *IMAGES,
        multirun=False,
    )
    assert proc.returncode != 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "failed", metrics
    assert metrics["failed_rank"] == 1, metrics
    assert metrics["error"].startswith("rank 1: RuntimeError: probe failure on rank 1"), metrics
    assert any("FailOnRank" in line or "on_train_batch_start" in line for line in metrics["traceback"])
    assert "0" in metrics["ranks"] and "1" in metrics["ranks"]
    assert (out / "rank1_error.json").is_file()
    assert not leftovers(out)


def test_a_failing_ddp_job_does_not_stop_the_sweep(tmp_path, data_dir):
    """The issue's sweep: lr=-1 fails job 0 on both ranks. It is recorded, jobs 1 and 2 complete,
    the sweep exits 1 (a job failed) rather than 137, and no rank outlives its job."""
    proc, sweep = run(
        tmp_path,
        "sweep",
        "model=mlp",
        "data=mnist",
        f"paths.data_dir={data_dir}",
        "model.optimizer.lr=-1,0.01,0.02",
        "trainer.max_epochs=1",
        *DDP,
        *TINY,
        *IMAGES,
    )
    assert proc.returncode == 1, proc.stderr[-4000:]
    found = jobs(sweep)
    assert [p.name for p in found] == ["0", "1", "2"]
    failed = json.loads((found[0] / "metrics.json").read_text())
    assert failed["status"] == "failed" and "learning rate" in failed["error"], failed
    for job in found[1:]:
        check_job(job, proc)
    assert "1 of 3 jobs failed" in proc.stderr
    assert not leftovers(sweep)


def test_airbench_param_groups_survive_sync_batchnorm():
    """Lightning swaps BatchNorm for SyncBatchNorm (``trainer=ddp``, ``sync_batchnorm: true``) before
    ``configure_optimizers``: the BatchNorm-bias group and its lr x 64 must come out as on one
    device. SyncBatchNorm cannot run forward on the CPU, so this applies Lightning's own swap."""
    from functools import partial

    from lightning.pytorch.plugins.layer_sync import TorchSyncBatchNorm

    from litlab.models.airbench import AirbenchClassifier
    from litlab.models.optim import SGDW

    def groups(sync: bool) -> list[tuple[float, list[str]]]:
        model = AirbenchClassifier(
            widths=[8, 16, 16], num_classes=10, input_shape=[3, 32, 32], optimizer=partial(SGDW, lr=0.5)
        )
        if sync:
            model = TorchSyncBatchNorm().apply(model)
            assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
        names = {id(p): n for n, p in model.named_parameters()}
        optimizer = model.configure_optimizers()
        return [(g["lr"], sorted(names[id(p)] for p in g["params"])) for g in optimizer.param_groups]

    one_device, synced = groups(False), groups(True)
    assert synced == one_device
    assert [lr for lr, _ in synced] == [0.5, 0.5 * 64]
    assert all(".bias" in name for name in synced[1][1]) and len(synced[1][1]) == 6  # 3 groups x 2 BNs
