"""The executor's shortcuts give what the plain way gives: fast float16 conversions, slice_update in place,
programs loaded with each blob read once, the de-quantized reference's float32 expansion."""

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import types  # noqa: E402

from exporter.coreml.package import load_program  # noqa: E402
from exporter.verify.executor import ProgramExecutor  # noqa: E402
from exporter.verify.kernels import OPS  # noqa: E402
from exporter.verify.kernels.operands import as_dtype  # noqa: E402
from exporter.verify.programs import read_program  # noqa: E402
from exporter.verify.reference import value_of  # noqa: E402
from tests.verify.test_executor_ops import build_program, rand  # noqa: E402

RNG = np.random.default_rng(7)
IOS18 = ct.target.iOS18


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return a.dtype.kind not in "fc" and np.array_equal(a, b) or np.array_equal(a.view(f"u{a.itemsize}"),
                                                                               b.view(f"u{b.itemsize}"))


def test_float16_conversions_give_numpys_bits():
    every_float16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    widened = as_dtype(every_float16, np.float32)
    nan = np.isnan(every_float16)
    assert same_bits(widened[~nan], every_float16[~nan].astype(np.float32)) and np.isnan(widened[nan]).all()
    special = np.array([0.0, -0.0, 65504, 65519.99, 65520, 1e-8, 2.0**-24, 2.0**-25, 3 * 2.0**-26, np.inf, -np.inf],
                       np.float32)
    floats = np.concatenate([RNG.integers(0, 1 << 32, size=1 << 20, dtype=np.uint64).astype(np.uint32)
                             .view(np.float32), special])
    floats = floats[~np.isnan(floats)]
    with np.errstate(over="ignore"):
        assert same_bits(as_dtype(floats, np.float16), floats.astype(np.float16))
    fortran = np.asfortranarray(rand(300, 200)).astype(np.float16)
    fortran.flags.writeable = False  # read-only weights convert too
    widened = as_dtype(fortran, np.float32)
    assert widened.flags.f_contiguous and same_bits(widened, fortran.astype(np.float32))


def kv_update(x, cache):
    """The KV-cache pattern: write x at row 1 of the state, read the updated state back."""
    old = mb.read_state(input=cache)
    new = mb.slice_update(x=old, update=x, begin=[1, 0], end=[2, 4])
    updated = mb.coreml_update_state(state=cache, value=new)
    return mb.mul(x=updated, y=np.float16(2))


def old_value_read_after_update(x, cache):
    old = mb.read_state(input=cache)
    view = mb.reshape(x=old, shape=[12])  # a view of the old contents, read after the update
    updated = mb.coreml_update_state(state=cache, value=mb.slice_update(x=old, update=x, begin=[1, 0], end=[2, 4]))
    return mb.add(x=mb.reshape(x=updated, shape=[12]), y=view)


def state_read_again_before_replaced(x, cache):
    old = mb.read_state(input=cache)
    new = mb.slice_update(x=old, update=x, begin=[1, 0], end=[2, 4])
    again = mb.read_state(input=cache)  # still the old contents: the state is replaced only below
    updated = mb.coreml_update_state(state=cache, value=new)
    return mb.add(x=updated, y=again)


@pytest.mark.parametrize("build, in_place", [(kv_update, 1), (old_value_read_after_update, 0),
                                             (state_read_again_before_replaced, 0)])
def test_slice_update_writes_in_place_only_where_no_one_sees_the_old_contents(build, in_place):
    x = {"x": rand(1, 4).astype(np.float16)}
    program = build_program(build, x, states={"cache": ((3, 4), types.fp16)})
    executor, copying = ProgramExecutor.from_program(program), ProgramExecutor.from_program(program)
    assert executor.stats.updates_in_place == in_place
    for step in copying._plans["main"].steps:
        step.kernel = OPS.get(step.op.op_type, step.kernel)  # the copying slice_update everywhere
    states = executor.new_state(), copying.new_state()
    for call in range(3):
        x = {"x": rand(1, 4).astype(np.float16)}
        got, want = executor.run("main", x, states[0]), copying.run("main", x, states[1])
        assert all(same_bits(got[name], want[name]) for name in want), call
        assert same_bits(states[0]["cache"], states[1]["cache"])


@pytest.fixture(scope="module")
def int4_packages(tmp_path_factory):
    """Saved packages with signed and unsigned int4 per-block weights in two functions' worth of ops."""
    import coremltools.optimize.coreml as cto

    weights = (rand(96, 64) * 0.2, rand(32, 96) * 0.2)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 64))], opset_version=IOS18)
    def program(x):
        return mb.linear(x=mb.relu(x=mb.linear(x=x, weight=weights[0])), weight=weights[1])

    dense = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=IOS18, skip_model_load=True)
    folder, paths = tmp_path_factory.mktemp("int4"), []
    for dtype, mode in (("int4", "linear_symmetric"), ("uint4", "linear")):
        config = cto.OpLinearQuantizerConfig(mode=mode, dtype=dtype, granularity="per_block", block_size=32)
        paths.append(folder / f"{dtype}.mlpackage")
        cto.linear_quantize_weights(dense, cto.OptimizationConfig(config)).save(str(paths[-1]))
    return paths


def test_programs_read_with_numpy_and_once_hold_coremltools_values(int4_packages):
    for package in int4_packages:
        ours, theirs = read_program(package), load_program(package)
        pairs = list(zip(*([op for op in program.functions["main"].operations if op.op_type == "const"]
                           for program in (ours, theirs))))
        assert pairs and any(np.asarray(a.outputs[0].val).dtype.itemsize == 1 for a, _ in pairs)
        for a, b in pairs:
            assert same_bits(np.asarray(a.outputs[0].val), np.asarray(b.outputs[0].val)), a.name


def test_dequantized_weights_by_float32_arithmetic_equal_coremltools_float16(int4_packages):
    def expand(**inputs):
        program = build_program(lambda: mb.constexpr_blockwise_shift_scale(**inputs), {})
        return [op for op in program.functions["main"].operations if op.op_type.startswith("constexpr_")][-1]

    scale = rand(8, 4, low=-0.1, high=0.1).astype(np.float16)
    cases = [expand(data=RNG.integers(-8, 8, size=(8, 128)).astype(types.np_int4_dtype), scale=scale),
             expand(data=RNG.integers(0, 16, size=(8, 128)).astype(types.np_uint4_dtype), scale=scale,
                    offset=RNG.integers(0, 16, size=(8, 4)).astype(types.np_uint4_dtype)),
             expand(data=RNG.integers(-128, 128, size=(8, 128)).astype(np.int8), scale=scale * 1000)]
    saved = [op for package in int4_packages for op in read_program(package).functions["main"].operations
             if op.op_type == "constexpr_blockwise_shift_scale"]
    for op in cases + saved:
        assert same_bits(value_of(op), np.asarray(op.materialized_val_inference())), op.name
