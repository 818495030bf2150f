"""Lightning's MLFlowLogger with a local file store that MLflow 3 accepts, and a one-line error when
MLflow is not installed."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from lightning.pytorch.loggers.mlflow import MLFlowLogger as LightningMLFlowLogger

from litlab.errors import ConfigError


class MLFlowLogger(LightningMLFlowLogger):
    """The store is a folder in the run dir (``file:<run dir>/mlruns``): no server, and the params and
    metrics are plain files. MLflow 3 raises on a file store (in maintenance mode upstream, still
    supported) unless ``MLFLOW_ALLOW_FILE_STORE`` is set; it is set here only for a ``file:`` URI."""

    def __init__(self, tracking_uri: str | None = None, **kwargs: Any) -> None:
        if importlib.util.find_spec("mlflow") is None:
            raise ConfigError(
                "logger=mlflow needs MLflow: pip install -e '.[mlflow]' (mlflow-skinny), or choose another logger"
            )
        if tracking_uri and tracking_uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        super().__init__(tracking_uri=tracking_uri, **kwargs)
