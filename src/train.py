"""Train a model: `python src/train.py model=cnn data=cifar10 [key=value ...]`."""

import os
from pathlib import Path

os.environ.setdefault("LITLAB_ROOT", str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

import litlab  # noqa: E402, F401  (first: makes torchvision importable, registers resolvers)
from litlab.pipeline import run_entry_point, train  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> dict | None:
    return run_entry_point(train, cfg)


if __name__ == "__main__":
    main()
