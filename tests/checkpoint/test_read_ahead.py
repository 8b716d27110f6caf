"""Reading a source ahead on worker threads gives what reading it directly gives, in any order."""

import torch

from exporter.checkpoint.tensors import RandomTensors, ReadAhead

SHAPES = {f"layers.{i}.weight": (16, 8) for i in range(6)} | {"norm.weight": (8,)}


class CountingSource(RandomTensors):
    def __init__(self):
        super().__init__(SHAPES, seed=3)
        self.reads = []

    def read(self, name, dtype=torch.float32):
        self.reads.append(name)
        return super().read(name, dtype)


def test_read_ahead_gives_the_sources_tensors_in_order_out_of_order_and_in_any_dtype():
    direct = RandomTensors(SHAPES, seed=3)
    order = [name for name in SHAPES if name.startswith("layers.")]
    ahead = ReadAhead(CountingSource(), order, depth=2)
    for name in order + ["layers.3.weight", "norm.weight", "layers.0.weight"] + order:
        assert torch.equal(ahead.read(name), direct.read(name)), name
    for name in order:
        assert torch.equal(ahead.read(name, torch.float16), direct.read(name, torch.float16)), name
    assert ahead.expected == SHAPES and ahead.names() == list(SHAPES)


def test_read_ahead_reads_the_next_ones_before_they_are_asked_for():
    source = CountingSource()
    ahead = ReadAhead(source, list(SHAPES)[:6], depth=2)
    ahead.read("layers.0.weight")
    ahead._pending[("layers.2.weight", torch.float32)].result()  # the worker has read it ahead
    assert {"layers.1.weight", "layers.2.weight"} <= set(source.reads)
    ahead.read("layers.1.weight")
    ahead.read("layers.2.weight")
    assert source.reads.count("layers.1.weight") == 1 and source.reads.count("layers.2.weight") == 1
