"""Histogram k-means for palettization: error against coremltools' own k-means, shapes, determinism,
and the custom `lut_function` going through `palettize_weights` on a small MIL program."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from quant import kmeans
from quant.kmeans import kmeans_1d, lut_function

# coremltools' k-means (`palettize_weights(mode="kmeans")` calls exactly this per group): it runs
# scikit-learn's KMeans (k-means++, one init) on groups below 10,000 values, and its bundled exact
# 1-D k-means (kmeans1d) on float16 groups of 10,000 values or more.
ct_kmeans = pytest.importorskip("coremltools.models.neural_network.quantization_utils")._get_kmeans_lookup_table_and_weight


def squared_error(values: np.ndarray, lut: np.ndarray, indices: np.ndarray) -> float:
    table = np.asarray(lut, dtype=np.float64).reshape(-1)
    return float(np.sum((table[np.asarray(indices).reshape(-1)] - values.astype(np.float64).reshape(-1)) ** 2))


def coremltools_error(values: np.ndarray, nbits: int) -> float:
    lut, indices = ct_kmeans(nbits, values)
    return squared_error(values, lut.astype(values.dtype), indices)  # coremltools stores the table in the weight dtype


def group(kind: str, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """float16 weight groups shaped like real ones: [output channels in the group, input channels]."""
    rng = np.random.default_rng(seed)
    if kind == "normal":
        values = rng.standard_normal(shape) * 0.02
    elif kind == "heavy_tailed":
        values = rng.standard_t(3, shape) * 0.02
    elif kind == "laplace":
        values = rng.laplace(0, 0.02, shape)
    elif kind == "outliers":  # a few large weights among small ones, as in LLM projections
        values = np.where(rng.random(shape) < 0.002, rng.standard_normal(shape), rng.standard_normal(shape) * 0.02)
    elif kind == "bimodal":
        values = rng.normal(0.03, 0.01, shape) * rng.choice([-1, 1], shape)
    elif kind == "few_unique":  # already on a coarse lattice
        values = rng.integers(-40, 41, shape) * 0.01
    elif kind == "uniform":
        values = rng.uniform(-1, 1, shape)
    else:
        raise ValueError(kind)
    return values.astype(np.float16)


DISTRIBUTIONS = ["normal", "heavy_tailed", "laplace", "outliers", "bimodal", "few_unique", "uniform"]


@pytest.mark.parametrize("nbits", [2, 4])
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_error_not_above_scikit_learn_kmeans(kind, nbits):
    values = group(kind, (16, 256))  # 4,096 values: coremltools clusters this with scikit-learn
    lut, indices = kmeans_1d(values, nbits)
    assert squared_error(values, lut, indices) <= coremltools_error(values, nbits)


@pytest.mark.parametrize(("kind", "nbits"), [("normal", 4), ("heavy_tailed", 4), ("outliers", 4), ("normal", 6)])
def test_error_close_to_exact_kmeans1d(kind, nbits):
    """Above 10,000 float16 values coremltools uses an exact 1-D k-means; we stay within 0.5%."""
    values = group(kind, (16, 768), seed=1)
    lut, indices = kmeans_1d(values, nbits)
    assert squared_error(values, lut, indices) <= coremltools_error(values, nbits) * 1.005


@pytest.mark.parametrize("nbits", [2, 4, 6])
def test_exact_optimum_with_few_distinct_values(nbits):
    """Up to DENSE_LIMIT distinct values the DP is exact: no worse than kmeans1d's optimum."""
    values = group("few_unique", (16, 768), seed=2)  # 81 distinct values, 12,288 of them
    assert len(np.unique(values)) < kmeans.DENSE_LIMIT
    lut, indices = kmeans_1d(values, nbits)
    assert squared_error(values, lut, indices) <= coremltools_error(values, nbits) * (1 + 1e-9)


@pytest.mark.parametrize("nbits", [1, 2, 3, 4, 6, 8])
def test_shapes_dtypes_and_nearest_entries(nbits):
    values = group("heavy_tailed", (16, 96), seed=nbits)
    lut, indices = kmeans_1d(values, nbits)
    assert lut.shape == (2**nbits,) and lut.dtype == np.float16
    assert indices.shape == values.shape and indices.dtype == np.uint8
    assert int(indices.max()) < 2**nbits
    assert np.all(np.diff(lut.astype(np.float64)) >= 0)
    # Every value maps to its nearest table entry (ties either way).
    distance = np.abs(values.astype(np.float64)[..., None] - lut.astype(np.float64))
    chosen = np.take_along_axis(distance, indices[..., None].astype(np.intp), axis=-1)[..., 0]
    assert np.all(chosen <= distance.min(axis=-1) + 1e-12)


def test_every_entry_used_when_there_are_enough_values():
    values = group("normal", (16, 256), seed=3)
    lut, indices = kmeans_1d(values, 4)
    assert len(np.unique(indices)) == 16 and len(np.unique(lut)) == 16


def test_constant_group():
    values = np.full((16, 64), 0.0123, dtype=np.float16)
    lut, indices = kmeans_1d(values, 4)
    assert lut.shape == (16,) and np.all(lut == values[0, 0])
    assert np.all(indices == 0)


def test_fewer_distinct_values_than_entries_is_lossless():
    values = np.array([[0.5, -0.25, 0.5], [-0.0, 0.0, 0.75]], dtype=np.float16)
    lut, indices = kmeans_1d(values, 3)
    assert np.array_equal(lut[indices], values)
    assert list(lut) == [-0.25, 0.0, 0.5, 0.75, 0.75, 0.75, 0.75, 0.75]  # padded with the last value


def test_float16_histogram_matches_numpy_unique():
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.standard_normal(5000) * 3, [0.0, -0.0, 65504, -65504, 6e-8, -6e-8]])
    values = values.astype(np.float16)
    distinct, counts, inverse = kmeans._histogram(values)
    expected, expected_inverse, expected_counts = np.unique(values, return_inverse=True, return_counts=True)
    assert np.array_equal(distinct, expected.astype(np.float64))
    assert np.array_equal(counts, expected_counts)
    assert np.array_equal(distinct[inverse], values.astype(np.float64))


def test_float32_weights_keep_their_dtype():
    values = group("normal", (16, 64)).astype(np.float32) * np.float32(1.0001)
    lut, indices = kmeans_1d(values, 4)
    assert lut.dtype == np.float32 and indices.shape == values.shape
    assert squared_error(values, lut, indices) <= coremltools_error(values, 4)


def test_deterministic_and_picklable():
    values = group("outliers", (16, 512), seed=5)
    first = kmeans_1d(values, 4)
    function = pickle.loads(pickle.dumps(lut_function(4)))
    second = function(values.copy())
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert repr(function) == "KMeansLutFunction(nbits=4)"


def test_rejects_bad_input():
    with pytest.raises(TypeError):
        kmeans_1d(np.arange(10), 4)
    with pytest.raises(ValueError, match="NaN"):
        kmeans_1d(np.array([1.0, np.nan], dtype=np.float16), 4)
    with pytest.raises(ValueError, match="nbits"):
        kmeans_1d(np.ones(4, dtype=np.float16), 9)
    with pytest.raises(ValueError, match="nbits"):
        lut_function(0)


# --- through coremltools ----------------------------------------------------------------------


def _linear_program_model(weight: np.ndarray):
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, weight.shape[1]), dtype=types.fp16)],
                opset_version=ct.target.iOS18)
    def program(x):
        return mb.linear(x=x, weight=weight, name="y")

    return ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                      skip_model_load=True)


def _ops(mlmodel):
    return [op for function in mlmodel._mil_program.functions.values() for op in function.operations]


def _decompressed_weight(mlmodel, shape) -> np.ndarray:
    import coremltools.optimize.coreml as cto

    dense = cto.decompress_weights(mlmodel)
    (weight,) = [op.val.val for op in _ops(dense) if op.op_type == "const" and np.shape(op.val.val) == shape]
    return weight.astype(np.float64)


@pytest.mark.parametrize("per_channel_scale", [False, True])
def test_custom_lut_function_through_palettize_weights(per_channel_scale):
    import coremltools.optimize.coreml as cto

    rng = np.random.default_rng(6)
    weight = (rng.standard_normal((64, 128)) * 0.02).astype(np.float16)
    model = _linear_program_model(weight)

    def palettized(**mode):
        config = cto.OpPalettizerConfig(granularity="per_grouped_channel", group_size=16, weight_threshold=0,
                                        enable_per_channel_scale=per_channel_scale, **mode)
        return cto.palettize_weights(model, cto.OptimizationConfig(global_config=config))

    ours = palettized(mode="custom", lut_function=lut_function(4))
    (lut_op,) = [op for op in _ops(ours) if op.op_type == "constexpr_lut_to_dense"]
    if not per_channel_scale:  # with the scale, coremltools folds it into a per-column table
        assert lut_op.lut.val.shape == (4, 1, 16, 1) and lut_op.lut.val.dtype == np.float16
    restored = _decompressed_weight(ours, weight.shape)
    reference = _decompressed_weight(palettized(mode="kmeans", nbits=4), weight.shape)
    ours_error = np.sum((restored - weight) ** 2)
    assert ours_error <= np.sum((reference - weight) ** 2)
    assert np.sqrt(ours_error / weight.size) < 0.1 * 0.02  # 4 bits: RMS error well under a tenth of the std
