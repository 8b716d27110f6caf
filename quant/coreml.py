"""Recipes applied to converted Core ML (MIL) programs with coremltools' compression passes.

Each weight matrix (the `weight` of every `linear`; the tied embedding is one of them) gets its
recipe's coremltools config by const name, so rotary tables, norms and masks stay float16.
Compression is deterministic and shared: the prefill and decode functions get byte-identical
weights that the multifunction package stores once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from exporter.errors import UsageError
from exporter.memory import batched, collect
from quant.program import weight_matrix_names
from quant.recipes import (
    COMPUTE_TARGETS,
    DEFAULT_COMPUTE_TARGET,
    DEFAULT_GROUP_SIZE,
    INT_BLOCK_SIZE,
    MIXED_DEFAULT_MAP,
    NEURAL_ENGINE,
    Recipe,
    assign,
    parse_quant_map,
)


def op_config(recipe: Recipe, group_size: int = DEFAULT_GROUP_SIZE, per_channel_scale: bool = False):
    """The coremltools per-op config for one weight matrix, or None for float16."""
    import coremltools.optimize.coreml as cto

    if recipe.kind == "linear" and recipe.bits == 8:
        return cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                           weight_threshold=0)
    if recipe.kind == "linear":
        return cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype=f"int{recipe.bits}",
                                           granularity="per_block", block_size=INT_BLOCK_SIZE, weight_threshold=0)
    if recipe.kind == "lut":
        from quant.kmeans import lut_function

        return cto.OpPalettizerConfig(
            mode="custom", lut_function=lut_function(recipe.bits), granularity="per_grouped_channel",
            group_size=group_size, enable_per_channel_scale=per_channel_scale, weight_threshold=0,
        )
    return None


def batches(configs: dict, size: int = 16) -> list[dict]:
    return [dict(part) for part in batched(list(configs.items()), size)]


def memory_of(data) -> tuple:
    """Where an array's values lie: the programs hold one matrix through views of their own (fill reshapes it
    for each), so the view's object identity does not tell that they are the same weights."""
    return data.__array_interface__["data"][0], data.shape, data.strides, data.dtype.str


def shared_result(shared: dict, data, compute, *settings):
    """compute() once per weight array held by several programs (prefill, decode and verify: quantize once),
    for the same settings. Holding the array keeps its memory (the key) its own while the entry lives."""
    key = (memory_of(data), settings)
    held = shared.get(key)
    if held is None:
        held = shared[key] = (data, compute())
    return held[1]


def shared_linear_quantizer(shared: dict, config):
    """coremltools' linear-quantization pass, computing the int data and scales of each weight array once
    for all programs holding that same array, with the float32 steps of quant.blockwise where they give
    coremltools' result. Built on first use: coremltools loads slowly."""
    from coremltools.optimize.coreml._quantization_passes import linear_quantize_weights

    from quant.blockwise import compress

    class SharedLinearQuantizer(linear_quantize_weights):
        def blockwise_compress_by_dtype(self, original_data, dtype, mode, block_sizes):
            def compute():
                result = compress(original_data, dtype, mode, block_sizes)
                if result is None:
                    result = super(SharedLinearQuantizer, self).blockwise_compress_by_dtype(
                        original_data, dtype, mode, block_sizes)
                return result

            return shared_result(shared, original_data, compute, dtype, mode, tuple(block_sizes))

    return SharedLinearQuantizer(config=config)


def palettize_channel_groups(data, nbits: int, block_sizes: list[int], channel_axis: int | None,
                             passes: list | None = None):
    """coremltools' LutParams for per_grouped_channel palettization by quant.kmeans (None where the group size
    does not divide the channels: coremltools then skips the weight). passes: see quant.kmeans.palettize_groups."""
    from coremltools.converters.mil.mil import types
    from coremltools.optimize import _utils as optimize_utils

    from quant.kmeans import palettize_blockwise

    result = palettize_blockwise(data, nbits, block_sizes, channel_axis, passes)
    if result is None:
        return None
    indices, lut = result
    index_dtype = types.nptype_from_builtin(types.string_to_builtin(f"uint{nbits}"))
    # A view, not astype: uint8 to uint8 marked uintN is the same bytes, and astype would copy every index.
    return optimize_utils.LutParams(indices.view(index_dtype), lut, None)


def shared_palettizer(shared: dict, config):
    """coremltools' palettization pass, with quant.kmeans clustering all groups of a matrix at once on every
    core (coremltools' loop calls a custom lut_function group by group), once for all programs holding the
    array."""
    from coremltools.optimize.coreml._quantization_passes import palettize_weights

    from quant.kmeans import KMeansLutFunction

    class SharedPalettizer(palettize_weights):
        def blockwise_compress(self, original_data, mode, nbits, block_sizes, lut_function=None, cluster_dim=1,
                               channel_axis=None, num_kmeans_workers=1):
            if not isinstance(lut_function, KMeansLutFunction) or cluster_dim != 1:
                return super().blockwise_compress(original_data, mode, nbits, block_sizes, lut_function,
                                                  cluster_dim, channel_axis, num_kmeans_workers)
            return shared_result(shared, original_data, lambda: palettize_channel_groups(
                original_data, lut_function.nbits, block_sizes, channel_axis),
                                 lut_function.nbits, tuple(block_sizes), channel_axis)

        def transform_op(self, op):
            with indices_kept():
                super().transform_op(op)

    return SharedPalettizer(config=config)


def indices_kept():
    """Inside: coremltools' palettized op takes indices already typed uintN as they are. Its own helper copies
    them (astype) for every program, where all programs can hold the one shared array (stored once anyway)."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil._deployment_compatibility import AvailableTarget
    from coremltools.converters.mil.frontend import _utils as frontend_utils
    from coremltools.converters.mil.mil import Var, types
    from coremltools.converters.mil.mil.block import is_current_opset_version_compatible_with

    from exporter.patching import patched

    def wrap(construct):
        def construct_lut_op(indices, lut, vector_axis=None, name=None, before_op=None):
            if isinstance(lut, Var) or not is_current_opset_version_compatible_with(AvailableTarget.iOS18):
                return construct(indices, lut, vector_axis, name, before_op)
            nbits = int(math.log2(lut.shape[-2]))
            index_dtype = types.nptype_from_builtin(types.string_to_builtin(f"uint{nbits}"))
            if indices.dtype != index_dtype or indices.dtype.metadata != index_dtype.metadata:
                return construct(indices, lut, vector_axis, name, before_op)
            options = {"name": name, "before_op": before_op, "vector_axis": vector_axis}
            return mb.constexpr_lut_to_dense(indices=indices, lut=lut,
                                             **{k: v for k, v in options.items() if v is not None})

        return construct_lut_op

    return patched(frontend_utils, "_construct_constexpr_lut_op", wrap)


@dataclass(frozen=True)
class Compression:
    """A recipe with its options, applied to converted programs."""

    recipe: Recipe
    quant_map: str | None = None
    group_size: int = DEFAULT_GROUP_SIZE
    per_channel_scale: bool = False
    compute_target: str = DEFAULT_COMPUTE_TARGET  # quant.recipes.COMPUTE_TARGETS: where the app runs the package
    adapter_recipe: Recipe | None = None  # LoRA adapters' matrices (quant.recipes.ADAPTER_WEIGHTS); None: float16

    @property
    def compresses(self) -> bool:
        adapters = self.adapter_recipe is not None and self.adapter_recipe.kind != "float"
        return self.recipe.kind != "float" or bool(self.quant_map) or adapters

    @property
    def writes_into_weights(self) -> bool:
        """coremltools' per-channel scale divides the weight array in place: programs cannot share it."""
        return self.per_channel_scale

    @property
    def palettizes(self) -> bool:
        """Some weight gets a palette (lutN): the recipe, mixed, or a lutN entry of --quant-map."""
        return self.recipe.kind in ("lut", "mixed") or any(r.kind == "lut" for _, r in parse_quant_map(self.quant_map))

    def validate(self, config) -> None:
        """Fail early (before conversion) when the options cannot apply to this model."""
        palettizes = self.palettizes  # parses --quant-map: a bad one fails here
        if self.per_channel_scale and not palettizes:
            raise UsageError(f"--per-channel-scale applies to palettized weights only (lut2..lut8, mixed, or lutN in "
                             f"--quant-map); --quant {self.recipe.name} palettizes none")
        self.check_compute_target()
        if self.group_size < 1:
            raise UsageError(f"--group-size {self.group_size} must be at least 1")
        for rows in {config.model_dim, config.vocab_size} | set(config.ffn_dims):
            if self.recipe.kind in ("lut", "mixed") and rows % self.group_size:
                raise UsageError(f"--group-size {self.group_size} does not divide a weight's {rows} output channels; "
                                 "use a power of two such as 16")

    def check_compute_target(self) -> None:
        """Refuse what fails on the platform the package is for (README: Known platform issues). Needs no model:
        the pipeline calls it before resolving (downloading) the checkpoint."""
        if self.compute_target not in COMPUTE_TARGETS:
            raise UsageError(f"--compute-target {self.compute_target!r} is not one of {', '.join(COMPUTE_TARGETS)}")
        if self.per_channel_scale and self.compute_target == NEURAL_ENGINE and self.palettizes:
            # coremltools 9.0 stores the scale as a [1, columns] constexpr_blockwise_shift_scale after the
            # [groups, 1, 2^bits, 1] tables; PR 2688 would fold it into the tables, but one scale per input column
            # cannot be folded into a table shared by all columns of a group of output channels exactly.
            raise UsageError(
                "--per-channel-scale makes coremltools 9.0 emit a constexpr_blockwise_shift_scale after the palette, "
                "which fails Neural Engine loading on macOS 26 (coremltools PR 2688), and its per-input-channel scale "
                "cannot be folded into the per-output-group palettes exactly; drop --per-channel-scale, or pass "
                "--compute-target gpu if the app runs the package on the GPU or CPU only"
            )

    @property
    def label(self) -> str:
        return self.recipe.name

    def configs(self, model_or_program) -> tuple[dict, dict]:
        """coremltools op configs by weight name: (linear quantization, palettization)."""
        chosen = assign(weight_matrix_names(model_or_program), self.recipe, self.quant_map, self.adapter_recipe)
        linear = {n: op_config(r) for n, r in chosen.items() if r.kind == "linear"}
        lut = {n: op_config(r, self.group_size, self.per_channel_scale)
               for n, r in chosen.items() if r.kind == "lut"}
        return linear, lut

    def apply(self, mlmodel):
        """Compress a converted MLModel (coremltools' public per-model API)."""
        import coremltools.optimize.coreml as cto

        linear, lut = self.configs(mlmodel)
        if linear:
            mlmodel = cto.linear_quantize_weights(mlmodel, config=cto.OptimizationConfig(op_name_configs=linear))
        if lut:
            mlmodel = cto.palettize_weights(mlmodel, config=cto.OptimizationConfig(op_name_configs=lut))
        return mlmodel

    def apply_to_programs(self, programs: list, names: list[str] | None = None) -> None:
        """Compress in-memory MIL programs in place (the `names` weights, else all) with the same coremltools
        passes `apply` runs, before anything is serialized; an array held by several programs (prefill and
        decode) is compressed once and the result shared."""
        import coremltools.optimize.coreml as cto

        linear, lut = {}, {}
        for program in programs:  # the ane target's embed functions hold only the table
            more_linear, more_lut = self.configs(program)
            linear.update(more_linear)
            lut.update(more_lut)
        if names is not None:
            linear = {n: c for n, c in linear.items() if n in names}
            lut = {n: c for n, c in lut.items() if n in names}
        # A few weights per pass, then the replaced float16 arrays are freed (they sit in reference cycles).
        # Called as graph passes (not .apply), so the ops they add carry the scopes the program requires.
        for shared_pass, configs in ((shared_linear_quantizer, linear), (shared_palettizer, lut)):
            for batch in batches(configs):
                shared = {}  # one batch's results, shared by the programs holding its arrays
                for program in programs:
                    shared_pass(shared, cto.OptimizationConfig(op_name_configs=batch))(program)
                shared.clear()  # now: the passes (classes, so in reference cycles) hold the dict until a collection
                if names is None:  # else the caller collects (exporter.weights.fill_weights)
                    collect()

    def apply_to_coreai(self, program, weight_name) -> dict[str, str]:
        """Compress a Core AI program in place with coreai-opt (quant.coreai); {weight name: recipe name}."""
        from quant.coreai import compress_program

        return compress_program(program, weight_name, self.recipe, self.quant_map, self.group_size,
                                self.per_channel_scale)

    def theoretical_weight_bytes(self, weight_shapes: dict[str, tuple[int, int]]) -> int:
        """Σ weights × bits + scales and tables, for the weight matrices named in `weight_shapes`."""
        chosen = assign(sorted(weight_shapes), self.recipe, self.quant_map, self.adapter_recipe)
        bits = sum(
            chosen[name].weight_bits(rows, cols, self.group_size, self.per_channel_scale)
            for name, (rows, cols) in weight_shapes.items()
        )
        return bits // 8

    def theoretical_sizes(self, program, weight_shapes: dict | None = None) -> dict:
        """What the package should weigh (quant.theory); weight_shapes: the matrices by the names they will
        have, when the program still holds placeholders."""
        from quant.theory import theoretical_sizes

        return theoretical_sizes(program, self, weight_shapes)

    def to_dict(self) -> dict:
        return {
            "recipe": self.recipe.name,
            "summary": self.recipe.summary,
            "target": self.recipe.target,
            "quant_map": self.quant_map or (MIXED_DEFAULT_MAP if self.recipe.kind == "mixed" else None),
            "group_size": self.group_size if self.recipe.kind in ("lut", "mixed") or self.quant_map else None,
            "per_channel_scale": self.per_channel_scale,
            "compute_target": self.compute_target,
            **({"adapter_recipe": self.adapter_recipe.name} if self.adapter_recipe is not None else {}),
        }
