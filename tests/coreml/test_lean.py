"""The lean conversion (exporter.lean_convert) gives coremltools' own program, op by op and value by value."""

from contextlib import nullcontext

import numpy as np
import pytest
import torch

import exporter.coreml.convert as convert_stage
from exporter.checkpoint.tensors import RandomTensors
from exporter.coreml.lean import lean_conversion
from exporter.graph.stateful import StatefulOpenELM
from exporter.graph.weights import WeightPlan
from exporter.model.load import expected_shapes, random_model
from exporter.model.streamed import placeholder, skeleton_model
from tests.helpers import small_config


class Mixed(torch.nn.Module):
    """Constants as the float16 pass meets them: inside float16's range, past it, infinite (a mask), too
    small for float16 (underflow, fewer than 400 values), and a placeholder matrix (one broadcast number)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("small", torch.full((4, 8), 0.5))
        self.register_buffer("large", torch.full((4, 8), 7e4))
        self.register_buffer("tiny", torch.full((4, 8), 1e-9))
        mask = torch.zeros(4, 8)
        mask[:, 4:] = float("-inf")
        self.register_buffer("mask", mask)
        self.weight = placeholder((8, 8), 3)

    def forward(self, x):
        y = (x * self.small + 1) * self.large + self.mask + torch.nn.functional.linear(x, torch.ones(8, 8) * 3)
        return y + x * self.tiny + torch.nn.functional.linear(x, self.weight)


def ops_of(program) -> list[tuple]:
    """(type, name, dtype, shape, value) of every op, in order: what two equal programs share."""
    from coremltools.converters.mil.mil import types

    rows = []
    for op in program.functions["main"].operations:
        out = op.outputs[0]
        value = out.val if op.op_type == "const" else None
        rows.append((op.op_type, op.name, types.builtin_to_string(out.dtype), tuple(out.shape or ()),
                     None if value is None else np.asarray(value)))
    return rows


def assert_same_program(lean, full):
    assert [row[:4] for row in lean] == [row[:4] for row in full]
    for a, b in zip(lean, full):
        if a[4] is not None:
            np.testing.assert_array_equal(a[4], b[4], err_msg=a[1])


def convert_mixed(lean: bool):
    import coremltools as ct

    traced = torch.jit.trace(Mixed().eval(), torch.zeros(4, 8))
    options = dict(inputs=[ct.TensorType(name="x", shape=(4, 8), dtype=np.float32)], convert_to="milinternal",
                   compute_precision=ct.precision.FLOAT16, minimum_deployment_target=ct.target.iOS18)
    with lean_conversion(defer_validation=True) if lean else nullcontext():
        return ct.convert(traced, **options)


def test_same_program_as_coremltools_on_every_kind_of_constant():
    from coremltools.converters.mil.mil import Program
    from coremltools.converters.mil.mil.ops.defs.iOS15.elementwise_unary import cast
    from coremltools.converters.mil.mil.passes.defs.quantization import FP16ComputePrecision

    originals = (FP16ComputePrecision.__dict__["fp16_overflow"], FP16ComputePrecision._check_underflow_to_zero,
                 cast.__dict__["get_cast_value"], Program.validate)
    lean_program, full_program = convert_mixed(True), convert_mixed(False)
    lean, full = ops_of(lean_program), ops_of(full_program)
    assert_same_program(lean, full)
    dtypes = {row[2] for row in full}
    assert {"fp32", "fp16"} <= dtypes  # the 7e4 constant kept its op in float32; the rest went to float16
    assert any(row[4] is not None and row[4].size == 32 and np.all(row[4] == np.float16(6e-8)) for row in full)
    placeholders = [row[4] for row in lean if row[4] is not None and row[4].shape == (8, 8) and row[2] == "fp16"
                    and not any(row[4].strides)]
    assert len(placeholders) == 1  # still one broadcast number after the float16 pass: no memory
    assert originals == (FP16ComputePrecision.__dict__["fp16_overflow"],
                         FP16ComputePrecision._check_underflow_to_zero, cast.__dict__["get_cast_value"],
                         Program.validate)  # restored after the block


@pytest.mark.parametrize("tokens", [1, 4])
@pytest.mark.parametrize("skeleton", [False, True], ids=["real weights", "placeholders"])
def test_export_module_converts_to_the_same_program(monkeypatch, skeleton, tokens):
    import coremltools as ct

    config = small_config(num_layers=2)
    plan = WeightPlan() if skeleton else None
    model = (skeleton_model(config, RandomTensors(expected_shapes(config), 1), plan.matrix_placeholder) if skeleton
             else random_model(config, seed=1))
    lean = ops_of(convert_stage.convert_module(StatefulOpenELM(model, 32, tokens, weight_plan=plan), to_program=True))
    default = nullcontext(ct.PassPipeline.DEFAULT)  # coremltools' own conversion, every pass included
    monkeypatch.setattr(convert_stage, "lean_conversion", lambda defer_validation=False: default)
    full = ops_of(convert_stage.convert_module(StatefulOpenELM(model, 32, tokens, weight_plan=plan), to_program=True))
    assert_same_program(lean, full)
    broadcast = [row for row in lean if row[4] is not None and row[4].ndim == 2 and not any(row[4].strides)]
    assert len(broadcast) == (2 * 4 + 1 if skeleton else 0)  # every placeholder matrix stays one number


def test_deferred_validation_still_catches_a_broken_program(monkeypatch):
    """The lean conversion validates once at the end: a program broken by a pass is still refused."""
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY

    noop = PASS_REGISTRY["common::topological_reorder"]
    original_apply = type(noop).apply

    def break_it(self, program):
        original_apply(self, program)
        function = program.functions["main"]
        op = next(op for op in function.operations if op.op_type == "linear")
        op.outputs[0]._child_ops.append(op)  # a use the op does not have

    monkeypatch.setattr(type(noop), "apply", break_it)
    config = small_config(num_layers=1)
    with pytest.raises(Exception, match="should be consumed"):
        convert_stage.convert_module(StatefulOpenELM(random_model(config, seed=1), 32, 1), to_program=True)


def test_a_later_chunk_converts_to_the_same_program(monkeypatch):
    """The chunk after the first takes float16 hidden states: the other input of the graph."""
    import coremltools as ct

    from exporter.graph.chunks import Chunk

    config = small_config(num_layers=2)
    plan = WeightPlan()
    model = skeleton_model(config, RandomTensors(expected_shapes(config), 1), plan.matrix_placeholder)
    chunk = Chunk(1, 2, 2)
    lean = ops_of(convert_stage.convert_module(StatefulOpenELM(model, 32, 4, chunk=chunk, weight_plan=plan),
                                               to_program=True))
    default = nullcontext(ct.PassPipeline.DEFAULT)
    monkeypatch.setattr(convert_stage, "lean_conversion", lambda defer_validation=False: default)
    full = ops_of(convert_stage.convert_module(StatefulOpenELM(model, 32, 4, chunk=chunk, weight_plan=plan),
                                               to_program=True))
    assert_same_program(lean, full)


def test_identity_aware_allclose_gives_numpys_answers():
    """const_deduplication's allclose, answered without float copies for integer arrays: same answers."""
    from exporter.coreml.lean import NumpyKnowingIdentity

    rng = np.random.default_rng(0)
    data = rng.integers(0, 16, (64, 48)).astype(np.uint8)
    changed = data.copy()
    changed[5, 7] ^= 1
    floats = rng.standard_normal((8, 8)).astype(np.float16)
    cases = [(data, data), (data, data.copy()), (data, changed), (data.astype(np.int8), data.astype(np.int8).copy()),
             (data[:1], data), (floats, floats.copy()), (floats, floats + np.float16(1e-3))]
    for a, b in cases:
        for atol in (0.0, 1e-12, 6e-8, 2.0):
            assert NumpyKnowingIdentity.allclose(a, b, rtol=0.0, atol=atol) == np.allclose(a, b, rtol=0.0, atol=atol)
