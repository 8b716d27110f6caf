"""Applying the recipes (quant.recipes) to a Core AI program with coreai-opt.

coreai-opt 0.3.0 compresses every large constant of a program with one configuration; it has no
per-weight configuration like coremltools' `op_name_configs`. The recipes need one (mixed,
--quant-map, and never the RoPE tables or other non-weight constants), so each of its passes runs
once per recipe with its candidate test narrowed to the constants that recipe was assigned (its
private hooks, scoped to the call: `narrowed_pass`).
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from typing import Callable

import numpy as np

from exporter.errors import UsageError
from quant.recipes import INT_BLOCK_SIZE, Recipe, assign

# What coreai-opt 0.3.0 palettizes of our lutN recipes: it accepts n_bits 3 but cannot store 3-bit indices
# ("only uint2|uint4|uint6 is supported, but nbits=3 is given", from coreai-torch's packing).
LUT_BITS = (2, 4, 6, 8)


def check_recipes(recipes: set[Recipe]) -> None:
    """A one-line error for a recipe coreai-opt cannot apply, naming what it can."""
    for recipe in recipes:
        if recipe.kind == "lut" and recipe.bits not in LUT_BITS:
            raise UsageError(f"coreai-opt cannot palettize to {recipe.bits} bits; it can: "
                             + ", ".join(f"lut{b}" for b in LUT_BITS) + f" (lut{recipe.bits} exists for --format coreml)")


def compression_pass(recipe: Recipe, group_size: int, per_channel_scale: bool) -> tuple[Callable, object]:
    """(coreai-opt pass applying `recipe` in place, its module): int8 per channel, int4 per block of 32,
    lutN per group of output channels: the layouts the Core ML recipes use."""
    from coreai_opt.coreai_utils import CompressionGranularity, DType, palettize_weights, quantize_weights
    from coreai_opt.coreai_utils.passes import weight_palettization, weight_quantization

    if recipe.kind == "linear" and recipe.bits == 8:
        return (lambda p: quantize_weights(p, DType.INT8, granularity=CompressionGranularity.PER_CHANNEL,
                                           weight_num_threshold=0, in_place=True)), weight_quantization
    if recipe.kind == "linear":
        return (lambda p: quantize_weights(p, DType.INT4, granularity=CompressionGranularity.PER_BLOCK,
                                           block_size=INT_BLOCK_SIZE, weight_num_threshold=0,
                                           in_place=True)), weight_quantization
    return (lambda p: palettize_weights(p, None, n_bits=recipe.bits,
                                        granularity=CompressionGranularity.PER_GROUPED_CHANNEL,
                                        group_size=group_size, enable_per_channel_scale=per_channel_scale,
                                        weight_num_threshold=0, num_kmeans_workers=1,
                                        enable_fast_kmeans_mode=False, in_place=True)), weight_palettization


# The function each coreai-opt pass computes a weight's compressed form with (tables and indices, or scales).
COMPUTE = {"weight_palettization": "_blockwise_compress", "weight_quantization": "_compute_qparams_by_dtype"}


# coreai-opt 0.3.0's `_blockwise_compress(original_data, ...)`, after its first argument.
BLOCKWISE_COMPRESS_ARGUMENTS = ("mode", "nbits", "block_sizes", "lut_function", "cluster_dim", "channel_axis",
                                "num_kmeans_workers")


def exact_kmeans(original: Callable) -> Callable:
    """coreai-opt's `_blockwise_compress` with its k-means (kmeans1d group by group, as coremltools') replaced by
    quant.kmeans: the same optimum, every group of a matrix at once on all cores."""
    def blockwise_compress(original_data, *args, **kwargs):
        options = dict(zip(BLOCKWISE_COMPRESS_ARGUMENTS, args)) | kwargs
        if str(options.get("mode", "")).upper() != "KMEANS" or options.get("cluster_dim", 1) != 1:
            return original(original_data, *args, **kwargs)
        from coreai_opt.coreai_utils._utils.palettize_utils import LutParams

        from quant.kmeans import palettize_blockwise

        result = palettize_blockwise(original_data, options["nbits"], options["block_sizes"],
                                     options.get("channel_axis"))
        return None if result is None else LutParams(result[0], result[1], None)

    return blockwise_compress


@contextmanager
def narrowed_pass(module, admit: Callable) -> None:
    """For the block: coreai-opt's candidate test narrowed to the constants `admit` accepts, and each distinct
    weight compressed once (prefill and decode hold equal copies of every weight; k-means is the slow part)."""
    original_test = module._should_compress_op
    compute_name = COMPUTE[module.__name__.rsplit(".", 1)[-1]]
    original_compute = getattr(module, compute_name)
    compute = exact_kmeans(original_compute) if compute_name == "_blockwise_compress" else original_compute
    results = {}

    def narrowed(op, threshold, ops):
        return admit(op) and original_test(op, threshold, ops)

    def once(weight, *args, **kwargs):
        array = np.ascontiguousarray(weight)
        key = (hashlib.sha256(array.view(np.uint8)).hexdigest(), array.dtype.str, array.shape, repr(args),
               repr(sorted(kwargs.items())))
        if key not in results:
            results[key] = compute(weight, *args, **kwargs)
        return results[key]

    module._should_compress_op = narrowed
    setattr(module, compute_name, once)
    try:
        yield
    finally:
        module._should_compress_op = original_test
        setattr(module, compute_name, original_compute)


def weight_constants(program, weight_name: Callable) -> dict[str, list]:
    """{weight name: its constant ops} (one per entrypoint that uses it) of a Core AI program."""
    found = {}

    def visit(op):
        from coreai._compiler.ir import WalkResult

        if op.name == "coreai.constant" and (name := weight_name(op)) is not None:
            found.setdefault(name, []).append(op)
        return WalkResult.ADVANCE

    program._module._mlir_module.operation.walk(visit)
    return found


def compress_program(program, weight_name: Callable, recipe: Recipe, quant_map: str | None, group_size: int,
                     per_channel_scale: bool) -> dict[str, str]:
    """Compress a Core AI program's weight matrices in place, each by its assigned recipe; returns
    {weight name: recipe name}. weight_name(constant op) names the matrix a constant holds (None: not one)."""
    constants = weight_constants(program, weight_name)
    chosen = assign(sorted(constants), recipe, quant_map)
    check_recipes({r for r in chosen.values() if r.kind != "float"})
    for current in sorted({r for r in chosen.values() if r.kind != "float"}, key=lambda r: r.name):
        names = {n for n, r in chosen.items() if r == current}
        apply, module = compression_pass(current, group_size, per_channel_scale)
        with narrowed_pass(module, lambda op: weight_name(op) in names):
            apply(program)
    return {name: r.name for name, r in chosen.items()}
