"""Sample a GAN checkpoint: `python src/sample.py ckpt_path=.../last.ckpt n=64 [classifier_ckpt=...]`."""

from litlab.entry import hydra_main  # first: the shared preamble, no torch

# the task is imported when a run starts: --help and --cfg answer without the heavy stack
main = hydra_main(__file__, "sample", "litlab.models.gan.sampling:sample")

if __name__ == "__main__":
    main()
