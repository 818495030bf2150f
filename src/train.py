"""Train a model: `python src/train.py model=cnn data=cifar10 [key=value ...]`."""

import os
import warnings
from pathlib import Path

os.environ.setdefault("LITLAB_ROOT", str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

import litlab  # noqa: E402, F401  (first: makes torchvision importable, registers resolvers)
from litlab.pipeline import run_entry_point, train  # noqa: E402
from litlab.sweeps.jobs import objective  # noqa: E402

# conf/hydra/launcher/{joblib,submitit_*}.yaml set litlab's defaults and are checked against the
# plugins' schemas of the same name, as intended; Hydra warns that this matching is deprecated.
warnings.filterwarnings("ignore", message="(?s).*is validated against ConfigStore schema")


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> dict | float | None:
    """Returns the result, or with ``optimized_metric`` set the float an Optuna sweep optimises."""
    return objective(run_entry_point(train, cfg), cfg)


if __name__ == "__main__":
    main()
