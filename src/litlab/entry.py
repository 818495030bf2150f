"""The preamble that src/train.py, eval.py and sample.py share: one Hydra main per entry script.

Importing this module, or the entry scripts, loads no torch: Hydra answers ``--help``, ``--cfg``
and ``--info`` from the config alone, so the task (and with it Lightning, torch, torchvision and
timm) is imported only when a run starts.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

import litlab  # noqa: F401  (first: the torchvision fix, the warning filters, the resolvers)

Task = Callable[[DictConfig], Any]


def load_task(task: Task | str) -> Task:
    """``task`` itself, or the function a ``"module:function"`` string names, imported now."""
    if callable(task):
        return task
    module, _, name = task.partition(":")
    return getattr(importlib.import_module(module), name)


def import_lightning_with_its_own_console() -> None:
    """Import Lightning as if Hydra had not configured logging yet, as before the import was lazy.

    Lightning gives its messages a console handler of their own only when the root logger has none
    at import; imported after Hydra's logging is set up, each message would print twice (Lightning's
    ``INFO:`` line on stderr and Hydra's on stdout)."""
    if "lightning" in sys.modules:
        return
    root = logging.getLogger()
    handlers = root.handlers[:]
    root.handlers.clear()
    try:
        import lightning  # noqa: F401
    finally:
        root.handlers[:] = handlers


def hydra_main(script: str, config_name: str, task: Task | str) -> Callable[[], Any]:
    """A Hydra main for ``task`` composed from conf/<config_name>.yaml beside the script's src/.

    ``task`` is a function or, so that the script starts without the heavy stack, a
    ``"module:function"`` string imported when the run starts. It runs through
    ``run_entry_point`` (one-line errors, failures recorded in sweeps); the main returns what a
    sweeper needs (the optimised metric for an Optuna sweep, else the result)."""
    import hydra

    root = Path(script).resolve().parents[1]
    os.environ.setdefault("LITLAB_ROOT", str(root))

    def main(cfg: DictConfig) -> Any:
        import_lightning_with_its_own_console()
        from litlab.pipeline import run_entry_point
        from litlab.sweeps.jobs import objective

        return objective(run_entry_point(load_task(task), cfg), cfg)

    return hydra.main(version_base="1.3", config_path=str(root / "conf"), config_name=config_name)(main)
