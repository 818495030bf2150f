"""litlab's RichProgressBar: throttled to its redraw rate, yet complete at the end of every epoch."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.demos.boring_classes import BoringModel

from litlab.callbacks import RichProgressBar


def test_progress_bar_updates_at_its_redraw_rate_and_always_on_the_last_batch(tmp_path) -> None:
    bar = RichProgressBar(refresh_rate=1)  # at most one update a second: fast steps skip most
    updates: list[int] = []
    parent_update = bar._update_metrics

    def counting_update(trainer, module) -> None:
        updates.append(trainer.fit_loop.epoch_loop.batch_progress.current.completed)
        parent_update(trainer, module)

    bar._update_metrics = counting_update
    trainer = L.Trainer(
        max_epochs=2,
        callbacks=[bar],
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
    )
    trainer.fit(BoringModel())
    batches = trainer.num_training_batches
    # the sanity check's update reads 0 completed train batches; the epoch-end and validation-end
    # updates (two an epoch) stay in the count
    train_updates = [n for n in updates if n]
    assert len(train_updates) < 2 * batches / 4, "the bar updated on (nearly) every batch"
    task = bar.progress.tasks[bar.train_progress_bar_id]
    assert task.completed == task.total == batches  # the last batch always lands
