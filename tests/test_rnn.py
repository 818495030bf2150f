"""RNN family: packing makes padding irrelevant, pretrained vectors load, and train.py learns on tiny IMDB."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from fakedata import write_imdb  # noqa: E402
from litlab.data.imdb import IMDBDataModule  # noqa: E402
from litlab.data.text import PAD_ID, load_word_vectors  # noqa: E402
from litlab.errors import ConfigError, DataError  # noqa: E402
from litlab.models.rnn import RecurrentNet, RNNClassifier  # noqa: E402

FAST = [
    "logger=csv",
    "trainer.accelerator=cpu",
    "data.val_size=40",
    "data.batch_size=16",
    "data.download=false",
]
SMALL = ["model.embedding_dim=32", "model.hidden_sizes=[32]", "model.optimizer.lr=0.01"]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """Tiny RNN steps are a few small matmuls: a second thread only adds sync cost (on a busy 2-core
    box, up to 10x), so the train.py subprocesses run single-threaded."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def net(cell: str, bidirectional: bool, pooling: str, packed: bool = True) -> RecurrentNet:
    torch.manual_seed(0)
    return RecurrentNet(50, 8, cell, [6, 5], bidirectional, 0.0, 0.0, pooling, packed, 2).eval()


def batch(lengths: list[int], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    tokens = torch.randint(2, 50, (len(lengths), width))
    for row, length in enumerate(lengths):
        tokens[row, length:] = PAD_ID
    return tokens, torch.tensor(lengths)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_packed_output_ignores_padding(cell, bidirectional, pooling):
    model = net(cell, bidirectional, pooling)
    tokens, lengths = batch([7, 3, 5, 1], 7)
    with torch.no_grad():
        out = model(tokens, lengths)
        wider = torch.cat([tokens, torch.randint(2, 50, (4, 6))], 1)  # junk after each review's end
        assert torch.allclose(model(wider, lengths), out, atol=1e-6)
        alone = torch.cat([model(tokens[i : i + 1, :n], lengths[i : i + 1]) for i, n in enumerate(lengths)])
        assert torch.allclose(alone, out, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_padded_computation_equals_packed(cell, bidirectional, pooling):
    packed, padded = net(cell, bidirectional, pooling), net(cell, bidirectional, pooling, packed=False)
    tokens, lengths = batch([6, 2, 4], 6)
    with torch.no_grad():
        assert torch.allclose(packed(tokens, lengths), padded(tokens, lengths), atol=1e-6)


def test_bad_family_settings_are_config_errors():
    with pytest.raises(ConfigError, match="model.cell='transformer'"):
        RecurrentNet(10, 4, "transformer", [4], False, 0, 0, "last", True, 1)
    with pytest.raises(ConfigError, match="model.pooling='sum'"):
        RecurrentNet(10, 4, "lstm", [4], False, 0, 0, "sum", True, 1)


def test_word_vectors_from_glove_and_word2vec_files(tmp_path):
    itos = ["<pad>", "<unk>", "good", "bad", "rare"]
    glove = tmp_path / "glove.txt"
    glove.write_text("good 1 2 3\nthe 0 0 0\nbad -1 -2 -3\n")
    vectors, found = load_word_vectors(glove, itos, 3)
    assert found.tolist() == [False, False, True, True, False] and vectors[3].tolist() == [-1, -2, -3]
    word2vec = tmp_path / "w2v.txt"
    word2vec.write_text("2 3\ngood 1 2 3\nrare 4 5 6\n")
    assert load_word_vectors(word2vec, itos, 3)[1].tolist() == [False, False, True, False, True]
    with pytest.raises(ConfigError, match="3-dimensional vectors; set model.embedding_dim=3"):
        load_word_vectors(glove, itos, 5)
    with pytest.raises(DataError, match="does not exist"):
        load_word_vectors(tmp_path / "nope.txt", itos, 3)


def test_pretrained_vectors_fill_the_embedding(tmp_path):
    (tmp_path / "v.txt").write_text("good 1 2\nbad 3 4\n")
    model = RNNClassifier(
        vocab_size=3,
        embedding_dim=2,
        hidden_sizes=[4],
        embedding_path=str(tmp_path / "v.txt"),
        freeze_embedding=True,
        num_classes=2,
        input_shape=[10],
        optimizer=torch.optim.Adam,
        loss="bce",
    )
    model.load_pretrained(tmp_path / "v.txt", ["<pad>", "<unk>", "good", "bad", "ugly"])
    weight = model.net.embedding.weight
    assert weight[2].tolist() == [1, 2] and weight[3].tolist() == [3, 4] and not weight.requires_grad
    assert model.embedding_coverage == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def sentiment_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sentiment")
    write_imdb(root, per_class=150, test_per_class=50)
    return root


def test_lstm_learns_tiny_sentiment(run_script, sentiment_dir):
    run = run_script(
        "model=lstm", "data=imdb", f"paths.data_dir={sentiment_dir}", "trainer.max_epochs=6", *SMALL, *FAST
    )
    # chance is 0.5; the margin below what seeds 0-2 reach (0.86-0.91) absorbs how bf16 autocast rounds on each CPU
    assert run.metrics["test"]["test/acc"] > 0.8
    assert run.metrics["final"]["train/loss"] < 0.5


def test_bidirectional_gru_with_two_classes_and_clipping_learns(run_script, sentiment_dir):
    run = run_script(
        "model=gru",
        "data=imdb",
        "model.bidirectional=true",
        "model.pooling=max",
        "model.loss=cross_entropy",
        "trainer.gradient_clip_val=1.0",
        "data.bucket=false",
        f"paths.data_dir={sentiment_dir}",
        "trainer.max_epochs=4",
        *SMALL,
        *FAST,
    )
    assert run.metrics["test"]["test/acc"] > 0.85


def test_seed_experiment_runs(run_script, sentiment_dir):
    run = run_script(
        "experiment=seed_lstm_imdb", f"paths.data_dir={sentiment_dir}", "trainer.max_epochs=2", *FAST
    )
    assert run.metrics["status"] == "completed" and run.metrics["test"]["test/acc"] > 0.6


def test_vocabulary_larger_than_the_embedding_is_a_config_error(sentiment_dir):
    datamodule = IMDBDataModule(str(sentiment_dir), val_size=40, download=False)
    datamodule.setup("fit")
    model = RNNClassifier(
        vocab_size=5, num_classes=2, input_shape=[400], optimizer=torch.optim.Adam, loss="bce"
    )
    model._trainer = SimpleNamespace(datamodule=datamodule)  # what Lightning attaches before setup()
    with pytest.raises(ConfigError, match=r"the data vocabulary has \d+ tokens .* set model.vocab_size"):
        model.setup("fit")


def test_rnn_compiles_through_the_shared_forward():
    """model.compile reaches the RNN family (the base's setup and forward), with eager-equal logits."""
    from functools import partial

    model = RNNClassifier(
        num_classes=2, input_shape=[12], optimizer=partial(torch.optim.Adam, lr=1e-3), vocab_size=30,
        embedding_dim=8, hidden_sizes=[8], loss="bce", compile=True,
    )  # fmt: skip
    model.setup("fit")
    tokens, lengths = torch.randint(2, 30, (3, 12)), torch.tensor([12, 6, 1])
    compiled = model((tokens, lengths))
    assert "compiled_net" in model.__dict__
    assert torch.allclose(compiled, model.net(tokens, lengths), atol=1e-5)


@pytest.mark.parametrize("packed", [False, True])
def test_recurrent_layers_run_in_fp32_under_bf16_autocast_on_a_cpu_without_bf16(monkeypatch, packed):
    """oneDNN has no bf16 LSTM for such a CPU (trainer.precision=bf16-mixed died with "could not create
    a primitive descriptor"): the layer runs in fp32 there, exactly as without autocast."""
    import litlab.models.rnn as rnn

    monkeypatch.setattr(rnn, "cpu_supports_bf16", lambda: False)
    torch.manual_seed(0)
    net = RecurrentNet(50, 8, "lstm", [6], False, 0.0, 0.0, "last", packed, 2).eval()
    x, lengths = torch.randn(3, 7, 8), torch.tensor([7, 4, 1])
    plain = net.run(net.layers[0][0], x, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = net.run(net.layers[0][0], x, lengths)
        logits = net(torch.randint(2, 50, (3, 7)), lengths)
    assert autocast.dtype == torch.float32 and torch.equal(autocast, plain)
    assert logits.shape == (3, 2) and torch.isfinite(logits).all()
