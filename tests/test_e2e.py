"""End-to-end runs of src/train.py and src/eval.py on tiny data: they must really learn."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

FAST = [
    "logger=csv",
    "trainer.accelerator=cpu",
    "data.val_size=100",
    "data.batch_size=32",
    "data.download=false",
]


def test_mlp_learns_on_tiny_cifar(run_script, cifar_dir):
    run = run_script(
        "model=mlp", "data=cifar10", f"paths.data_dir={cifar_dir}", "trainer.max_epochs=4", *FAST
    )
    metrics = run.metrics
    assert metrics["status"] == "completed" and metrics["test"]["test/acc"] > 0.5  # chance is 0.1
    assert "model=mlp" in metrics["overrides"] and metrics["best"]["ckpt_path"].endswith(".ckpt")
    assert "test/acc" in run.proc.stdout  # the results table


def test_loss_falls_and_csv_log_written(run_script, cifar_dir):
    run = run_script("model=cnn", f"paths.data_dir={cifar_dir}", "trainer.max_epochs=3", *FAST)
    lines = (run.run_dir / "csv" / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    column = header.index("train/loss")
    losses = [float(row.split(",")[column]) for row in lines[1:] if row.split(",")[column]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert run.metrics["test"]["test/acc"] > 0.3


@pytest.mark.parametrize("model", ["keras_cnn", "resnet"])
def test_other_cnns_learn(run_script, cifar_dir, model):
    run = run_script(f"model={model}", f"paths.data_dir={cifar_dir}", "trainer.max_epochs=8", *FAST)
    assert run.metrics["test"]["test/acc"] > 0.3


def test_mlp_learns_on_tiny_mnist_with_augmentation(run_script, mnist_dir):
    run = run_script(
        "experiment=seed_mlp_mnist",
        f"paths.data_dir={mnist_dir}",
        "trainer.max_epochs=5",
        "data.crop_padding=1",
        *FAST,
    )
    assert run.metrics["test"]["test/acc"] > 0.4  # chance is 0.1


def test_perceptron_reproduces_the_reference_query(run_script):
    run = run_script("experiment=seed_perceptron")
    assert run.metrics["predictions"][0] > 0.99


def test_eval_tests_a_checkpoint(run_script, cifar_dir):
    trained = run_script("model=mlp", f"paths.data_dir={cifar_dir}", "trainer.max_epochs=2", *FAST)
    evaluated = run_script(
        f"ckpt_path={trained.metrics['best']['ckpt_path']}",
        f"paths.data_dir={cifar_dir}",
        "trainer.accelerator=cpu",
        script="eval",
    )
    assert math.isclose(
        evaluated.metrics["test"]["test/acc"], trained.metrics["test"]["test/acc"], abs_tol=1e-6
    )
    other_format = run_script(
        f"ckpt_path={trained.metrics['best']['ckpt_path']}", "data=mnist", f"data.data_dir={cifar_dir}",
        "trainer.accelerator=cpu", script="eval", expect_ok=False,
    )  # fmt: skip
    last = other_format.proc.stderr.strip().splitlines()[-1]
    assert other_format.proc.returncode == 1 and last.startswith("error: ckpt_path=")
    assert "trained on input (3, 32, 32) with 10 classes" in last


def test_eval_without_its_data_creates_no_data_folder(run_script, cifar_dir, tmp_path, monkeypatch):
    """Offline, a checkpoint whose data is not here fails in one line and leaves no empty folder."""
    trained = run_script(
        "model=mlp", f"paths.data_dir={cifar_dir}", "trainer.max_epochs=1", *FAST, "data.download=true"
    )
    missing = tmp_path / "nodata"
    monkeypatch.setenv("LITLAB_DATA_DIR", str(missing))
    run = run_script(
        f"ckpt_path={trained.metrics['best']['ckpt_path']}",
        "trainer.accelerator=cpu",
        script="eval",
        expect_ok=False,
    )
    assert run.proc.returncode == 1 and "CIFAR-10 not found in" in run.proc.stderr.strip().splitlines()[-1]
    assert not missing.exists()


def test_callbacks_none_writes_no_checkpoint(run_script, cifar_dir):
    run = run_script(
        "model=mlp", f"paths.data_dir={cifar_dir}", "trainer.max_epochs=1", "callbacks=none", *FAST
    )
    assert run.metrics["status"] == "completed" and run.metrics["best"] == {}
    assert not list(run.run_dir.rglob("*.ckpt"))


def test_resume_continues_to_the_uninterrupted_result(run_script, cifar_dir):
    common = [
        "model=mlp",
        "model.dropout=0.3",
        "data.crop_padding=2",
        "data.hflip=true",
        "seed=0",
        "trainer.precision=32-true",  # an exact replay: bf16 rounding can differ between processes
        f"paths.data_dir={cifar_dir}",
        *FAST,
    ]
    full = run_script(*common, "trainer.max_epochs=3")
    first = run_script(*common, "trainer.max_epochs=2")
    resumed = run_script(
        *common, "trainer.max_epochs=3", f"ckpt_path={first.metrics['best']['last_ckpt_path']}"
    )
    assert resumed.metrics["epochs"] == full.metrics["epochs"] == 3
    assert resumed.metrics["final"]["val/loss"] == pytest.approx(full.metrics["final"]["val/loss"], abs=1e-6)
    assert resumed.metrics["test"] == pytest.approx(full.metrics["test"], abs=1e-6)
    # the best of the epochs before the resume still counts, and the first run keeps its own files
    assert Path(resumed.metrics["best"]["ckpt_path"]).name == Path(full.metrics["best"]["ckpt_path"]).name
    assert Path(first.metrics["best"]["ckpt_path"]).is_file()


def test_seed_zero_is_deterministic(run_script, cifar_dir):
    args = [
        "model=mlp",
        "model.dropout=0.2",
        "seed=0",
        f"paths.data_dir={cifar_dir}",
        "trainer.max_epochs=2",
        *FAST,
    ]
    first, second = run_script(*args), run_script(*args)
    other = run_script(*args[:2], "seed=1", *args[3:])
    assert (
        first.metrics["final"] == second.metrics["final"] and first.metrics["test"] == second.metrics["test"]
    )
    assert other.metrics["final"] != first.metrics["final"]


def test_debug_presets_run(run_script, cifar_dir):
    for preset in ("fdr", "limit"):
        run = run_script(f"debug={preset}", "model=mlp", f"paths.data_dir={cifar_dir}", *FAST)
        assert run.metrics["status"] == "completed"
