"""Split a model into several packages of at most --max-chunk-bytes of weights, run one after another.

iOS apps load large Core ML models slowly or not at all (a 3B int4 model is ~1.6 GB), so a big
export becomes chunks of consecutive layers. The first chunk embeds the token ids, each chunk
passes its float16 hidden states to the next, the last one projects to logits; each has its own
KV-cache states. The tied embedding is stored in the first and the last chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from exporter.errors import UsageError
from exporter.graph.vocab import vocab_split
from exporter.model.config import OpenELMConfig
from exporter.model.load import expected_shapes
from exporter.model.names import program_name

DEFAULT_MAX_CHUNK_BYTES = 1_000_000_000  # about 1 GB per package, what iPhones load reliably
UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


@dataclass(frozen=True)
class Chunk:
    """Layers [start, stop) of the model in one package; the first chunk embeds, the last projects to logits."""

    start: int
    stop: int
    num_layers: int

    @property
    def takes_ids(self) -> bool:
        return self.start == 0

    @property
    def gives_logits(self) -> bool:
        return self.stop == self.num_layers

    @classmethod
    def whole(cls, num_layers: int) -> "Chunk":
        return cls(0, num_layers, num_layers)


class SizedRecipe(Protocol):
    """What chunk planning needs of a compression recipe (quant.Compression is one)."""

    def theoretical_weight_bytes(self, weight_shapes: dict[str, tuple[int, int]]) -> int: ...


def parse_bytes(text: str) -> int | None:
    """'1GB', '800MB', '1.5GiB', '123456' → bytes; 'none' or '0' → None (never split)."""
    value = str(text).strip().lower().replace(" ", "")
    if value in ("none", "0", "off"):
        return None
    number = value.rstrip("kmgib")
    unit = value[len(number):]
    try:
        amount = float(number)
    except ValueError:
        amount = -1
    if unit not in UNITS or amount <= 0:
        raise UsageError(f"--max-chunk-bytes {text!r} is not a size; use e.g. 1GB, 800MB or none")
    return int(amount * UNITS[unit])


def layer_weight_bytes(config: OpenELMConfig, compression: SizedRecipe) -> tuple[list[int], int]:
    """Theoretical weight bytes of each layer's matrices, and of the vocabulary pieces, after compression."""
    shapes = expected_shapes(config)
    per_layer = []
    for layer in range(config.num_transformer_layers):
        prefix = f"transformer.layers.{layer}."
        matrices = {program_name(n): s for n, s in shapes.items() if n.startswith(prefix) and len(s) == 2}
        per_layer.append(compression.theoretical_weight_bytes(matrices))
    pieces, piece_size = vocab_split(config.vocab_size)
    vocab = compression.theoretical_weight_bytes({f"vocab_pieces_{i}": (piece_size, config.model_dim)
                                                  for i in range(pieces)})
    return per_layer, vocab


def plan_chunks(config: OpenELMConfig, compression: SizedRecipe, max_bytes: int | None) -> list[Chunk]:
    """The fewest chunks of consecutive layers under `max_bytes` each (vocabulary included where stored),
    as even as possible: the smallest per-chunk limit that still needs no more chunks."""
    layers = config.num_transformer_layers
    per_layer, vocab = layer_weight_bytes(config, compression)
    if max_bytes is None or sum(per_layer) + vocab <= max_bytes:
        return [Chunk.whole(layers)]
    fewest = len(greedy_chunks(per_layer, vocab, max_bytes))
    low, high = max(per_layer), max_bytes
    while low < high:  # binary search on the limit; greedy packing is monotone in it
        middle = (low + high) // 2
        try:
            fits = len(greedy_chunks(per_layer, vocab, middle)) <= fewest
        except UsageError:
            fits = False
        low, high = (low, middle) if fits else (middle + 1, high)
    return greedy_chunks(per_layer, vocab, high)


def greedy_chunks(per_layer: list[int], vocab: int, max_bytes: int) -> list[Chunk]:
    layers = len(per_layer)
    chunks, start, size = [], 0, vocab  # the first chunk holds the embedding
    for layer, layer_bytes in enumerate(per_layer):
        tail = vocab if layer == layers - 1 else 0  # the last chunk holds the output projection
        if layer > start and size + layer_bytes + tail > max_bytes:
            chunks.append(Chunk(start, layer, layers))
            start, size = layer, 0
        size += layer_bytes
        if size + tail > max_bytes and layer == start:
            raise UsageError(f"--max-chunk-bytes {max_bytes} is smaller than layer {layer} "
                             f"({size + tail} bytes with its share of the vocabulary); raise it")
    chunks.append(Chunk(start, layers, layers))
    return chunks

