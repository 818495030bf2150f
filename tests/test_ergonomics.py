"""Everyday use: a CLI that answers without the training stack, runs that print no warning nobody can act
on, first-time work that says what it does, one-line errors, the config tree, and any import order."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from lightning.pytorch.trainer.connectors.data_connector import _parse_num_batches
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from litlab.data.cache import cached
from litlab.data.download import extract_once
from litlab.errors import from_lightning_misuse
from litlab.utils.config_tree import print_config_tree

ROOT = Path(__file__).resolve().parents[1]
HEAVY_STACK = {"torch", "lightning", "torchvision", "timm", "wandb"}
# a Python warning as printed (`file.py:123: message`, `UserWarning: ...`): none may reach a normal run
WARNING_LINE = re.compile(r"Warning|\.py:\d+: ")


def python(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def imported_modules(importtime_log: str) -> set[str]:
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in importtime_log.splitlines()
        if line.startswith("import time:")
    }


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if WARNING_LINE.search(line)]


# --- the CLI answers from the config alone ---------------------------------------------------


def test_cfg_job_prints_the_config_without_importing_the_training_stack(tmp_path):
    proc = python(
        "-X", "importtime", str(ROOT / "src" / "train.py"), "--cfg", "job", "model=mlp", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "_target_: litlab.models.mlp.MLPClassifier" in proc.stdout
    assert "extras:\n  print_config: true" in proc.stdout
    loaded = imported_modules(proc.stderr)
    assert "hydra" in loaded and not loaded & HEAVY_STACK, loaded & HEAVY_STACK


def test_help_lists_the_config_groups_without_importing_the_training_stack(tmp_path):
    proc = python("-X", "importtime", str(ROOT / "src" / "train.py"), "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "== Configuration groups ==" in proc.stdout
    assert re.search(r"^model: .*\bcnn\b.*\bmlp\b", proc.stdout, re.MULTILINE), proc.stdout[:2000]
    assert not imported_modules(proc.stderr) & HEAVY_STACK


# --- torchvision's fix loads with the package, before any import -----------------------------


def test_import_litlab_loads_no_torch_and_waits_for_torchvision():
    code = (
        "import sys, litlab; from litlab_torchvision_fix import _FINDER; from omegaconf import OmegaConf;"
        "print('torch' in sys.modules, _FINDER in sys.meta_path, OmegaConf.has_resolver('auto_precision'))"
    )
    proc = python("-c", code)
    assert proc.stdout.split() == ["False", "True", "True"], proc.stderr[-3000:]


def test_the_pth_file_installs_the_hook_at_interpreter_start(tmp_path):
    """What site.py does with the .pth that setup.py installs into site-packages."""
    shutil.copy(ROOT / "src" / "litlab_torchvision_fix.pth", tmp_path)
    code = (
        f"import site, sys; site.addsitedir({str(tmp_path)!r});"
        "print('torch' in sys.modules, [type(f).__name__ for f in sys.meta_path][0])"
    )
    proc = python("-c", code)
    assert proc.stdout.split() == ["False", "_BeforeTorchvision"], proc.stderr[-3000:]
    assert (
        'data_files=[(SITE_PACKAGES, ["src/litlab_torchvision_fix.pth"])]' in (ROOT / "setup.py").read_text()
    )


@pytest.mark.heavy
def test_lightning_and_torchvision_import_before_litlab(tmp_path):
    """A notebook's order: on CPU-only torch beside the CUDA torchvision wheel this died with
    `operator torchvision::nms does not exist` unless litlab came first."""
    shutil.copy(ROOT / "src" / "litlab_torchvision_fix.pth", tmp_path)
    code = (
        f"import site; site.addsitedir({str(tmp_path)!r});"
        "import lightning, torchvision; import litlab; import torchvision.ops;"
        "print(lightning.__version__.split('.')[0], callable(torchvision.ops.box_iou))"
    )
    proc = python("-c", code)
    assert proc.returncode == 0 and proc.stdout.split() == ["2", "True"], proc.stderr[-3000:]


# --- first-time work says what it does ---------------------------------------------------------


def test_a_cache_build_is_announced_and_a_cache_hit_is_silent(tmp_path, capsys):
    build = lambda: {"x": torch.arange(3)}  # noqa: E731
    first, _, hit = cached(tmp_path, "demo", {"v": 1}, build, "parsing the demo files")
    assert not hit and capsys.readouterr().err == (
        "litlab: parsing the demo files into a cache (first run only)...\n"
    )
    again, _, hit = cached(tmp_path, "demo", {"v": 1}, build, "parsing the demo files")
    assert hit and torch.equal(again["x"], first["x"]) and capsys.readouterr().err == ""


def test_an_extraction_is_announced_once(tmp_path, capsys):
    archive = tmp_path / "demo.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        payload = b"review"
        info = tarfile.TarInfo("member/a.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    folder = extract_once(archive, "member")
    assert capsys.readouterr().err == f"litlab: extracting {archive} into {tmp_path} (first run only)...\n"
    assert extract_once(archive, "member") == folder and (folder / "a.txt").read_bytes() == payload
    assert capsys.readouterr().err == ""


# --- one-line errors and the config tree ------------------------------------------------------


def test_a_fraction_that_selects_no_batch_is_one_config_line():
    with pytest.raises(MisconfigurationException) as raised:
        _parse_num_batches(RunningStage.TRAINING, 54, 0.01)  # Lightning's own check
    message = str(from_lightning_misuse(raised.value))
    assert message == (
        "trainer.limit_train_batches=0.01 selects no batch of the 54 in the train_dataloader; use "
        "trainer.limit_train_batches=0.019 or more, or a whole number of batches (trainer.limit_train_batches=1)"
    )
    assert _parse_num_batches(RunningStage.TRAINING, 54, 0.019) == 1  # the suggestion works


def test_the_config_tree_is_printed_and_saved_resolved(tmp_path, capsys):
    from test_configs import composed

    cfg = composed(tmp_path, "model=mlp", "data=mnist")
    print_config_tree(cfg, tmp_path / "run")
    saved = (tmp_path / "run" / "config_tree.log").read_text()
    assert capsys.readouterr().out.startswith("CONFIG") and saved.startswith("CONFIG\n")
    branches = re.findall(r"^[├└]── (\w+)$", saved, re.MULTILINE)
    assert branches[:7] == ["data", "model", "callbacks", "logger", "trainer", "paths", "extras"]
    assert {"seed", "task_name", "train", "test"} <= set(branches)
    assert "_target_: litlab.data.mnist.MNISTDataModule" in saved
    assert f"data_dir: {tmp_path}" in saved  # ${paths.data_dir}, resolved
    assert all(line == line.rstrip() for line in saved.splitlines())


# --- real runs ---------------------------------------------------------------------------------

TINY = ("model=mlp", "data=mnist", "data.val_size=100", "trainer.max_epochs=1", "trainer.log_every_n_steps=1")


@pytest.mark.heavy
def test_a_tiny_run_prints_no_warning_and_its_config_tree(run_script, mnist_dir):
    run = run_script(*TINY, f"paths.data_dir={mnist_dir}")
    assert warning_lines(run.proc.stderr) == [], run.proc.stderr
    assert run.metrics["status"] == "completed"
    assert "CONFIG" in run.proc.stdout and "── trainer" in (run.run_dir / "config_tree.log").read_text()


@pytest.mark.heavy
def test_joblib_workers_print_no_warning(tmp_path, mnist_dir):
    sweep = tmp_path / "sweep"
    proc = python(
        str(ROOT / "src" / "train.py"),
        "-m",
        *TINY,
        f"paths.data_dir={mnist_dir}",
        "extras.print_config=false",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
        f"paths.log_dir={tmp_path / 'logs'}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert warning_lines(proc.stderr) == [], proc.stderr
    assert all((sweep / job / "metrics.json").exists() for job in ("0", "1"))


@pytest.mark.heavy
def test_untrained_weights_are_named_and_a_bad_test_fraction_is_one_line(run_script, mnist_dir):
    run = run_script(
        *TINY,
        f"paths.data_dir={mnist_dir}",
        "train=false",
        "trainer.limit_test_batches=0.01",  # of 1 test batch: none
        "extras.print_config=false",
        expect_ok=False,
    )
    lines = run.proc.stderr.strip().splitlines()
    assert "litlab: train=false and no ckpt_path: testing the untrained, freshly initialised weights" in lines
    assert run.proc.returncode == 1 and "Traceback" not in run.proc.stderr
    assert lines[-1].startswith(
        "error: trainer.limit_test_batches=0.01 selects no batch of the 1 in the test_dataloader"
    )
    assert "CONFIG" not in run.proc.stdout and not (run.run_dir / "config_tree.log").exists()
