"""Train a model: `python src/train.py model=cnn data=cifar10 [key=value ...]`."""

from litlab.entry import hydra_main  # first: the shared preamble (torchvision shim, resolvers)
from litlab.pipeline import train

main = hydra_main(__file__, "train", train)

if __name__ == "__main__":
    main()
