"""Experiment tracking, read back from the files the trackers really wrote: W&B offline run files,
TensorBoard event files, an MLflow file store, provenance.json / git.patch and predictions.csv."""

from __future__ import annotations

import csv
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import lightning  # noqa: F401  (provenance reads its version; import it at collection, not in a test)
import pytest

from litlab.sweeps.collect import load_sweep, mixed_commits
from litlab.tracking import identity, provenance

ROOT = Path(__file__).resolve().parents[1]
FAST = ["trainer.accelerator=cpu", "data.val_size=100", "data.batch_size=32", "data.download=false"]
PERCEPTRON = ["experiment=seed_perceptron", "data.steps_per_epoch=5", "trainer.max_epochs=2"]


def wandb_records(run_file: Path) -> list:
    """The protobuf records of an offline ``run-<id>.wandb`` file (W&B's LevelDB-style log: a 7-byte
    file header, then 32 KiB blocks of chunks, each with a checksum, a length and a kind)."""
    from wandb.proto import wandb_internal_pb2

    data, block, header = run_file.read_bytes(), 32768, 7
    assert data[:4] == b":W&B"
    records, pos, parts = [], header, b""
    while pos + header <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos : pos + header]) if left >= header else (0, 0, 0)
        if left < header or (kind == 0 and length == 0):
            pos += left
            continue
        parts += data[pos + header : pos + header + length]
        pos += header + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            records.append(record)
            parts = b""
    return records


def wandb_run(run_dir: Path) -> list[dict]:
    """Each offline W&B run in ``run_dir``: its id, group, name, job type, config, summary and files."""
    runs = []
    for run_file in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        info: dict = {"config": {}, "summary": {}, "files": [], "dir": run_file.parent}
        for record in wandb_records(run_file):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                info.update(id=record.run.run_id, group=record.run.run_group, name=record.run.display_name)
                info["job_type"] = record.run.job_type
            elif kind == "config":
                info["config"].update({u.key: json.loads(u.value_json) for u in record.config.update})
            elif kind == "summary":
                for update in record.summary.update:
                    key = update.key or "/".join(update.nested_key)
                    info["summary"][key] = json.loads(update.value_json)
            elif kind == "files":
                info["files"] += [f.path for f in record.files.files]
        runs.append(info)
    return runs


def tensorboard_image_tags(run_dir: Path) -> set[str]:
    from tensorboardX.proto.event_pb2 import Event

    tags = set()
    for path in run_dir.glob("tensorboard/events.out.tfevents.*"):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            tags |= {v.tag for v in event.summary.value if v.HasField("image")}
    return tags


@pytest.mark.heavy
def test_wandb_run_files_group_stable_id_gallery_and_summary(run_script, cifar_dir):
    common = ["model=mlp", f"paths.data_dir={cifar_dir}", "logger=[wandb,tensorboard]", *FAST]
    # offline=true is what a machine without W&B credentials resolves to, where Lightning refuses log_model
    first = run_script(
        *common, "trainer.max_epochs=2", "logger.wandb.offline=true", "logger.wandb.log_model=true"
    )
    notice = [line for line in first.proc.stderr.splitlines() if "log_model" in line]
    assert len(notice) == 1 and notice[0].startswith("litlab: ") and "offline" in notice[0]
    last = first.run_dir / "checkpoints" / "last.ckpt"
    resumed = run_script(*common, "trainer.max_epochs=3", f"ckpt_path={last}", run_dir=first.run_dir)
    runs = wandb_run(resumed.run_dir)
    assert len(runs) == 2 and runs[0]["id"] == runs[1]["id"] == identity.run_hash(first.run_dir)
    assert {r["group"] for r in runs} == {first.run_dir.name} and runs[0]["job_type"] == "train"
    assert "model=mlp" in runs[0]["name"] and "paths.data_dir" not in runs[0]["name"]
    config = runs[1]["config"]
    assert config["params"]["total"] == config["params"]["trainable"] > 0 and config["params"]["frozen"] == 0
    saved = json.loads((first.run_dir / "provenance.json").read_text())
    assert config["provenance"]["git"]["commit"] == saved["git"]["commit"]
    assert config["provenance"]["run_id"] == runs[0]["id"]
    summary, metrics = runs[1]["summary"], resumed.metrics
    assert summary["status"] == "completed" and summary["epochs"] == 3
    assert summary["test"]["test/acc"] == pytest.approx(metrics["test"]["test/acc"])
    images = [f for f in runs[1]["files"] if f.startswith("media/images/val/")]
    assert any("examples" in f for f in images) and any("confusion_matrix" in f for f in images)
    assert all((runs[1]["dir"] / "files" / f).stat().st_size > 1000 for f in images)
    assert {"val/examples", "val/confusion_matrix"} <= tensorboard_image_tags(first.run_dir)


@pytest.mark.heavy
def test_multirun_jobs_share_the_sweep_group_and_mlflow_store_has_params_and_metrics(tmp_path):
    sweep = tmp_path / "my_sweep"
    command = [sys.executable, str(ROOT / "src" / "train.py"), "-m", *PERCEPTRON, "seed=0,1"]
    command += ["logger=[wandb,mlflow]", "callbacks=validation_gallery", f"hydra.sweep.dir={sweep}"]
    command += [f"paths.log_dir={tmp_path}"]
    env = {**os.environ, "WANDB_MODE": "offline"}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    runs = [wandb_run(sweep / job)[0] for job in ("0", "1")]
    assert [r["group"] for r in runs] == ["my_sweep", "my_sweep"] and runs[0]["id"] != runs[1]["id"]
    assert not [f for r in runs for f in r["files"] if "examples" in f]  # no images for table data
    assert any("confusion_matrix" in f for f in runs[0]["files"])
    (run,) = [p for p in (sweep / "0" / "mlruns").glob("*/*") if (p / "meta.yaml").exists()]
    files = (run / "params").rglob("*")
    params = {p.relative_to(run / "params").as_posix(): p.read_text() for p in files if p.is_file()}
    # the perceptron: one weight per input of its 3-column table, no bias
    assert params["seed"] == "0" and params["params/total"] == "3" and params["task_name"] == "train"
    assert (
        params["provenance/git/commit"]
        == json.loads((sweep / "0" / "provenance.json").read_text())["git"]["commit"]
    )
    acc = (run / "metrics" / "test" / "acc").read_text().split()
    assert float(acc[1]) == json.loads((sweep / "0" / "metrics.json").read_text())["test"]["test/acc"]
    assert (run / "metrics" / "val" / "acc").read_text().count("\n") == 2  # one line per epoch
    name = (run / "tags" / "mlflow.runName").read_text().split()
    assert sorted(name) == sorted([*PERCEPTRON, "seed=0", "callbacks=validation_gallery"])


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for args in (["init", "-q"], ["config", "user.email", "t@t"], ["config", "user.name", "t"]):
        subprocess.run(["git", "-C", str(path), *args], check=True)
    return path


def commit_all(repo: Path) -> str:
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "x"], check=True)
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_provenance_of_a_dirty_tree_patch_recreates_it(tmp_path):
    repo = git_repo(tmp_path / "repo")
    (repo / "code.py").write_text("x = 1\n")
    commit = commit_all(repo)
    (repo / "code.py").write_text("x = 2\n")
    (repo / "new.py").write_text("y = 3\n")
    (repo / "blob.bin").write_bytes(bytes(range(256)))
    record, patch = provenance.collect("abc", root=repo)
    assert record["git"]["commit"] == commit and record["git"]["dirty"] is True
    assert sorted(record["git"]["untracked"]) == ["blob.bin", "new.py"] and record["git"]["patch"]
    clean = tmp_path / "clean"
    subprocess.run(["git", "clone", "-q", str(repo), str(clean)], check=True)
    (clean / "git.patch").write_text(patch)
    subprocess.run(["git", "-C", str(clean), "apply", "git.patch"], check=True)
    assert (clean / "code.py").read_text() == "x = 2\n" and (clean / "new.py").read_text() == "y = 3\n"
    assert not (clean / "blob.bin").exists()  # binary untracked files are listed, not patched
    assert record["packages"]["torch"].startswith("2.") and record["python"] == ".".join(
        map(str, sys.version_info[:3])
    )


def test_provenance_outside_git_has_null_git_fields(tmp_path):
    record, patch = provenance.collect(None, root=tmp_path)
    assert record["git"] == {"commit": None, "dirty": None, "root": None, "untracked": None, "patch": None}
    assert patch == "" and record["cpu"] and "lightning" in record["packages"]


def test_a_run_resumed_into_a_new_dir_keeps_the_first_runs_id(tmp_path):
    first, second, third = (tmp_path / name for name in ("first", "second", "third"))
    for run_dir in (first, second):
        (run_dir / "checkpoints").mkdir(parents=True)
        (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert identity.run_id(first, None) == (identity.run_hash(first), first)
    provenance.write(second, {"run_id": identity.run_hash(first)}, "")  # second resumed from first
    assert identity.run_id(third, second / "checkpoints" / "last.ckpt")[0] == identity.run_hash(first)
    assert identity.run_name(["model=mlp", "paths.data_dir=/d", "seed=1"], "x") == "model=mlp seed=1"


def test_report_names_the_commits_of_a_mixed_table(tmp_path):
    for job, commit in enumerate(["a" * 40, "a" * 40, "b" * 40]):
        job_dir = tmp_path / str(job)
        job_dir.mkdir()
        (job_dir / "metrics.json").write_text(
            json.dumps({"status": "completed", "overrides": [f"seed={job}"], "test": {"test/acc": 0.5}})
        )
        provenance.write(job_dir, {"git": {"commit": commit, "dirty": job == 2}}, "")
    line = mixed_commits(load_sweep(tmp_path))
    assert (
        line
        == "warning: the runs of this table came from 2 commits: aaaaaaaaaa (2 jobs), bbbbbbbbbb+dirty (1 jobs)"
    )
    shutil.rmtree(tmp_path / "2")
    assert mixed_commits(load_sweep(tmp_path)) is None


@pytest.mark.heavy
def test_provenance_file_in_a_run_dir_made_from_a_dirty_checkout(tmp_path, run_script):
    """The code runs from a committed copy of src/ and conf/ with one edited and one new file."""
    repo = git_repo(tmp_path / "checkout")
    for folder in ("src", "conf"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    commit = commit_all(repo)
    with (repo / "src" / "litlab" / "errors.py").open("a") as handle:
        handle.write("# an uncommitted edit\n")
    (repo / "src" / "notes.txt").write_text("untracked\n")
    run_dir = tmp_path / "run"
    command = [sys.executable, str(repo / "src" / "train.py"), *PERCEPTRON, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "LITLAB_ROOT": str(repo)}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((run_dir / "provenance.json").read_text())
    assert record["git"]["commit"] == commit and record["git"]["dirty"] is True
    assert record["git"]["untracked"] == ["src/notes.txt"] and "train.py" in record["command"]
    patch = (run_dir / "git.patch").read_text()
    assert "+# an uncommitted edit" in patch and "+++ b/src/notes.txt" in patch
    hparams = (run_dir / "csv" / "hparams.yaml").read_text()  # the CSV logger's config has it too
    assert commit in hparams and "cpu_count" in hparams


@pytest.mark.heavy
def test_predictions_csv_for_a_checkpoint_on_its_data_and_on_another_dir(
    run_script, mnist_dir, cifar_dir, tmp_path
):
    sys.path.insert(0, str(Path(__file__).parent))
    from fakedata import write_mnist

    trained = run_script(
        "model=mlp", "data=mnist", f"paths.data_dir={mnist_dir}", "trainer.max_epochs=2", *FAST
    )
    ckpt = trained.metrics["best"]["ckpt_path"]
    predicted = run_script(
        f"ckpt_path={ckpt}", f"paths.data_dir={mnist_dir}", "trainer.accelerator=cpu", script="predict"
    )
    with (predicted.run_dir / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["index", "label", "predicted", *(f"prob_{i}" for i in range(10))]
    assert len(rows) == 200 and [int(r["index"]) for r in rows] == list(range(200))
    assert all(abs(sum(float(r[f"prob_{i}"]) for i in range(10)) - 1) < 1e-4 for r in rows)
    accuracy = sum(r["label"] == r["predicted"] for r in rows) / len(rows)
    assert accuracy == pytest.approx(trained.metrics["test"]["test/acc"], abs=1e-6)
    other = write_mnist(tmp_path / "other", test=50, gz=False).parents[1]
    elsewhere = run_script(
        f"ckpt_path={ckpt}", f"paths.data_dir={other}", "trainer.accelerator=cpu", script="predict"
    )
    assert sum(1 for _ in (elsewhere.run_dir / "predictions.csv").open()) == 51
    wrong = run_script(
        f"ckpt_path={ckpt}", "data=cifar10", f"data.data_dir={cifar_dir}", script="predict", expect_ok=False
    )
    last = wrong.proc.stderr.strip().splitlines()[-1]
    assert wrong.proc.returncode == 1 and last.startswith("error: ckpt_path=") and "same format" in last
    missing = run_script(f"ckpt_path={tmp_path}/nope.ckpt", script="predict", expect_ok=False)
    assert (
        missing.proc.stderr.strip().splitlines()[-1].startswith("error: ckpt_path=")
        and "does not exist" in missing.output
    )


@pytest.mark.ddp
def test_predictions_csv_under_ddp_equals_one_process(run_script, cifar_dir):
    """Two ranks each predict half of the split; the gathered file is the one process's, row for row."""
    trained = run_script(
        "model=mlp", "data=cifar10", f"paths.data_dir={cifar_dir}", "trainer.max_epochs=1", *FAST
    )
    ckpt = trained.metrics["best"]["ckpt_path"]
    common = [f"ckpt_path={ckpt}", f"paths.data_dir={cifar_dir}"]
    one = run_script(*common, "trainer=cpu", script="predict")
    two = run_script(*common, "trainer=ddp_cpu", "trainer.devices=2", script="predict")
    single = (one.run_dir / "predictions.csv").read_text().splitlines()
    assert len(single) == 201  # the header and the 200 test images, each once
    assert (two.run_dir / "predictions.csv").read_text().splitlines() == single
