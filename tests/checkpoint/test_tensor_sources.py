"""The checkpoint readers are declared TensorSources (exporter.verify.reference.PackageTensors is the third)."""

import torch

from exporter.checkpoint.tensors import RandomTensors, SafetensorsTensors, TensorSource
from exporter.model.load import expected_shapes


def test_checkpoint_and_seeded_readers_are_tensor_sources(checkpoint_dir, config):
    expected = expected_shapes(config)
    for source in (SafetensorsTensors(checkpoint_dir, expected), RandomTensors(expected, seed=0)):
        assert isinstance(source, TensorSource)
        assert source.names() == list(expected)
        name = "transformer.layers.0.attn.qkv_proj.weight"
        assert tuple(source.read(name, torch.float16).shape) == expected[name]

