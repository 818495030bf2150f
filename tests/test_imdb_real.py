"""Real-data check (make test-slow): the reference Keras LSTM reaches the issue's 85 % on aclImdb."""

from __future__ import annotations

import os

import pytest

REAL_DATA = os.environ.get("LITLAB_REAL_DATA")


@pytest.mark.slow
@pytest.mark.skipif(
    not REAL_DATA, reason="set LITLAB_REAL_DATA (make test-slow) to the folder with aclImdb_v1.tar.gz"
)
def test_seed_lstm_reaches_85_percent_on_real_imdb(run_script, tmp_path):
    run = run_script(
        "experiment=seed_lstm_imdb",
        f"paths.data_dir={REAL_DATA}",
        f"data.cache_dir={tmp_path}",
        timeout=3600,
    )
    assert run.metrics["test"]["test/acc"] >= 0.85
