"""The preamble that src/train.py, eval.py and sample.py share: one Hydra main per entry script."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

import litlab  # noqa: F401  (first: makes torchvision importable, registers the resolvers)

# conf/hydra/launcher/{joblib,submitit_*}.yaml set litlab's defaults and are checked against the
# plugins' schemas of the same name, as intended; Hydra warns that this matching is deprecated.
warnings.filterwarnings("ignore", message="(?s).*is validated against ConfigStore schema")


def hydra_main(script: str, config_name: str, task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
    """A Hydra main for ``task`` composed from conf/<config_name>.yaml beside the script's src/.

    It runs ``task`` through ``run_entry_point`` (one-line errors, failures recorded in sweeps) and
    returns what a sweeper needs (the optimised metric for an Optuna sweep, else the result)."""
    import hydra

    from litlab.pipeline import run_entry_point
    from litlab.sweeps.jobs import objective

    root = Path(script).resolve().parents[1]
    os.environ.setdefault("LITLAB_ROOT", str(root))

    def main(cfg: DictConfig) -> Any:
        return objective(run_entry_point(task, cfg), cfg)

    return hydra.main(version_base="1.3", config_path=str(root / "conf"), config_name=config_name)(main)
