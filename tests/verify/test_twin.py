"""The twin that stands in for a Core AI model too big for Apple's Linux runtime: its layers, names and recipes."""

from exporter.verify.twin import TwinCompression, TwinTensors, twin_config, twin_layers
from tests.helpers import small_config


class FakeTensors:
    def __init__(self, names):
        self.expected = {name: (2, 2) for name in names}
        self.read_names = []

    def read(self, name, *dtype):
        self.read_names.append(name)
        return name


def test_the_twin_keeps_the_first_and_last_layer_at_their_widths():
    config = small_config(num_layers=4)
    layers = twin_layers(config)
    twin = twin_config(config, layers)
    assert layers == [0, 3] and twin.num_transformer_layers == 2
    assert twin.num_query_heads == [config.num_query_heads[0], config.num_query_heads[3]]
    assert twin.ffn_dims == [config.ffn_dims[0], config.ffn_dims[3]] and twin.model_dim == config.model_dim


def test_twin_layers_read_their_source_layers():
    tensors = FakeTensors(["transformer.token_embeddings.weight", "transformer.norm.weight",
                           *(f"transformer.layers.{i}.attn.qkv_proj.weight" for i in range(12))])
    twin = TwinTensors(tensors, [0, 11])
    assert sorted(twin.names()) == ["transformer.layers.0.attn.qkv_proj.weight",
                                    "transformer.layers.1.attn.qkv_proj.weight", "transformer.norm.weight",
                                    "transformer.token_embeddings.weight"]
    twin.read("transformer.layers.1.attn.qkv_proj.weight")
    twin.read("transformer.token_embeddings.weight")
    assert tensors.read_names == ["transformer.layers.11.attn.qkv_proj.weight", "transformer.token_embeddings.weight"]


class FakeCompression:
    """Assigns by source name, as quant.Compression does with --quant-map layers.11=int8."""

    compresses, label = True, "int4"

    def apply_to_coreai(self, program, weight_name):
        return {weight_name(op): "int8" if weight_name(op).startswith("layers_11_") else "int4" for op in program}

    def theoretical_weight_bytes(self, shapes):
        return sum(8 if name.startswith("layers_11_") else 4 for name in shapes)


def test_twin_weights_get_the_recipe_of_their_source_layer():
    twin = TwinCompression(FakeCompression(), [0, 11])
    ops = ["layers_1_attn_qkv_proj_weight", "layers_0_ffn_proj_1_weight", "vocab_pieces_0"]
    assert twin.apply_to_coreai(ops, lambda op: op) == {
        "layers_1_attn_qkv_proj_weight": "int8", "layers_0_ffn_proj_1_weight": "int4", "vocab_pieces_0": "int4"}
    assert twin.theoretical_weight_bytes({"layers_1_x": (1, 1), "layers_0_x": (1, 1)}) == 12
