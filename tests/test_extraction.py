"""Setting up CIFAR-10 from its archive under concurrency and kills: real processes, real SIGKILLs.

The archive is tiny in data but holds thousands of small padding members (as ``readme`` pages), so
that extracting it takes long enough for a second launch or a kill to land in the middle.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fakedata import cifar_batch  # noqa: E402
from litlab.data.cifar10 import TEST_FILES, TRAIN_FILES, CIFAR10DataModule  # noqa: E402

PADDING = 16000  # small members; extracting them takes on the order of seconds

# loads both splits as a training run does, then prints a digest of the arrays
WORKER = """
import sys, time, hashlib
from pathlib import Path
import litlab
from litlab.data.cifar10 import CIFAR10DataModule
print("ready", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.002)
dm = CIFAR10DataModule(sys.argv[1], download=False)
digest = hashlib.sha256()
for train in (True, False):
    for array in dm.load_split(train):
        digest.update(array.numpy().tobytes())
print(digest.hexdigest(), flush=True)
"""


def write_slow_archive(root: Path) -> str:
    """cifar-10-python.tar.gz in the official member order (test_batch third), padding spread through it;
    returns the digest a complete load must give."""
    batches = {name: cifar_batch(300, seed=i) for i, name in enumerate(TRAIN_FILES + TEST_FILES)}
    meta = {b"label_names": [b"c%d" % i for i in range(10)], b"num_cases_per_batch": 300}
    order = ["data_batch_4", "pad", "test_batch", "data_batch_3", "batches.meta", "pad"]
    order += ["data_batch_2", "data_batch_5", "pad", "data_batch_1"]
    pads = iter(range(PADDING))
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz", compresslevel=1) as tar:

        def add(name: str, raw: bytes) -> None:
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))

        for name in order:
            if name == "pad":
                for i in [next(pads) for _ in range(PADDING // 3)]:
                    add(f"readme/{i:05d}.html", b"<p>CIFAR-10</p>")
            else:
                add(name, pickle.dumps(meta if name == "batches.meta" else batches[name]))
    digest = hashlib.sha256()
    for names in (TRAIN_FILES, TEST_FILES):
        images = np.concatenate([np.asarray(batches[n][b"data"], np.uint8) for n in names])
        labels = np.concatenate([np.asarray(batches[n][b"labels"], np.int64) for n in names])
        digest.update(images.reshape(-1, 3, 32, 32).tobytes())
        digest.update(labels.tobytes())
    return digest.hexdigest()


class Worker:
    def __init__(self, data_dir: Path, name: str) -> None:
        self.go = data_dir.parent / f"go-{name}"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(data_dir), str(self.go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline().strip() == "ready", self.proc.stderr.read()

    def start(self) -> None:
        self.go.touch()

    def result(self) -> str:
        out, err = self.proc.communicate(timeout=300)
        assert self.proc.returncode == 0, err[-3000:]
        return out.strip()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def load_in_process(data_dir: Path) -> str:
    digest = hashlib.sha256()
    dm = CIFAR10DataModule(str(data_dir), download=False)
    for train in (True, False):
        for array in dm.load_split(train):
            digest.update(array.numpy().tobytes())
    return digest.hexdigest()


def leftovers(data_dir: Path) -> list[str]:
    return [p.name for p in data_dir.iterdir() if "extracting" in p.name or p.name.endswith(".part")]


@pytest.mark.heavy
@pytest.mark.parametrize("kill_first", [False, True])
def test_two_launches_a_second_apart_both_load_intact_data(tmp_path, kill_first):
    data_dir = tmp_path / "data"
    expected = write_slow_archive(data_dir)
    marker = data_dir / ".cifar-10-batches-py.extracted"
    first, second = Worker(data_dir, "first"), Worker(data_dir, "second")
    try:
        first.start()
        time.sleep(1.0)
        second.start()
        if kill_first:
            time.sleep(0.3)
            assert first.proc.poll() is None and not marker.exists(), "the first finished before the kill"
            first.kill()
        else:
            assert first.result() == expected
        assert second.result() == expected
    finally:
        for worker in (first, second):
            if worker.proc.poll() is None:
                worker.kill()
    assert load_in_process(data_dir) == expected  # a later run: intact, from the marked folder
    assert not leftovers(data_dir)


@pytest.mark.heavy
def test_a_killed_extraction_is_redone(tmp_path):
    data_dir = tmp_path / "data"
    expected = write_slow_archive(data_dir)
    first = Worker(data_dir, "first")
    try:
        first.start()
        deadline = time.monotonic() + 120
        while not list(data_dir.glob("**/test_batch")):  # wherever it extracts to, test_batch is out
            assert time.monotonic() < deadline and first.proc.poll() is None, first.proc.stderr.read()
            time.sleep(0.002)
        first.kill()
    finally:
        if first.proc.poll() is None:
            first.kill()
    assert not (data_dir / ".cifar-10-batches-py.extracted").exists()
    assert load_in_process(data_dir) == expected
    assert not leftovers(data_dir)


def read_only_mount(source: Path, target: Path) -> None:
    """``target`` shows ``source`` read-only (a bind mount remounted ro): even root cannot write there."""
    target.mkdir()
    for command in (
        ["mount", "--bind", str(source), str(target)],
        ["mount", "-o", "remount,bind,ro", str(target)],
    ):
        done = subprocess.run(command, capture_output=True)
        if done.returncode != 0:
            subprocess.run(["umount", str(target)], check=False)
            pytest.skip(
                f"cannot make a read-only bind mount here (needs root): {done.stderr.decode().strip()}"
            )


@pytest.mark.heavy
def test_read_only_data_and_cache_dirs_with_only_the_archive_are_one_line(run_script, tmp_path, monkeypatch):
    from fakedata import write_cifar10

    write_cifar10(tmp_path / "archive", archive=True)
    (tmp_path / "empty").mkdir()
    data, cache = tmp_path / "data", tmp_path / "cache"
    read_only_mount(tmp_path / "archive", data)
    try:
        read_only_mount(tmp_path / "empty", cache)
        monkeypatch.setenv("LITLAB_CACHE_DIR", str(cache))
        run = run_script(
            "data=cifar10", "model=mlp", f"paths.data_dir={data}", "trainer.max_epochs=1", expect_ok=False
        )
    finally:
        subprocess.run(["umount", str(cache)], check=False)
        subprocess.run(["umount", str(data)], check=False)
    line = run.proc.stderr.strip().splitlines()[-1]
    assert run.proc.returncode == 1 and "Traceback" not in run.proc.stderr, run.output[-3000:]
    assert line.startswith(
        f"error: cannot extract {data}/cifar-10-python.tar.gz (its folder is read-only) into {cache}/"
    )
    assert "Read-only file system" in line and "set LITLAB_CACHE_DIR to a writable folder" in line
