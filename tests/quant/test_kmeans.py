"""Exact k-means for palettization: error against coremltools' own k-means, shapes, determinism,
and the custom `lut_function` going through `palettize_weights` on a small MIL program."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from quant import kmeans, kmeans_dp
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


@pytest.mark.parametrize("nbits", [2, 4, 6])
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_never_worse_than_exact_kmeans1d(kind, nbits):
    """Above 10,000 float16 values coremltools runs kmeans1d, the exact optimum: we store no larger an error."""
    values = group(kind, (16, 768), seed=1)
    lut, indices = kmeans_1d(values, nbits)
    assert squared_error(values, lut, indices) <= coremltools_error(values, nbits) * (1 + 1e-12)


def brute_force_optimum(x: np.ndarray, counts: np.ndarray, k: int) -> float:
    """The least weighted squared error of k runs of sorted x: the plain O(k·n²) dynamic programme."""
    n = len(x)

    def cost(j, i):
        w, v = counts[j:i], x[j:i]
        return float(np.sum(w * (v - np.sum(w * v) / np.sum(w)) ** 2))

    best = [cost(0, i) if i else np.inf for i in range(n + 1)]
    for m in range(2, k + 1):
        best = [min((best[j] + cost(j, i) for j in range(m - 1, i)), default=np.inf) for i in range(n + 1)]
    return best[n]


def run_error(x, counts, bounds) -> float:
    return sum(float(np.sum(counts[a:b] * (x[a:b] - np.sum(counts[a:b] * x[a:b]) / np.sum(counts[a:b])) ** 2))
               for a, b in zip(bounds[:-1], bounds[1:]))


def prefix_sums(x, counts):
    centred = x - np.sum(counts * x) / np.sum(counts)
    return [np.concatenate([[0.0], np.cumsum(a)]) for a in (counts, counts * centred, counts * centred**2)]


def random_histogram(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.choice(rng.standard_t(2, 8 * n), n, replace=False))
    return x, rng.integers(1, 20, n).astype(np.float64)


@pytest.mark.parametrize("k", [2, 3, 5, 8, 13])
@pytest.mark.parametrize("seed", range(4))
def test_both_solvers_find_the_optimum(k, seed):
    """The layered programme (coarse-to-fine rows) and the priced pass (its certificate) both return the
    brute-force optimum, before float16 rounding."""
    x, counts = random_histogram(seed)
    optimum = brute_force_optimum(x, counts, k)
    sums = prefix_sums(x, counts)
    assert run_error(x, counts, kmeans_dp.layered_bounds(*sums, k)) == pytest.approx(optimum, rel=1e-12, abs=1e-15)
    bounds, price, passes = kmeans_dp.penalized_bounds(*sums, k, 0.0)
    if len(bounds):  # a price certified k runs
        assert len(bounds) == k + 1 and bounds[0] == 0 and bounds[-1] == len(x)
        assert run_error(x, counts, bounds) == pytest.approx(optimum, rel=1e-12, abs=1e-15)


def test_priced_pass_is_the_usual_path_and_the_fallback_still_exact():
    """On weight-like groups a price certifies k runs in a few passes. Where the least error is linear in
    the number of runs around k, no price gives exactly k runs and the layered programme answers: five
    equally spaced values in four runs (one pair: error 50, as with three runs less 50, five runs less 50)."""
    passes = []
    kmeans.palettize_groups(group("normal", (64, 1024), seed=11), 4, 16, passes)
    assert max(passes) <= 6, passes
    passes = []
    values = np.repeat(np.arange(0, 50, 10, dtype=np.float16), 5)[None, :]
    tables, indices = kmeans.palettize_groups(values, 2, 1, passes)
    assert passes == [kmeans_dp.MAX_SOLVES + 1]
    assert squared_error(values, tables[0], indices) == 5 * 50.0


def test_groups_in_parallel_equal_one_at_a_time():
    weight = group("heavy_tailed", (64, 300), seed=7)
    tables, indices = kmeans.palettize_groups(weight, 4, 16)
    for g in range(4):
        lut, group_indices = kmeans_1d(weight[16 * g:16 * (g + 1)], 4)
        assert np.array_equal(tables[g], lut) and np.array_equal(indices[16 * g:16 * (g + 1)], group_indices)


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


def test_float16_keys_sort_like_values():
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.standard_normal(5000) * 3, [0.0, -0.0, 65504, -65504, 6e-8, -6e-8]])
    values = values.astype(np.float16)
    keys = kmeans.float16_keys(values)
    assert np.array_equal(kmeans.KEY_VALUES[keys], values.astype(np.float64))
    order = np.argsort(keys, kind="stable")
    assert np.all(np.diff(values[order].astype(np.float64)) >= 0)
    assert len(np.unique(keys)) == len(np.unique(values))  # -0.0 and 0.0 share a key


def test_rounding_to_float16_matches_numpy():
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.standard_normal(20000) * 10.0 ** rng.integers(-9, 4, 20000), [0.0, 2.0**-25, 3 * 2.0**-25]])
    x = np.concatenate([x, (x.astype(np.float16).astype(np.float64) + np.nextafter(0, 1))])  # near ties too
    rounded = np.array([kmeans._round_float16(v) for v in x])
    assert np.array_equal(rounded, x.astype(np.float16).astype(np.float64))


def test_float32_weights_keep_their_dtype():
    """Wider weights are clustered on their float16 values (Core ML programs store float16); the table
    keeps the weight's dtype, as coremltools requires."""
    values = group("normal", (16, 64)).astype(np.float32) * np.float32(1.0001)
    lut, indices = kmeans_1d(values, 4)
    assert lut.dtype == np.float32 and indices.shape == values.shape
    as_float16 = kmeans_1d(values.astype(np.float16), 4)
    assert np.array_equal(lut, as_float16[0].astype(np.float32)) and np.array_equal(indices, as_float16[1])


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


def _conv_program_model(weight: np.ndarray):
    """A 1x1 conv over [1, in, 1, 1]: the ane graph's projections hold [out, in, 1, 1] weights."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, weight.shape[1], 1, 1), dtype=types.fp16)],
                opset_version=ct.target.iOS18)
    def program(x):
        return mb.conv(x=x, weight=weight, name="y")

    return ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                      skip_model_load=True)


@pytest.mark.parametrize("layout", ["linear", "conv"])
@pytest.mark.parametrize("per_channel_scale", [False, True])
def test_whole_matrix_palettizer_equals_coremltools_group_loop(layout, per_channel_scale):
    """quant.coreml clusters all groups of a matrix at once (in parallel); coremltools' own pass calls the
    lut_function group by group. Same tables and indices, byte for byte."""
    import coremltools.optimize.coreml as cto
    from coremltools.optimize.coreml._quantization_passes import palettize_weights

    from quant.coreml import Compression
    from quant.recipes import get_recipe

    weight = (np.random.default_rng(9).standard_normal((64, 96)) * 0.02).astype(np.float16)
    build = _linear_program_model if layout == "linear" else lambda w: _conv_program_model(w[:, :, None, None])
    config = cto.OpPalettizerConfig(mode="custom", lut_function=lut_function(4), granularity="per_grouped_channel",
                                    group_size=16, enable_per_channel_scale=per_channel_scale, weight_threshold=0)
    reference = build(weight)._mil_program  # coremltools' own pass, as apply_to_programs runs it
    palettize_weights(config=cto.OptimizationConfig(global_config=config))(reference)
    ours = build(weight)._mil_program
    Compression(get_recipe("lut4"), per_channel_scale=per_channel_scale, compute_target="gpu").apply_to_programs([ours])
    (expected,), (got,) = ([op for function in program.functions.values() for op in function.operations
                            if op.op_type == "constexpr_lut_to_dense"] for program in (reference, ours))
    assert got.lut.val.shape == expected.lut.val.shape and got.lut.val.dtype == expected.lut.val.dtype
    assert np.array_equal(got.lut.val, expected.lut.val)
    assert np.array_equal(got.indices.val, expected.indices.val) and got.indices.val.dtype == expected.indices.val.dtype


def test_core_ai_palettization_uses_the_exact_kmeans():
    """coreai-opt's grouped palettization with quant.kmeans in place of its k-means (kmeans1d per group, as
    coremltools'): coreai-opt's layout, and no larger an error than coremltools' default."""
    palettize_utils = pytest.importorskip("coreai_opt.coreai_utils._utils.palettize_utils")
    from coremltools.optimize.coreml._quantization_passes import palettize_weights

    from quant.coreai import exact_kmeans

    weight = (np.random.default_rng(10).standard_normal((48, 700)) * 0.02).astype(np.float16)
    layout = palettize_utils._blockwise_compress(weight, "UNIFORM", 4, [16, 0], channel_axis=0)  # no k-means
    ours = exact_kmeans(palettize_utils._blockwise_compress)(weight, "KMEANS", 4, [16, 0], channel_axis=0)
    assert ours.lut.shape == layout.lut.shape == (3, 1, 16, 1) and ours.indices.shape == layout.indices.shape
    assert ours.indices.dtype == layout.indices.dtype and ours.lut.dtype == np.float16
    default = palettize_weights.grouped_channelwise_compress(weight, "KMEANS", 4, 0, 16)

    def error(indices, lut):
        restored = np.take_along_axis(lut.reshape(3, 16).astype(np.float64),
                                      np.asarray(indices).reshape(3, -1).astype(np.intp), axis=1)
        return float(np.sum((restored - weight.reshape(3, -1)) ** 2))

    assert error(ours.indices, ours.lut) <= error(default.indices, default.lut) * (1 + 1e-12)


@pytest.mark.parametrize("block_sizes, axis", [([16, 0], 0), ([0, 16], 1), ([0, 0], None)])
def test_blockwise_layout_equals_coremltools_for_any_grouped_axis(block_sizes, axis):
    """Groups along either axis (or one table for the whole tensor), laid out as coremltools' own per-group
    loop lays out the same lut_function's answers."""
    from coremltools.optimize.coreml._quantization_passes import palettize_weights

    weight = (np.random.default_rng(12).standard_normal((48, 64)) * 0.02).astype(np.float16)
    indices, lut = kmeans.palettize_blockwise(weight, 4, block_sizes, axis)
    expected = palettize_weights.blockwise_compress(weight, "CUSTOM", None, block_sizes, lut_function(4),
                                                    channel_axis=axis)
    assert np.array_equal(lut, expected.lut) and lut.shape == expected.lut.shape
    assert np.array_equal(indices, np.asarray(expected.indices).astype(np.uint8))
