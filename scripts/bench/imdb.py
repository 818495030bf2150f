"""IMDB: data setup cold (read, tokenise, cache) vs warm (cache hit), and training throughput of the
template (Lightning Trainer from the experiment config) vs a plain PyTorch loop on the same model and batches."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from runner import ROOT

sys.path.insert(0, str(ROOT / "src"))

import litlab  # noqa: E402, F401  (torchvision shim and resolvers first)

TITLE = "IMDB: data setup and RNN training throughput"
EXPERIMENT = "lstm_imdb_best"
BATCHES, WARMUP, ROUNDS = 40, 5, 2


def compose(data_dir: Path, cache_dir: Path):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(
            "train",
            overrides=[
                f"experiment={EXPERIMENT}",
                f"paths.data_dir={data_dir}",
                f"data.cache_dir={cache_dir}",
                "paths.output_dir=/tmp/litlab-bench-imdb",
            ],
        )


def timed_setup(cfg) -> tuple[float, object]:
    from litlab.utils.config import build

    start = time.perf_counter()
    datamodule = build(cfg.data, "data")
    datamodule.setup("fit")
    return time.perf_counter() - start, datamodule


def plain_loop(model, batches, precision: str) -> float:
    """What a hand-written loop does: forward, loss, backward, clip, step. Returns sequences/s."""
    import torch

    optimizer = model.optimizer_factory(params=model.parameters())
    clip = model.bench_clip
    model.train()
    autocast = precision.startswith("bf16")
    start, seen = 0.0, 0
    for i, (tokens, lengths, labels) in enumerate(batches):
        if i == WARMUP:
            start, seen = time.perf_counter(), 0
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = model((tokens, lengths)).float()
        loss = model.criterion(logits, labels, 0.0)
        optimizer.zero_grad()
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        seen += len(labels)
    return seen / (time.perf_counter() - start)


def template_loop(cfg, model, batches) -> float:
    import lightning as L
    from torch.utils.data import DataLoader

    from litlab.utils.config import build

    class Clock(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == WARMUP:
                self.start, self.seen = time.perf_counter(), 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx >= WARMUP:
                self.seen += len(batch[2])
                self.end = time.perf_counter()

    clock = Clock()
    trainer = build(
        cfg.trainer,
        "trainer",
        callbacks=[clock],
        logger=False,
        max_epochs=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    loader = DataLoader(batches, batch_size=None)
    trainer.fit(model, train_dataloaders=loader)
    return clock.seen / (clock.end - clock.start)


def run(data_dir: Path) -> str:
    import torch

    from litlab.utils.config import build

    torch.set_num_threads(1)  # as in the results runs: faster on this shared 2-core machine

    with tempfile.TemporaryDirectory() as cache:
        cfg = compose(data_dir, Path(cache))
        cold, datamodule = timed_setup(cfg)
        warm, datamodule = timed_setup(cfg)
    assert datamodule.setup_info["cache_hit"], "the second setup must hit the cache"
    torch.manual_seed(0)
    batches = [b for _, b in zip(range(BATCHES), datamodule.train_dataloader(), strict=False)]
    precision = str(cfg.trainer.precision)

    def fresh_model():
        torch.manual_seed(0)
        model = build(cfg.model, "model", num_classes=2, input_shape=list(datamodule.input_shape))
        model.bench_clip = cfg.trainer.gradient_clip_val
        return model

    plain, template = [], []
    for _ in range(ROUNDS):  # interleaved, so drifting machine load hits both alike
        plain.append(plain_loop(fresh_model(), batches, precision))
        template.append(template_loop(cfg, fresh_model(), batches))
    plain_rate, template_rate = statistics.median(plain), statistics.median(template)
    ratio = template_rate / plain_rate
    tokens = sum(int(b[1].sum()) for b in batches[WARMUP:]) / sum(len(b[1]) for b in batches[WARMUP:])
    return (
        "| measurement | value |\n|---|---|\n"
        f"| data setup, cold (read archive, tokenise 50,000 reviews, write cache) | {cold:.1f} s |\n"
        f"| data setup, warm (cache hit) | {warm:.2f} s |\n"
        f"| plain PyTorch loop | {plain_rate:.0f} sequences/s |\n"
        f"| template (Lightning Trainer from the config) | {template_rate:.0f} sequences/s |\n"
        f"| template / plain | {ratio:.2f} ({'meets' if ratio >= 0.9 else 'BELOW'} the 0.9 target) |\n\n"
        f"Model and trainer settings of `experiment={EXPERIMENT}` (precision `{precision}`), the same "
        f"{BATCHES} length-bucketed training batches (mean {tokens:.0f} tokens per review) for both loops, "
        f"first {WARMUP} batches not timed, median of {ROUNDS} interleaved rounds, one torch thread. Cold setup uses an "
        "empty cache dir; warm is a second DataModule on the same cache.\n"
    )
