"""quant.blockwise gives coremltools' own symmetric linear quantization, bit for bit."""

import numpy as np
import pytest

from quant.blockwise import compress


def coremltools_result(weight, nbits, block_sizes):
    from coremltools.converters.mil.mil import types
    from coremltools.optimize._utils import compute_qparams_by_dtype

    return compute_qparams_by_dtype(weight, types.get_nbits_int_builtin_type(nbits, True), "LINEAR_SYMMETRIC",
                                    block_sizes)


def awkward_weights(shape, seed):
    """Random float16 weights with the cases that decide rounding: all-zero rows (0/0), values past half
    of float16's range (the scale's span overflows), subnormals, exact multiples of a scale and ties."""
    rng = np.random.default_rng(seed)
    weight = (rng.standard_normal(shape) * 0.02).astype(np.float16)
    weight[0] = 0
    weight[1, : shape[1] // 2] = 40000
    weight[2] = -3e-6
    weight[3] = np.arange(shape[1]) % 15 - 7  # integers: quotients land exactly on .5 steps after scaling
    weight[4] = (np.arange(shape[1]) % 29) * np.float16(0.0137)
    return weight


@pytest.mark.parametrize("nbits", [4, 8])
@pytest.mark.parametrize("shape,block_sizes", [
    ((512, 256), [1, 32]),  # int4 per block of 32 (our int4)
    ((5000, 96), [1, 32]),  # more rows than one step
    ((300, 64), [1, 0]),  # per output channel (our int8)
    ((256, 64), [0, 32]),  # blocks spanning every row: one step
    ((64, 96), [16, 32]),
    ((512, 256, 1, 1), [1, 32, 0, 0]),  # a 1x1 conv weight (the ane target), as coremltools blocks it
    ((300, 64, 1, 1), [1, 0, 0, 0]),
])
def test_identical_to_coremltools(nbits, shape, block_sizes):
    from coremltools.converters.mil.mil import types

    for seed in range(3):
        weight = awkward_weights(shape[:2], seed).reshape(shape)
        with np.errstate(all="ignore"):
            data, scale, offset = coremltools_result(weight, nbits, block_sizes)
        ours = compress(weight, types.get_nbits_int_builtin_type(nbits, True), "LINEAR_SYMMETRIC", block_sizes)
        assert ours.data.dtype == data.dtype and ours.scale.dtype == scale.dtype == np.float16
        np.testing.assert_array_equal(ours.data, data)
        np.testing.assert_array_equal(ours.scale, scale)
        assert ours.offset is None and offset is None and int(ours.nbits) == nbits


def test_leaves_to_coremltools_what_it_does_not_cover():
    from coremltools.converters.mil.mil import types

    weight = awkward_weights((64, 96), 0)
    assert compress(weight, types.get_nbits_int_builtin_type(4, True), "LINEAR_SYMMETRIC", [1, 7]) is None
    assert compress(weight, types.get_nbits_int_builtin_type(4, True), "LINEAR", [1, 32]) is None
    assert compress(weight, types.get_nbits_int_builtin_type(4, False), "LINEAR_SYMMETRIC", [1, 32]) is None
    assert compress(weight.astype(np.float32), "int4", "LINEAR_SYMMETRIC", [1, 32]) is None
