"""The export's LoRA adapters: `--adapter NAME=DIR` (own functions sharing the base weights), `--merge-adapter NAME`
(baked into the base weights) and `--adapter-quant RECIPE`, checked before anything slow, and their export.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from exporter.checkpoint.adapters import Adapter, parse_adapter_option, read_adapter
from exporter.errors import ExportError, UsageError
from exporter.graph.adapters import function_name
from exporter.graph.contract import contract
from exporter.graph.signature import EMBED_FUNCTIONS, EMBED_VERIFY, FUNCTIONS, VERIFY
from exporter.model.lora import check_adapter
from quant.recipes import INT_BLOCK_SIZE, Recipe, get_recipe

RESERVED_NAMES = {*FUNCTIONS, *EMBED_FUNCTIONS, VERIFY, EMBED_VERIFY, "base", "embed"}  # function names, the app's "base"


@dataclass
class AdapterPlan:
    specs: list[tuple[str, Path]] = field(default_factory=list)  # (name, folder) of every --adapter
    merge: str | None = None
    recipe: Recipe | None = None  # --adapter-quant; None: float16
    adapters: dict[str, Adapter] = field(default_factory=dict)  # unmerged: each gets its own functions
    merged: Adapter | None = None


def plan_adapter_options(specs: list[str] | tuple[str, ...], merge: str | None, adapter_quant: str | None,
                         export_format: str, calibrate: str | None) -> AdapterPlan:
    """The options alone (no file read yet): names, collisions, what combines with what."""
    plan = AdapterPlan(merge=merge)
    for spec in specs:
        name, folder = parse_adapter_option(spec)
        if name in RESERVED_NAMES:
            raise UsageError(f"--adapter {name}: the name collides with a function of the package; choose "
                             f"another (reserved: {', '.join(sorted(RESERVED_NAMES))})")
        if any(name == other for other, _ in plan.specs):
            raise UsageError(f"--adapter {name} is given twice; each adapter needs its own name")
        plan.specs.append((name, folder))
    if merge is not None and merge not in [name for name, _ in plan.specs]:
        raise UsageError(f"--merge-adapter {merge}: no --adapter {merge}=DIR names it; pass both")
    if not plan.specs:
        if adapter_quant is not None:
            raise UsageError("--adapter-quant applies to --adapter matrices; no --adapter was given")
        return plan
    if export_format != "coreml":
        raise UsageError("--adapter exports Core ML packages only for now (--format coreml); Core AI models with "
                         "adapter functions are not built yet")
    if calibrate is not None:
        raise UsageError("--calibrate and --adapter cannot be combined yet: calibration rewrites the base weights "
                         "the adapters were trained on")
    if adapter_quant is not None:
        plan.recipe = get_recipe(adapter_quant)
        if plan.recipe.kind == "mixed":
            raise UsageError("--adapter-quant takes one recipe (none, int8, int4, lut2..lut8), not mixed")
    return plan


def read_adapters(plan: AdapterPlan, config, group_size: int) -> None:
    """Read and check every adapter against the model; split off the merged one."""
    for name, folder in plan.specs:
        adapter = read_adapter(name, folder)
        check_adapter(adapter, config)
        if name == plan.merge:
            if any(pair.embedding for pair in adapter.modules.values()):
                raise ExportError(f"--merge-adapter {name}: it adapts the token embedding, which OpenELM ties to the "
                                  "output projection: merging would change the logits' weights too; export it "
                                  f"unmerged (--adapter {name}=DIR alone)")
            plan.merged = adapter
            continue
        if adapter.dora:
            raise ExportError(f"adapter {name} is DoRA: its magnitudes rescale whole rows of the base weights, so it "
                              f"cannot share them; pass --merge-adapter {name} to bake it in")
        check_recipe_fits(adapter, plan.recipe, group_size)
        plan.adapters[name] = adapter


def check_recipe_fits(adapter: Adapter, recipe: Recipe | None, group_size: int) -> None:
    """--adapter-quant's groups must tile the adapter's rank-r matrices."""
    if recipe is None or recipe.kind == "float":
        return
    rank = adapter.rank
    if recipe.kind == "lut" and rank % group_size:
        raise UsageError(f"--adapter-quant {recipe.name}: adapter {adapter.name} has rank {rank}, which --group-size "
                         f"{group_size} does not divide; use --adapter-quant int8 or a group size dividing {rank}")
    if recipe.kind == "linear" and recipe.bits == 4 and rank % INT_BLOCK_SIZE:
        raise UsageError(f"--adapter-quant int4 quantizes blocks of {INT_BLOCK_SIZE} input channels; adapter "
                         f"{adapter.name}'s rank {rank} is not a multiple; use --adapter-quant int8")


def function_map(name: str, target: str, verify_length: int) -> dict[str, str]:
    """Each base function (export.json's graph.functions) → the function running it with the adapter."""
    return {kind: function_name(kind, name) for kind in contract(target, verify_length)["functions"]}


def adapters_section(plan: AdapterPlan, target: str, verify_length: int, stored_bytes: dict[str, int]) -> dict:
    """export.json's `adapters`: per adapter, its functions and where it came from."""
    recipe = plan.recipe.name if plan.recipe is not None else "none"
    return {name: {"functions": function_map(name, target, verify_length), **adapter.to_dict(),
                   "quantization": recipe, "stored_bytes": stored_bytes.get(name)}
            for name, adapter in plan.adapters.items()}


def merged_section(plan: AdapterPlan) -> dict | None:
    return None if plan.merged is None else {"name": plan.merged.name, **plan.merged.to_dict()}
