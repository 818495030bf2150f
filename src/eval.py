"""Test a checkpoint: `python src/eval.py ckpt_path=logs/train/runs/.../checkpoints/last.ckpt`."""

from litlab.entry import hydra_main  # first: the shared preamble, no torch

# the task is imported when a run starts: --help and --cfg answer without the heavy stack
main = hydra_main(__file__, "eval", "litlab.evaluation:evaluate")

if __name__ == "__main__":
    main()
