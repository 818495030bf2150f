"""Train a model: `python src/train.py model=cnn data=cifar10 [key=value ...]`."""

from litlab.entry import hydra_main  # first: the shared preamble, no torch

# the task is imported when a run starts: --help and --cfg answer without the heavy stack
main = hydra_main(__file__, "train", "litlab.pipeline:train")

if __name__ == "__main__":
    main()
