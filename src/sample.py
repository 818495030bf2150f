"""Sample a GAN checkpoint: `python src/sample.py ckpt_path=.../last.ckpt n=64 [classifier_ckpt=...]`."""

import os
from pathlib import Path

os.environ.setdefault("LITLAB_ROOT", str(Path(__file__).resolve().parents[1]))

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

import litlab  # noqa: E402, F401  (first: makes torchvision importable, registers resolvers)
from litlab.pipeline import run_entry_point  # noqa: E402
from litlab.sampling import sample  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="sample")
def main(cfg: DictConfig) -> dict | None:
    return run_entry_point(sample, cfg)


if __name__ == "__main__":
    main()
