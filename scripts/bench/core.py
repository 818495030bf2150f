"""Core throughput: the template vs bare Lightning, a plain PyTorch loop and the reference pipeline; startup."""

from __future__ import annotations

import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from runner import ROOT

sys.path.insert(0, str(Path(__file__).parent))
from startup_clock import cli_answer_seconds, stack_floor_seconds, startup_seconds  # noqa: E402

TITLE = "Training throughput and startup (core)"
# timed steps (an epoch has 450): the MLP's steps are short, so it runs over epoch ends (the template's
# end-of-epoch checkpoint counts) to time more of them per measurement
SAMPLES = {"seed_cnn_cifar10": 120, "seed_mlp_cifar10": 1200}
# rounds of interleaved plain/template/bare/reference measurements per model. Single rounds of the
# CNN ratio ranged 0.79-1.07 on this shared 2-core machine, and the median of 7 landed at 0.948,
# 0.991 and 1.012 in three runs of one build: 11 longer rounds narrow what the median can do.
PAIRS = 11
TEMPLATE_VS_BARE = 0.95  # the template's own cost: its fit vs bare Lightning on the same net and data


def paired(
    plain: Callable[[], float], template: Callable[[], float], pairs: int, **more: Callable[[], float]
) -> dict[str, Any]:
    """Plain and template rates (and any ``more``) measured in turn, ``pairs`` times: medians per side,
    and every round's rates. A ratio is the median of the per-round ratios (``range_cell``): a load that comes and goes on the machine hits a whole
    round alike, where medians taken per side can pair a quiet plain run with a loaded template run.
    Odd rounds run in reverse order: in 8 rounds of the CNN, whichever of plain and template ran
    second read about 5 % slower (median ratio 0.97 with plain first, 1.09 with the template first)."""
    measures = {"plain": plain, "template": template, **more}
    rounds = []
    for index in range(pairs):
        order = list(measures.items())
        rounds.append({name: measure() for name, measure in (order[::-1] if index % 2 else order)})
    result: dict[str, Any] = {name: statistics.median(r[name] for r in rounds) for name in measures}
    result["rounds"] = rounds
    return result


def range_cell(measured: dict[str, Any], top: str, bottom: str, unit: str = "") -> str:
    """The median of the per-round ratios ``top / bottom``, their range in brackets."""
    ratios = [r[top] / r[bottom] for r in measured["rounds"]]
    digits = 2 if unit else 3
    return f"{statistics.median(ratios):.{digits}f}{unit} ({min(ratios):.{digits}f}-{max(ratios):.{digits}f})"


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("train", overrides=overrides)


def build(data_dir: Path, experiment: str, *overrides: str, set_up: bool = True):
    """Config, data module and model of an experiment. ``set_up=False`` leaves the data module's setup
    to the Trainer, as in train.py (where it places the data on the training device)."""
    import litlab  # noqa: F401
    from litlab.utils.config import build as build_node

    cfg = compose(
        [
            f"experiment={experiment}",
            f"paths.data_dir={data_dir}",
            "paths.output_dir=/tmp/litlab-bench",
            *overrides,
        ]
    )
    datamodule = build_node(cfg.data, "data")
    if set_up:
        datamodule.setup()
    model = build_node(cfg.model, "model", num_classes=10, input_shape=list(datamodule.input_shape))
    return cfg, datamodule, model


# Trainer settings of every timed fit: training steps only, ended by StepTimer. min_epochs=0: the
# timer's should_stop ends the fit at once instead of after a whole epoch.
TIMED_FIT = {
    "min_epochs": 0,
    "max_epochs": 3,
    "limit_val_batches": 0,
    "num_sanity_val_steps": 0,
    "default_root_dir": "/tmp/litlab-bench",
}


class StepTimer:
    """Lightning callback: wall time and optimiser-step count from the first batch starting at or past
    step ``warmup`` to the first batch ending at or past ``warmup + n``."""

    def __init__(self, warmup: int, n: int) -> None:
        import lightning as L

        outer = self

        class _Timer(L.Callback):
            def on_train_batch_start(self, trainer, module, batch, idx):
                if trainer.global_step >= warmup and outer.start_step < 0:
                    outer.start, outer.start_step = time.perf_counter(), trainer.global_step

            def on_train_batch_end(self, trainer, module, outputs, batch, idx):
                if outer.start_step >= 0 and trainer.global_step >= outer.start_step + n:
                    outer.seconds = time.perf_counter() - outer.start
                    outer.steps = trainer.global_step - outer.start_step
                    trainer.should_stop = True

        self.callback = _Timer()
        self.start, self.start_step, self.steps, self.seconds = 0.0, -1, 0, float("nan")

    def images_per_s(self, batch_size: int) -> float:
        return self.steps * batch_size / self.seconds


def template_images_per_s(
    data_dir: Path, experiment: str, steps: int, warmup: int = 5, overrides: tuple[str, ...] = ()
) -> float:
    """The full template: train.py's Trainer config with its default callbacks and CSV logger."""
    import lightning as L
    from omegaconf import OmegaConf

    from litlab.callbacks import RunState
    from litlab.utils.config import build_all

    cfg, datamodule, model = build(data_dir, experiment, *overrides, set_up=False)
    timer = StepTimer(warmup, steps)
    run_state = RunState(OmegaConf.to_container(cfg, resolve=True), "/tmp/litlab-bench/checkpoints")
    callbacks = [*build_all(cfg.callbacks, "callbacks"), run_state, timer.callback]  # as train.py builds them
    trainer_cfg = {k: v for k, v in cfg.trainer.items() if k != "_target_" and v is not None}
    trainer_cfg.update(TIMED_FIT)
    trainer = L.Trainer(
        **trainer_cfg, callbacks=callbacks, logger=L.pytorch.loggers.CSVLogger("/tmp/litlab-bench")
    )
    trainer.fit(model, datamodule=datamodule)
    return timer.images_per_s(cfg.data.batch_size)


def bare_lightning_images_per_s(
    data_dir: Path, experiment: str, steps: int, warmup: int = 5, defaults: bool = False
) -> float:
    """Bare Lightning: the same net, optimiser, precision and DataModule in a minimal LightningModule.
    ``defaults=False``: Lightning's floor, no callbacks, logger, progress bar or checkpointing.
    ``defaults=True``: ``L.Trainer``'s own defaults, as a plain Lightning script gets them
    (checkpointing, the TQDM bar, the default logger, the model summary)."""
    import lightning as L

    cfg, datamodule, model = build(data_dir, experiment)
    channels_last = bool(cfg.model.get("channels_last"))

    class Bare(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = model.net.to(memory_format=torch.channels_last) if channels_last else model.net

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return torch.nn.functional.cross_entropy(self.net(x).float(), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return model.optimizer_factory(params=self.net.parameters())

    timer = StepTimer(warmup, steps)
    switched_off = {"logger": False, "enable_progress_bar": False, "enable_checkpointing": False}
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        precision=cfg.trainer.precision,
        callbacks=[timer.callback],
        **({} if defaults else {**switched_off, "enable_model_summary": False}),
        **TIMED_FIT,
    )
    trainer.fit(Bare(), datamodule=datamodule)
    return timer.images_per_s(cfg.data.batch_size)


def plain_images_per_s(data_dir: Path, experiment: str, steps: int, warmup: int = 5) -> float:
    """A hand-written loop: same model, batch size and in-memory uint8 data; bf16 autocast where the
    template uses it, channels_last where the model does (a convnet; for an MLP it is only a copy)."""
    from litlab.data.batching import take

    cfg, datamodule, model = build(data_dir, experiment)
    images, labels = datamodule.splits["train"].tensors
    channels_last = bool(cfg.model.get("channels_last"))
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    net = model.net.to(memory_format=memory_format)
    optimizer = model.optimizer_factory(params=net.parameters())
    use_bf16 = cfg.trainer.precision.startswith("bf16")
    mean = torch.tensor(datamodule.mean).view(1, -1, 1, 1)
    std = torch.tensor(datamodule.std).view(1, -1, 1, 1)
    normalize = cfg.data.normalize
    order = torch.randperm(len(labels))
    batch = cfg.data.batch_size
    net.train()
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        first = step * batch % (len(order) // batch * batch)  # past an epoch's end: around again
        idx = order[first : first + batch]
        x_uint8, y = take((images, labels), idx)  # the template's own whole-row batch fetch
        x = x_uint8.float().div_(255)
        x = x.mul_(2).sub_(1) if normalize == "symmetric" else x.sub_(mean).div_(std)
        x = x.contiguous(memory_format=memory_format)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            logits = net(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * batch / (time.perf_counter() - start)


def reference_images_per_s(data_dir: Path, experiment: str, steps: int) -> float:
    """The teaching material's pipeline: torchvision CIFAR10 + ToTensor/Normalize + DataLoader(batch 100), fp32."""
    from torchvision import datasets, transforms

    extracted = Path(tempfile.gettempdir()) / "litlab-bench-cifar"
    if not (extracted / "cifar-10-batches-py" / "test_batch").exists():
        with tarfile.open(data_dir / "cifar-10-python.tar.gz") as tar:
            tar.extractall(extracted, filter="data")

    class RepackedCIFAR10(datasets.CIFAR10):
        def _check_integrity(self) -> bool:  # the shared archive is a pixel-exact repack with other md5s
            return True

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
    dataset = RepackedCIFAR10(str(extracted), train=True, transform=transform, download=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=100, shuffle=True)
    _, _, model = build(data_dir, experiment)
    net = model.net
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    warmup = 5
    batches = (batch for _ in iter(int, 1) for batch in loader)  # epoch after epoch
    for step, (x, y) in zip(range(warmup + steps), batches, strict=False):
        if step == warmup:
            start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * 100 / (time.perf_counter() - start)


def run(data_dir: Path) -> str:
    rows = [
        "| model (batch) | template img/s | Lightning, its defaults img/s | template / Lightning defaults "
        "| target | Lightning floor img/s | template / floor | plain loop img/s | template / plain |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    speed_rows = [
        "",
        "| model | reference pipeline s/epoch | template s/epoch | speed-up (range over rounds) | target |",
        "|---|---|---|---|---|",
    ]
    for experiment, speed_target in (("seed_cnn_cifar10", "2x"), ("seed_mlp_cifar10", "-")):
        steps = SAMPLES[experiment]
        measured = paired(
            partial(plain_images_per_s, data_dir, experiment, steps),
            partial(template_images_per_s, data_dir, experiment, steps),
            PAIRS,
            bare=partial(bare_lightning_images_per_s, data_dir, experiment, steps),
            lightning=partial(bare_lightning_images_per_s, data_dir, experiment, steps, defaults=True),
            reference=partial(reference_images_per_s, data_dir, experiment, steps),
        )
        rows.append(
            f"| `{experiment}` (100) | {measured['template']:,.0f} | {measured['lightning']:,.0f} | "
            f"{range_cell(measured, 'template', 'lightning')} | >= {TEMPLATE_VS_BARE} | {measured['bare']:,.0f} | "
            f"{range_cell(measured, 'template', 'bare')} | {measured['plain']:,.0f} | "
            f"{range_cell(measured, 'template', 'plain')} |"
        )
        speed_rows.append(
            f"| `{experiment}` | {50_000 / measured['reference']:.2f} | {50_000 / measured['template']:.2f} | "
            f"{range_cell(measured, 'template', 'reference', 'x')} | {'>= ' + speed_target if speed_target != '-' else 'reported'} |"
        )
    rows += speed_rows
    # alternated, so that each difference (the template's share) compares runs made moments apart
    pairs = [(startup_seconds(data_dir, 1)[0], stack_floor_seconds(1)[0]) for _ in range(5)]
    startup, floor = [s for s, _ in pairs], [f for _, f in pairs]
    cli = {name: cli_answer_seconds(*name.split()) for name in ("--help", "--cfg job")}
    method = (Path(__file__).parent / "core_method.md").read_text()
    return (
        "\n".join(rows)
        + "\n\n"
        + method.format(
            startup=f"{statistics.median(startup):.2f}",
            startup_runs=", ".join(f"{s:.2f}" for s in startup),
            floor=f"{statistics.median(floor):.2f}",
            floor_runs=", ".join(f"{s:.2f}" for s in floor),
            share=f"{statistics.median(s - f for s, f in pairs):.2f}",
            help=f"{statistics.median(cli['--help']):.2f}",
            help_runs=", ".join(f"{s:.2f}" for s in cli["--help"]),
            cfg_job=f"{statistics.median(cli['--cfg job']):.2f}",
            cfg_job_runs=", ".join(f"{s:.2f}" for s in cli["--cfg job"]),
            cnn_steps=SAMPLES["seed_cnn_cifar10"],
            mlp_steps=SAMPLES["seed_mlp_cifar10"],
            rounds=PAIRS,
            target=TEMPLATE_VS_BARE,
        ).strip()
    )
