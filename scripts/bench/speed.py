"""Speed recipes: cifar10_fast vs the reference CNN to 75.52 %, and template vs plain-loop throughput of
its net. cifar10_94 over 3 seeds is its own opt-in section (speed94.py), an hour and more on a CPU."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from runner import ROOT, train

sys.path.insert(0, str(Path(__file__).parent))
from core import build, paired, range_cell, template_images_per_s  # noqa: E402

TITLE = "Speed recipes: cifar10_fast"
TARGET = 0.7552  # the reference CNN's test accuracy (RESULTS.md)
STEPS = 40  # timed steps per throughput measurement (an epoch of cifar10_fast has 97)
PAIRS = 5
RUNS = ROOT / "logs" / "bench" / "speed"


def timed_run(data_dir: Path, experiment: str, name: str, *extra: str) -> dict:
    """A real `python src/train.py experiment=...` run; adds the fit-loop seconds from FitTimeProbe."""
    probe = Path(tempfile.mkdtemp()) / "fit.json"
    bench_dir = str(ROOT / "scripts" / "bench")  # where the child process finds the probe
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [bench_dir, os.environ.get("PYTHONPATH")])),
    }
    overrides = [
        f"experiment={experiment}",
        f"paths.data_dir={data_dir}",
        "+callbacks.fit_time._target_=probes.FitTimeProbe",
        f"+callbacks.fit_time.out_file={probe}",
        *extra,
    ]
    metrics = train(overrides, RUNS / name, env=env)
    metrics["fit"] = json.loads(probe.read_text())
    return metrics


def plain_images_per_s(data_dir: Path, experiment: str, steps: int, warmup: int = 5) -> float:
    """A hand-written loop over the same net, optimiser, lr schedule, label smoothing, batch, translate +
    flip augmentation and lookahead EMA, with channels_last and bf16 autocast: what the template costs."""
    from litlab.data.batching import random_crop, random_hflip, take
    from litlab.ema import EMAState

    cfg, datamodule, model = build(data_dir, experiment)
    model.on_fit_start = lambda: None  # whitening needs a trainer; it does not change the step's cost
    images, labels = datamodule.splits["train"].tensors
    net = model.net.to(memory_format=torch.channels_last)
    optimizer = model.optimizer_factory(params=model.parameter_groups())
    scheduler = model.scheduler_factory(optimizer, total_steps=10_000) if model.scheduler_factory else None
    ema = EMAState(net)
    use_bf16 = cfg.trainer.precision.startswith("bf16")
    batch, order = cfg.data.batch_size, torch.randperm(len(labels))
    net.train()
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        idx = order[step * batch : (step + 1) * batch]
        x_uint8, y = take((images, labels), idx)
        x = datamodule.to_float(x_uint8)
        x = random_hflip(random_crop(x, cfg.data.translate, mode="reflect"))
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            logits = net(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y, label_smoothing=cfg.model.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if step % 5 == 0:
            ema.update(net, 0.5)
            ema.copy_to(net)
    return steps * batch / (time.perf_counter() - start)


def accuracy_row(name: str, metrics: dict) -> str:
    acc = metrics["test"]["test/acc"]
    return (
        f"| `{name}` | {acc:.2%} | {'yes' if acc >= TARGET else 'no'} | {metrics['process_time_s']:.1f} s | "
        f"{metrics['fit']['train_s']:.1f} s | {metrics['epochs']} |"
    )


def run(data_dir: Path) -> str:
    reference = timed_run(data_dir, "seed_cnn_cifar10", "seed_cnn_cifar10")
    fast = timed_run(data_dir, "cifar10_fast", "cifar10_fast")
    ratio = fast["process_time_s"] / reference["process_time_s"]
    rows = [
        f"| run | test acc | >= {TARGET:.2%} | process wall time | training (fit loop) | epochs |",
        "|---|---|---|---|---|---|",
        accuracy_row("seed_cnn_cifar10", reference),
        accuracy_row("cifar10_fast", fast),
        "",
        f"Wall time `cifar10_fast` / `seed_cnn_cifar10`: **{ratio:.2f}** (target <= 0.25). Process wall time: "
        "`python src/train.py experiment=<name> paths.data_dir=...` from launch to exit (startup, data loading, "
        "training and the test), one run each, one after the other: the time to the test accuracy shown. "
        "`seed_cnn_cifar10` tests its best-validation checkpoint, `cifar10_fast` (no validation split) its "
        "final EMA weights with flip + translate TTA.",
    ]
    measured = paired(
        partial(plain_images_per_s, data_dir, "cifar10_fast", STEPS),
        partial(template_images_per_s, data_dir, "cifar10_fast", STEPS),
        PAIRS,
    )
    rows += [
        "",
        "| `cifar10_fast` net (batch 512) | plain loop img/s | template img/s | ratio (range over pairs) | target |",
        "|---|---|---|---|---|",
        f"| widths 32/64/64 | {measured['plain']:,.0f} | {measured['template']:,.0f} | {range_cell(measured, 'template', 'plain')} "
        "| >= 0.95 |",
        "",
        "Plain loop: the same net, optimiser (SGDW, per-group lr), lr schedule, label smoothing, translate + flip "
        f"and a lookahead EMA every 5 steps, channels_last and bf16 autocast, hand-written; template: the "
        f"experiment's Trainer with its callbacks and the CSV logger. Steps 5..{5 + STEPS}, {PAIRS} plain/template "
        "pairs measured in turn (odd pairs template first); ratio: the median of the per-pair ratios, their range "
        "in brackets.",
    ]
    return "\n".join(rows)
