"""Weight-compression recipes: what `--quant NAME` (and `--quant-map`) do to a converted Core ML program.

Each recipe becomes coremltools compression configs applied, by const name, to the weight
matrices only (the `weight` of every `linear`; the tied embedding is one of them), so rotary
tables, norms and masks stay float16. Compression is deterministic, so the prefill and decode
functions get byte-identical weights that the multifunction package stores once.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field

from exporter.errors import UsageError

DEFAULT_GROUP_SIZE = 16  # output channels sharing one palette (per_grouped_channel)


@dataclass(frozen=True)
class Recipe:
    name: str
    kind: str  # "float", "linear" (int8/int4) or "lut" (palettized)
    bits: int
    target: str
    summary: str

    def op_config(self, group_size: int = DEFAULT_GROUP_SIZE, per_channel_scale: bool = False, lut_cache=None):
        """The coremltools per-op config for one weight matrix, or None for float16."""
        import coremltools.optimize.coreml as cto

        if self.kind == "linear" and self.bits == 8:
            return cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                               weight_threshold=0)
        if self.kind == "linear":
            return cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype=f"int{self.bits}",
                                               granularity="per_block", block_size=32, weight_threshold=0)
        if self.kind == "lut":
            from quant.kmeans import lut_function

            function = lut_function(self.bits)
            return cto.OpPalettizerConfig(
                mode="custom", lut_function=function if lut_cache is None else CachedLut(function, lut_cache),
                granularity="per_grouped_channel",
                group_size=group_size, enable_per_channel_scale=per_channel_scale, weight_threshold=0,
            )
        return None

    def weight_bits(self, rows: int, columns: int, group_size: int, per_channel_scale: bool) -> int:
        """Bits stored for one [rows, columns] matrix: data plus scales or look-up tables (float16)."""
        n = rows * columns
        if self.kind == "linear" and self.bits == 8:
            return 8 * n + 16 * rows  # one scale per output channel
        if self.kind == "linear":
            return self.bits * n + 16 * (n // 32)  # one scale per block of 32
        if self.kind == "lut":
            luts = (rows // group_size) * (2**self.bits) * 16
            # coremltools 9.0's per-channel scale divides each column (input channel) by its largest |w|
            # before clustering, and stores those scales as a [1, columns] float16 tensor after the tables
            # (as `apply_to_program` leaves it; its default pass pipeline, which `apply` runs, would fold
            # them into one table per column instead: larger than float16).
            return self.bits * n + luts + (16 * columns if per_channel_scale else 0)
        return 16 * n


RECIPES = {
    r.name: r
    for r in (
        Recipe("none", "float", 16, "any", "float16 weights, no compression: the parity baseline"),
        Recipe("int8", "linear", 8, "any", "int8 per-channel linear weights"),
        Recipe("int4", "linear", 4, "GPU", "int4 per-block(32) linear weights, Apple's GPU recipe for on-device LLMs"),
        *(
            Recipe(f"lut{b}", "lut", b, "Neural Engine",
                  f"{b}-bit palettized weights, one {2 ** b}-entry table per group of output channels")
            for b in (2, 3, 4, 6, 8)
        ),
        Recipe("mixed", "mixed", 4, "Neural Engine", "embedding/output projection lut6, attention and FFN lut4"),
    )
}
DEFAULT_RECIPE = "int4"
MIXED_DEFAULT_MAP = "embedding=lut6,attention=lut4,ffn=lut4"
ROLE_PATTERNS = {
    "embedding": "vocab_pieces_*",
    "attention": "layers_*_attn_*",
    "ffn": "layers_*_ffn_*",
}


class CachedLut:
    """Palettize each distinct weight group once: prefill and decode carry the same weights (quantize once)."""

    def __init__(self, function, cache: dict):
        self.function, self.cache = function, cache

    def __call__(self, values):
        key = (self.function.nbits, values.dtype.str, values.shape, hashlib.sha1(values.tobytes()).digest())
        if key not in self.cache:
            self.cache[key] = self.function(values)
        return self.cache[key]


def batched(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def batches(configs: dict, size: int = 16) -> list[dict]:
    return [dict(part) for part in batched(list(configs.items()), size)]


def shared_linear_quantizer(shared: dict, config):
    """coremltools' linear-quantization pass, computing the int data and scales of each weight array once
    for all programs holding that same array (prefill and decode: quantize once), with the float32 steps
    of quant.blockwise where they give coremltools' result. Built on first use: coremltools loads slowly."""
    from coremltools.optimize.coreml._quantization_passes import linear_quantize_weights

    from quant.blockwise import compress

    class SharedLinearQuantizer(linear_quantize_weights):
        def blockwise_compress_by_dtype(self, original_data, dtype, mode, block_sizes):
            held = shared.get(id(original_data))
            if held is None or held[0] is not original_data:  # holding the array keeps its id unique
                result = compress(original_data, dtype, mode, block_sizes)
                if result is None:
                    result = super().blockwise_compress_by_dtype(original_data, dtype, mode, block_sizes)
                held = shared[id(original_data)] = (original_data, result)
            return held[1]

    return SharedLinearQuantizer(config=config)


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise UsageError(f"unknown --quant recipe {name!r}; choose one of: {', '.join(RECIPES)}")
    return RECIPES[name]


def parse_quant_map(spec: str | None) -> list[tuple[list[str], Recipe]]:
    """`embedding=lut6,layers.0-3=int8,attention=lut4`: which weights get which recipe (later entries win).

    Keys: `embedding`, `attention`, `ffn`, `layers.N` / `layers.N-M` (all weights of those layers),
    `layers.N.attention` / `layers.N-M.ffn`, or a glob over weight names (`layers_*_ffn_proj_2*`).
    """
    rules = []
    for entry in filter(None, (part.strip() for part in (spec or "").split(","))):
        key, sep, value = entry.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"--quant-map entry {entry!r} is not KEY=RECIPE (e.g. embedding=lut6,layers.0-3=int8)")
        recipe = get_recipe(value.strip())
        if recipe.kind == "mixed":
            raise UsageError("--quant-map values are single recipes (none, int8, int4, lut2..lut8), not 'mixed'")
        rules.append((_patterns(key.strip()), recipe))
    return rules


def _patterns(key: str) -> list[str]:
    if key in ROLE_PATTERNS:
        return [ROLE_PATTERNS[key]]
    match = re.fullmatch(r"layers\.(\d+)(?:-(\d+))?(?:\.(attention|ffn))?", key)
    if match:
        first, last, role = int(match[1]), int(match[2] or match[1]), match[3]
        if last < first:
            raise UsageError(f"--quant-map key {key!r}: the layer range is backwards")
        part = {"attention": "attn_", "ffn": "ffn_", None: ""}[role]
        return [f"layers_{i}_{part}*" for i in range(first, last + 1)]
    if any(ch in key for ch in "*?[") or key.startswith(("layers_", "vocab_pieces_")):
        return [key]
    raise UsageError(
        f"--quant-map key {key!r} is not one of embedding, attention, ffn, layers.N[-M][.attention|.ffn] "
        "or a glob over weight names"
    )


def assign(weight_names: list[str], recipe: Recipe, quant_map: str | None) -> dict[str, Recipe]:
    """The recipe for each weight matrix: the base recipe (or mixed's default map), then --quant-map."""
    base = RECIPES["none"] if recipe.kind == "mixed" else recipe
    rules = parse_quant_map(MIXED_DEFAULT_MAP if recipe.kind == "mixed" else None) + parse_quant_map(quant_map)
    chosen = {}
    for name in weight_names:
        chosen[name] = base
        for patterns, rule_recipe in rules:
            if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                chosen[name] = rule_recipe
    return chosen


def mil_program(model_or_program):
    """The MIL program of an MLModel (as converted), or the program itself."""
    return getattr(model_or_program, "_mil_program", None) or model_or_program


def weight_matrix_vars(function):
    """The weight matrices of a function: the `weight` of every `linear`, and the table of every `gather`
    that looks up the embedding (a first chunk of a split model uses the table only that way)."""
    for op in function.operations:
        if op.op_type == "linear":
            yield op.weight
        elif op.op_type == "gather" and op.x.op is not None and op.x.op.name.startswith("vocab_pieces"):
            yield op.x  # not the rotary tables, which are gathered by position


def weight_matrix_names(mlmodel) -> list[str]:
    """Names of the const ops that are weight matrices of the program (see weight_matrix_vars)."""
    names = []
    for function in mil_program(mlmodel).functions.values():
        for var in weight_matrix_vars(function):
            if var.op is not None and var.op.op_type == "const":
                names.append(var.op.name)
    return sorted(set(names))


@dataclass(frozen=True)
class Compression:
    """A recipe with its options, applied to converted programs."""

    recipe: Recipe
    quant_map: str | None = None
    group_size: int = DEFAULT_GROUP_SIZE
    per_channel_scale: bool = False
    lut_cache: dict = field(default_factory=dict, compare=False, repr=False)  # shared by both functions

    @property
    def compresses(self) -> bool:
        return self.recipe.kind != "float" or bool(self.quant_map)

    @property
    def writes_into_weights(self) -> bool:
        """coremltools' per-channel scale divides the weight array in place: programs cannot share it."""
        return self.per_channel_scale

    def validate(self, config) -> None:
        """Fail early (before conversion) when the options cannot apply to this model."""
        rules = parse_quant_map(self.quant_map)
        palettizes = self.recipe.kind in ("lut", "mixed") or any(r.kind == "lut" for _, r in rules)
        if self.per_channel_scale and not palettizes:
            raise UsageError(f"--per-channel-scale applies to palettized weights only (lut2..lut8, mixed, or lutN in "
                             f"--quant-map); --quant {self.recipe.name} palettizes none")
        if self.group_size < 1:
            raise UsageError(f"--group-size {self.group_size} must be at least 1")
        for rows in {config.model_dim, config.vocab_size} | set(config.ffn_dims):
            if self.recipe.kind in ("lut", "mixed") and rows % self.group_size:
                raise UsageError(f"--group-size {self.group_size} does not divide a weight's {rows} output channels; "
                                 "use a power of two such as 16")

    def configs(self, model_or_program) -> tuple[dict, dict]:
        """coremltools op configs by weight name: (linear quantization, palettization)."""
        chosen = assign(weight_matrix_names(model_or_program), self.recipe, self.quant_map)
        linear = {n: r.op_config() for n, r in chosen.items() if r.kind == "linear"}
        lut = {n: r.op_config(self.group_size, self.per_channel_scale, self.lut_cache)
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
        from coremltools.optimize.coreml._quantization_passes import palettize_weights

        from exporter.memory import collect

        linear, lut = self.configs(programs[0])
        if names is not None:
            linear = {n: c for n, c in linear.items() if n in names}
            lut = {n: c for n, c in lut.items() if n in names}
        # A few weights per pass, then the replaced float16 arrays are freed (they sit in reference cycles).
        # Called as graph passes (not .apply), so the ops they add carry the scopes the program requires.
        for batch in batches(linear):
            shared = {}
            for program in programs:
                shared_linear_quantizer(shared, cto.OptimizationConfig(op_name_configs=batch))(program)
            del shared
            if names is None:  # else the caller collects (exporter.weights.fill_weights)
                collect()
        for batch in batches(lut):
            for program in programs:
                palettize_weights(config=cto.OptimizationConfig(op_name_configs=batch))(program)
            if names is None:
                collect()

    def theoretical_weight_bytes(self, weight_shapes: dict[str, tuple[int, int]]) -> int:
        """Σ weights × bits + scales and tables, for the weight matrices named in `weight_shapes`."""
        chosen = assign(sorted(weight_shapes), self.recipe, self.quant_map)
        bits = sum(
            chosen[name].weight_bits(rows, cols, self.group_size, self.per_channel_scale)
            for name, (rows, cols) in weight_shapes.items()
        )
        return bits // 8

    def to_dict(self) -> dict:
        return {
            "recipe": self.recipe.name,
            "summary": self.recipe.summary,
            "target": self.recipe.target,
            "quant_map": self.quant_map or (MIXED_DEFAULT_MAP if self.recipe.kind == "mixed" else None),
            "group_size": self.group_size if self.recipe.kind in ("lut", "mixed") or self.quant_map else None,
            "per_channel_scale": self.per_channel_scale,
        }
