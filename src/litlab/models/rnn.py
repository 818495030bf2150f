"""RNN family for token sequences: embedding -> stacked LSTM/GRU/RNN layers -> pooling -> linear head.

Batches are ``(tokens, lengths, labels)`` with padding at the end. Padding never changes a result:
forward layers read it only after the real tokens, reverse layers read each review reversed within
its length, and pooling looks at real positions only. ``packed=true`` also skips the padded steps;
``packed=false`` computes and discards them, which on CPU is faster (oneDNN kernels).
Layers may differ in width: ``hidden_sizes=[128, 64]`` is the Keras LSTM 128 -> LSTM 64 stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from litlab.data.text import PAD_ID, load_word_vectors
from litlab.errors import ConfigError
from litlab.models.base import ClassificationModule
from litlab.utils.resolvers import cpu_supports_bf16

CELLS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
POOLINGS = ("last", "mean", "max")
SPECIAL_TOKENS = 2  # PAD and UNK sit in front of the words


class RecurrentNet(nn.Module):
    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        cell: str,
        hidden_sizes: Sequence[int],
        bidirectional: bool,
        dropout: float,
        embedding_dropout: float,
        pooling: str,
        packed: bool,
        out_features: int,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ConfigError(f"model.cell={cell!r} is not one of {sorted(CELLS)}")
        if pooling not in POOLINGS:
            raise ConfigError(f"model.pooling={pooling!r} is not one of {POOLINGS}")
        if not hidden_sizes:
            raise ConfigError("model.hidden_sizes must name at least one layer width, e.g. [128]")
        self.embedding = nn.Embedding(num_embeddings, embedding_dim, padding_idx=PAD_ID)
        directions = 2 if bidirectional else 1
        widths = [embedding_dim, *(directions * h for h in hidden_sizes)]
        # one single-direction module per direction: the reverse one reads each review reversed
        # within its own length, so padding (always at the end) is never read before real tokens
        self.layers = nn.ModuleList(
            nn.ModuleList(CELLS[cell](width, hidden, batch_first=True) for _ in range(directions))
            for width, hidden in zip(widths, hidden_sizes, strict=False)
        )
        self.embedding_dropout, self.dropout = nn.Dropout(embedding_dropout), nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1], out_features)
        self.pooling, self.packed, self.bidirectional = pooling, packed, bidirectional

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.clamp(min=1)  # an empty review is one PAD step, not a packing error
        x = self.embedding_dropout(self.embedding(tokens))
        reverse = reversal_index(lengths, x.shape[1]) if self.bidirectional else None
        for i, directions in enumerate(self.layers):
            if i:
                x = self.dropout(x)
            outputs = [self.run(directions[0], x, lengths)]
            if reverse is not None:
                flipped = self.run(directions[1], gather_time(x, reverse), lengths)
                outputs.append(gather_time(flipped, reverse))
            x = torch.cat(outputs, -1)
        return self.head(self.dropout(self.pool(x, lengths)))

    def run(self, layer: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Packed: steps stop at each review's end. Padded: faster on CPU (oneDNN), and still exact
        at every real position, because a forward-only layer reads the end padding last."""
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu") and not cpu_supports_bf16():
            # oneDNN has no bf16 recurrent kernel for a CPU without a bf16 unit ("could not create a
            # primitive descriptor for the LSTM"): there the layer itself runs in fp32
            with torch.autocast("cpu", enabled=False):
                return self.run(layer, x.float(), lengths)
        if not self.packed:
            return layer(x)[0]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(layer(packed)[0], batch_first=True, total_length=x.shape[1])[0]

    def pool(self, out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Over real positions only; "last" is the forward state at the last token and the reverse
        state at the first (where the reverse pass ends)."""
        mask = torch.arange(out.shape[1], device=out.device) < lengths[:, None]
        if self.pooling == "mean":
            return (out * mask[..., None]).sum(1) / lengths[:, None].to(out.dtype)
        if self.pooling == "max":
            return out.masked_fill(~mask[..., None], float("-inf")).amax(1)
        last = out[torch.arange(len(out), device=out.device), lengths - 1]
        if not self.bidirectional:
            return last
        half = out.shape[-1] // 2
        return torch.cat([last[:, :half], out[:, 0, half:]], -1)


def reversal_index(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """Per row, the time index that reverses the first ``length`` steps and leaves padding in place."""
    t = torch.arange(steps, device=lengths.device)
    return torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)


def gather_time(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))


class RNNClassifier(ClassificationModule):
    def __init__(
        self,
        cell: str = "lstm",
        vocab_size: int = 20000,
        embedding_dim: int = 128,
        hidden_sizes: Sequence[int] = (128,),
        bidirectional: bool = False,
        dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        pooling: str = "last",
        packed: bool = True,
        embedding_path: str | None = None,
        freeze_embedding: bool = False,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.net = RecurrentNet(
            vocab_size + SPECIAL_TOKENS,
            embedding_dim,
            cell,
            list(hidden_sizes),
            bidirectional,
            dropout,
            embedding_dropout,
            pooling,
            packed,
            self.num_outputs,
        )
        self.net.embedding.weight.requires_grad_(not freeze_embedding)
        self.pretrained_loaded = False

    def unpack(self, batch: Any) -> tuple[Any, torch.Tensor]:
        tokens, lengths, labels = batch
        return (tokens, lengths), labels

    def setup(self, stage: str) -> None:
        """Check the data's vocabulary fits the embedding; load pretrained vectors once (a checkpoint
        restored afterwards overrides them, so resume and eval see the trained weights)."""
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if datamodule is not None and not hasattr(datamodule, "vocab"):  # images: fail before any step
            raise ConfigError(
                f"model={self.hparams.cell} reads token sequences, not {type(datamodule).__name__} data; "
                "use data=imdb, or an image model such as model=cnn"
            )
        vocab = getattr(datamodule, "vocab", None)
        if vocab is None:
            return
        rows = self.net.embedding.num_embeddings
        if len(vocab) > rows:
            raise ConfigError(
                f"the data vocabulary has {len(vocab)} tokens but the embedding only {rows}; "
                f"set model.vocab_size >= data.max_size ({len(vocab) - SPECIAL_TOKENS})"
            )
        if self.hparams.embedding_path and not self.pretrained_loaded and stage == "fit":
            self.load_pretrained(Path(self.hparams.embedding_path), vocab.itos)

    def load_pretrained(self, path: Path, itos: list[str]) -> None:
        vectors, found = load_word_vectors(path, itos, self.net.embedding.embedding_dim)
        with torch.no_grad():
            self.net.embedding.weight[: len(itos)][found] = vectors[found]
        self.embedding_coverage = float(found[SPECIAL_TOKENS:].float().mean())
        self.pretrained_loaded = True
        rank_zero_info(
            f"pretrained vectors {path}: {100 * self.embedding_coverage:.1f} % of the "
            f"{len(itos) - SPECIAL_TOKENS} vocabulary words covered"
        )

    def on_train_start(self) -> None:
        super().on_train_start()
        if self.pretrained_loaded:
            self.log("embedding/coverage", self.embedding_coverage)
