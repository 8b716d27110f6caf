"""Programs holding one weight matrix (prefill, decode, verify) get it compressed once, and hold the one result."""

import contextlib

import numpy as np
import pytest

from quant.coreml import Compression, shared_result
from quant.recipes import get_recipe


def test_shared_result_is_computed_once_per_memory_and_settings():
    data = np.arange(32, dtype=np.float16).reshape(4, 8)
    calls = []

    def compute():
        calls.append(1)
        return len(calls)

    shared = {}
    # fill hands each program a view of its own (a reshape): a different object, the same memory
    assert shared_result(shared, data.reshape(4, 8), compute, 4) == shared_result(shared, data.reshape(4, 8), compute, 4)
    assert len(calls) == 1
    shared_result(shared, data.copy(), compute, 4)  # other memory
    shared_result(shared, data.reshape(4, 8), compute, 2)  # other settings
    shared_result(shared, data.reshape(32), compute, 4)  # other shape
    assert len(calls) == 4


def program_holding(weight):
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, weight.shape[1]), dtype=types.fp16)],
                opset_version=ct.target.iOS18)
    def program(x):
        return mb.linear(x=x, weight=mb.const(val=weight.reshape(weight.shape), name="w"), name="y")

    return program


def compressed_data(program, op_type: str, input_name: str):
    op = next(op for op in program.functions["main"].operations if op.op_type == op_type)
    return getattr(op, input_name).val


@pytest.mark.parametrize("recipe, op_type, input_name", [
    ("lut4", "constexpr_lut_to_dense", "indices"),
    ("int4", "constexpr_blockwise_shift_scale", "data"),
])
def test_programs_holding_one_matrix_share_its_compressed_data(recipe, op_type, input_name, monkeypatch):
    import quant.coreml
    import quant.kmeans

    weight = np.random.default_rng(0).standard_normal((32, 64)).astype(np.float16)
    runs = []
    palettize = quant.kmeans.palettize_blockwise
    monkeypatch.setattr(quant.kmeans, "palettize_blockwise", lambda *a: runs.append(1) or palettize(*a))
    programs = [program_holding(weight) for _ in range(3)]
    Compression(get_recipe(recipe)).apply_to_programs(programs)

    held = [compressed_data(p, op_type, input_name) for p in programs]
    assert all(h is held[0] for h in held)
    assert runs == ([1] if recipe == "lut4" else [])
    alone = program_holding(weight.copy())
    monkeypatch.setattr(quant.coreml, "indices_kept", contextlib.nullcontext)  # coremltools' own (copying) op
    Compression(get_recipe(recipe)).apply_to_programs([alone])
    expected = compressed_data(alone, op_type, input_name)
    assert held[0].dtype == expected.dtype and held[0].dtype.metadata == expected.dtype.metadata
    np.testing.assert_array_equal(held[0], expected)
