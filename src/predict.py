"""Predict with a classifier checkpoint: `python src/predict.py ckpt_path=.../last.ckpt [data=...]`."""

from litlab.entry import hydra_main  # first: the shared preamble (torchvision shim, resolvers)
from litlab.predictions_csv import predict

main = hydra_main(__file__, "predict", predict)

if __name__ == "__main__":
    main()
