"""The weight-compression recipes `--quant NAME` names, and which weight gets which (`--quant-map`).

A recipe says how weight matrices are stored (float16, int8/int4 linear, or 2..8-bit palettes) and
what that costs in bits; `assign` picks one per weight by its program name. How a recipe is applied
to a converted program lives with its backend (quant.coreml).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from exporter.errors import UsageError

DEFAULT_GROUP_SIZE = 16  # output channels sharing one palette (per_grouped_channel)
INT_BLOCK_SIZE = 32  # int4: one scale per block of 32 input channels
# Where the app runs the package (`--compute-target`): Core ML's cpuAndNeuralEngine / all, or cpuAndGPU / cpuOnly.
# Only options that a platform refuses depend on it (Compression.validate); the package is the same either way.
NEURAL_ENGINE, GPU = "neural-engine", "gpu"
COMPUTE_TARGETS = (NEURAL_ENGINE, GPU)
DEFAULT_COMPUTE_TARGET = NEURAL_ENGINE


@dataclass(frozen=True)
class Recipe:
    name: str
    kind: str  # "float", "linear" (int8/int4) or "lut" (palettized)
    bits: int
    target: str
    summary: str

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
DEFAULT_RECIPE = "int4"  # what Compression and the tools assume when no recipe is named
# elm-export's default per --target: the Neural Engine's best palettized recipe in BENCHMARKS.md's quality table
# (mixed: KL 3.3e-3 at 2.22 bits per weight on 450M, against int4's 7.0e-3 at 2.16), and int4 per-block for the GPU.
TARGET_RECIPES = {"ane": "mixed", "gpu": "int4"}
MIXED_DEFAULT_MAP = "embedding=lut6,attention=lut4,ffn=lut4"
ADAPTER_WEIGHTS = "lora_*"  # a LoRA adapter's matrices (exporter.graph.adapters): --adapter-quant's recipe, not --quant's
ROLE_PATTERNS = {
    "embedding": "vocab_pieces_*",
    "attention": "layers_*_attn_*",
    "ffn": "layers_*_ffn_*",
}


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


def assign(weight_names: list[str], recipe: Recipe, quant_map: str | None,
           adapter_recipe: Recipe | None = None) -> dict[str, Recipe]:
    """The recipe for each weight matrix: the base recipe (or mixed's default map), adapters' matrices the adapter
    recipe (float16 by default: they are small, and a rank-r matrix rarely fits a recipe's groups), then --quant-map."""
    base = RECIPES["none"] if recipe.kind == "mixed" else recipe
    rules = parse_quant_map(MIXED_DEFAULT_MAP if recipe.kind == "mixed" else None) + parse_quant_map(quant_map)
    chosen = {}
    for name in weight_names:
        chosen[name] = (adapter_recipe or RECIPES["none"]) if fnmatch.fnmatchcase(name, ADAPTER_WEIGHTS) else base
        for patterns, rule_recipe in rules:
            if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                chosen[name] = rule_recipe
    return chosen



