"""Test a checkpoint: `python src/eval.py ckpt_path=logs/train/runs/.../checkpoints/last.ckpt`."""

from litlab.entry import hydra_main  # first: the shared preamble (torchvision shim, resolvers)
from litlab.evaluation import evaluate

main = hydra_main(__file__, "eval", evaluate)

if __name__ == "__main__":
    main()
