"""Streamed weights: the skeleton export (placeholders filled after conversion) carries exactly the
checkpoint's weights, the streamed preflight measures what the whole model measures, and per-tensor
random weights equal the whole dict."""

import numpy as np
import pytest
import torch

from exporter.checkpoint.tensors import RandomTensors, SafetensorsTensors
from exporter.coreml.convert import convert
from exporter.coreml.fill import fill_weights
from exporter.graph.chunks import Chunk
from exporter.graph.stateful import StatefulOpenELM
from exporter.graph.weights import WeightPlan, placeholders_of
from exporter.model.load import expected_shapes, load_checkpoint, random_state_dict
from exporter.model.preflight import measure
from exporter.model.streamed import materialized, skeleton_model
from quant.program import weight_matrix_names
from tests.helpers import small_config


def weights_by_name(program) -> dict[str, np.ndarray]:
    function = program.functions["main"]
    return {name: next(op for op in function.operations if op.name == name).outputs[0].val
            for name in weight_matrix_names(program)}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from exporter.model.load import save_checkpoint

    # 600 rows of vocabulary: two pieces would need > 16384, so force the padding path with a small split.
    config = small_config(num_layers=3, vocab_size=600)
    folder = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(folder, config, random_state_dict(config, seed=5))
    return config, folder


def test_filled_program_holds_the_checkpoint_weights(setup):
    config, folder = setup
    reader = SafetensorsTensors(folder, expected_shapes(config))
    plan = WeightPlan()
    skeleton = skeleton_model(config, reader, plan.matrix_placeholder)
    module = StatefulOpenELM(skeleton, 64, 1, weight_plan=plan)
    program = convert(skeleton, 64, 1, to_program=True, weight_plan=plan)
    fill_weights([program], plan, reader, [placeholders_of(module)])
    streamed = weights_by_name(program)

    real = weights_by_name(convert(load_checkpoint(folder), 64, 1, to_program=True))
    assert len(streamed) == 3 * 4 + 1  # four matrices per layer and the vocabulary piece
    assert set(streamed) == {name.removesuffix("_to_fp16") for name in real}
    for name, value in real.items():
        np.testing.assert_array_equal(streamed[name.removesuffix("_to_fp16")], value, err_msg=name)


def test_fill_refuses_a_program_missing_a_matrix(setup):
    from exporter.errors import ExportError

    config, folder = setup
    reader = SafetensorsTensors(folder, expected_shapes(config))
    plan = WeightPlan()
    skeleton = skeleton_model(config, reader, plan.matrix_placeholder)
    program = convert(skeleton, 64, 1, to_program=True, chunk=Chunk(0, 1, 3), weight_plan=plan)
    everything = set(range(len(plan.matrices)))  # more than the first chunk uses
    with pytest.raises(ExportError, match="lost weight matrices"):
        fill_weights([program], plan, reader, [everything])


def test_streamed_preflight_measures_the_whole_model(setup):
    config, folder = setup
    reader = SafetensorsTensors(folder, expected_shapes(config))
    ids = list(range(1, 90))
    whole = measure(load_checkpoint(folder), ids).to_dict()
    skeleton = skeleton_model(config, reader)
    with materialized(skeleton, reader) as model:
        streamed = measure(model, ids).to_dict()
    assert streamed == whole
    assert all(p.stride() == (0, 0) for p in skeleton.parameters() if p.dim() == 2)  # placeholders again after


def test_random_tensors_are_the_same_one_at_a_time():
    config = small_config(num_layers=2)
    whole = random_state_dict(config, seed=3)
    single = RandomTensors(expected_shapes(config), seed=3)
    for name in list(whole)[::3]:
        assert torch.equal(single.read(name), whole[name])
    other = RandomTensors(expected_shapes(config), seed=4).read("transformer.layers.0.attn.qkv_proj.weight")
    assert not torch.equal(other, whole["transformer.layers.0.attn.qkv_proj.weight"])
