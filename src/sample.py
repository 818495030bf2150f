"""Sample a GAN checkpoint: `python src/sample.py ckpt_path=.../last.ckpt n=64 [classifier_ckpt=...]`."""

from litlab.entry import hydra_main  # first: the shared preamble (torchvision shim, resolvers)
from litlab.models.gan.sampling import sample

main = hydra_main(__file__, "sample", sample)

if __name__ == "__main__":
    main()
