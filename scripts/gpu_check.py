"""The one-command GPU check (`bash scripts/gpu_check.sh`): every CUDA path of the template, run for real.

It writes synthetic data in the official formats (full-size CIFAR-10, since the real set cannot travel
to a lent machine), runs src/train.py and src/eval.py as a user would, and writes small result files
(gpu_check.json, gpu_check.md, the tails of failed runs, one CNN checkpoint) under --out.
``--accelerator cpu --size tiny`` is its rehearsal on a CPU box (tests/test_gpu_check.py): the same
checks, minus those that need CUDA (16-mixed, FSDP), on tiny data.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from fakedata import write_cifar10, write_imdb, write_mnist  # noqa: E402

SIZES = {  # CIFAR-10 images per batch file (5 train files + the test file), MNIST, IMDB reviews per class
    "full": {"cifar": (10_000, 10_000), "mnist": (60_000, 10_000), "imdb": (500, 200)},
    "tiny": {"cifar": (100, 200), "mnist": (600, 200), "imdb": (60, 40)},
}
A100_RECORD_S = {"eager": 3.83, "compiled": 3.09}  # airbench94's published training times
TARGET_S = 3.5  # ours, on one H100/H200
CIFAR94_STEPS = 576


def write_data(root: Path, size: str) -> dict[str, Path]:
    sizes = SIZES[size]
    dirs = {name: root / name for name in ("cifar", "mnist", "imdb")}
    write_cifar10(dirs["cifar"], per_batch=sizes["cifar"][0], test=sizes["cifar"][1])
    write_mnist(dirs["mnist"], train=sizes["mnist"][0], test=sizes["mnist"][1])
    write_imdb(dirs["imdb"], per_class=sizes["imdb"][0], test_per_class=sizes["imdb"][1])
    return dirs


class Check:
    def __init__(self, out: Path, accelerator: str) -> None:
        self.out, self.accelerator, self.results = out, accelerator, []
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "scripts" / "bench"), os.environ.get("PYTHONPATH", "")]
            ),
            "WANDB_MODE": "offline",
            "CUBLAS_WORKSPACE_CONFIG": ":4096:8",  # trainer.deterministic=true on CUDA needs it
        }

    def run(self, name: str, *overrides: str, script: str = "train", timeout: int = 240) -> dict:
        """One real run; its record (ok, seconds, metrics or the tail of its output) goes to the report."""
        run_dir = self.out / "runs" / name
        shutil.rmtree(run_dir, ignore_errors=True)
        command = [sys.executable, str(ROOT / "src" / f"{script}.py"), *overrides, f"hydra.run.dir={run_dir}"]
        if script == "train":
            command.append(f"trainer.accelerator={self.accelerator}")
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, env=self.env, cwd=ROOT
            )
            ok, output = proc.returncode == 0, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as error:
            ok, output = False, f"timed out after {timeout} s\n{error.stdout or ''}{error.stderr or ''}"
        record = {"check": name, "ok": ok, "seconds": round(time.perf_counter() - start, 1)}
        metrics_file = run_dir / "metrics.json"
        if metrics_file.exists():
            metrics = json.loads(metrics_file.read_text())
            record.update(test=metrics.get("test"), final=metrics.get("final"), run_dir=str(run_dir))
        if not ok:
            record["tail"] = output[-1500:]
        self.results.append(record)
        print(f"{'ok  ' if ok else 'FAIL'} {name} ({record['seconds']} s)", flush=True)
        return record

    def note(self, name: str, ok: bool, **facts: object) -> None:
        self.results.append({"check": name, "ok": ok, **facts})
        print(f"{'ok  ' if ok else 'FAIL'} {name} {facts}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--accelerator", default="gpu")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    gpu = args.accelerator != "cpu"
    data = write_data(args.out / "data", args.size)
    check = Check(args.out, args.accelerator)
    cifar, mnist, imdb = (f"paths.data_dir={data[name]}" for name in ("cifar", "mnist", "imdb"))

    def step(n: int = 2) -> list[str]:
        return [f"trainer.max_steps={n}", "trainer.limit_val_batches=1", "test=false", "logger=csv"]

    families = {
        "mlp": ["model=mlp", "data=cifar10", cifar],
        "cnn": ["model=cnn", "data=cifar10", cifar],
        "rnn": ["model=lstm", "data=imdb", imdb, "data.max_len=64", "data.val_size=20"],
        "gan": ["model=gan", "data=mnist", mnist, "data.normalize=symmetric"],
        "timm": ["model=timm", "model.backbone=resnet18", "data=cifar10", cifar],
        "cifar10_fast": ["experiment=cifar10_fast", cifar],
        "dcgan": ["experiment=dcgan_mnist", mnist],
    }
    small = ["data.val_size=100"] if args.size == "tiny" else []
    for name, overrides in families.items():
        extra = small if name not in ("rnn",) else []
        check.run(f"{name}-bf16", *overrides, *extra, *step(), "trainer.precision=bf16-mixed")
    if gpu:  # fp16 autocast with its loss scaler exists on CUDA only
        for name in ("cnn", "cifar10_fast", "dcgan"):
            check.run(f"{name}-16mixed", *families[name], *small, *step(), "trainer.precision=16-mixed")
        check.run("fsdp-1-device", *families["mlp"], *small, *step(), "trainer=fsdp", "trainer.devices=1")
    check.run("ddp-1-device", *families["mlp"], *small, *step(), "trainer=ddp", "trainer.devices=1")
    check.run("compile-cnn", *families["cnn"], *small, *step(20), "model.compile=true")

    # resume: 2 epochs in one go vs 1 epoch then a resumed second, deterministic kernels for both
    resume = [*families["cnn"], *small, "trainer.limit_train_batches=20", "trainer.limit_val_batches=4"]
    resume += ["trainer.deterministic=true", "seed=0", "logger=csv"]
    full = check.run("resume-full", *resume, "trainer.max_epochs=2")
    first = check.run("resume-first", *resume, "trainer.max_epochs=1", "test=false")
    last = Path(first.get("run_dir", "")) / "checkpoints" / "last.ckpt"
    resumed = check.run("resume-second", *resume, "trainer.max_epochs=2", f"ckpt_path={last}")
    same = full["ok"] and resumed["ok"] and full.get("test") == resumed.get("test")
    check.note("resume-matches", bool(same), full=full.get("test"), resumed=resumed.get("test"))

    # bring one checkpoint back: the device's last.ckpt is evaluated on the CPU (here, or after fetching)
    if last.exists():
        shutil.copy(last, args.out / "cnn_last.ckpt")
        check.run(
            "eval-on-cpu",
            f"ckpt_path={args.out / 'cnn_last.ckpt'}",
            cifar,
            "trainer.accelerator=cpu",
            script="eval",
        )

    # cifar10_94 speed: steady-state steps per second after warm-up (compilation included in warm-up)
    steps = 150 if args.size == "full" else 12
    for mode in ("eager", "compiled"):
        rate_file = args.out / f"rate_{mode}.json"
        rate_file.unlink(missing_ok=True)
        speed = ["experiment=cifar10_94", cifar, f"trainer.max_steps={steps}", "test=false", "logger=none"]
        speed += ["+callbacks.rate._target_=probes.StepRateProbe", f"+callbacks.rate.out_file={rate_file}"]
        speed += (
            ["+callbacks.rate.warmup=10"]
            if args.size == "full"
            else ["+callbacks.rate.warmup=4", "data.batch_size=100"]
        )
        record = check.run(
            f"cifar10_94-{mode}", *speed, *(["model.compile=true"] if mode == "compiled" else []), timeout=420
        )
        if record["ok"] and rate_file.exists():
            rate = json.loads(rate_file.read_text())
            projected = CIFAR94_STEPS / rate["steps_per_s"]
            check.note(
                f"cifar10_94-{mode}-projection", not gpu or projected <= TARGET_S,
                steps_per_s=round(rate["steps_per_s"], 2), projected_train_s=round(projected, 2),
                first_step_s=round(rate["first_step_s"], 2), a100_record_s=A100_RECORD_S[mode], target_s=TARGET_S,
            )  # fmt: skip
    return report(check.results, args.out)


def report(results: list[dict], out: Path) -> int:
    import torch

    hardware = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (rehearsal)"
    summary = {"hardware": hardware, "torch": torch.__version__, "results": results}
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=1, default=str))
    lines = [
        f"# GPU check on {hardware} (torch {torch.__version__})",
        "",
        "| check | ok | facts |",
        "|---|---|---|",
    ]
    for r in results:
        facts = {k: v for k, v in r.items() if k not in ("check", "ok", "tail", "run_dir", "final")}
        lines.append(
            f"| {r['check']} | {'yes' if r['ok'] else '**no**'} | {json.dumps(facts, default=str)[:300]} |"
        )
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    failed = [r["check"] for r in results if not r["ok"]]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed" + (f": {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
