"""Convert an export graph's prefill and decode functions into in-memory MIL programs, weights filled and compressed.

The compression comes in from above (the pipeline hands quant's `Compression` in): the backend only
needs what `Compressor` declares.
"""

from __future__ import annotations

from typing import Protocol

from exporter.checkpoint.tensors import TensorSource
from exporter.coreml.convert import convert_module
from exporter.coreml.fill import fill_weights
from exporter.graph.chunks import Chunk
from exporter.graph.functions import GraphFunction, GraphSettings, build_module, graph_functions
from exporter.graph.weights import WeightPlan, placeholders_of
from exporter.memory import collect
from exporter.progress import Progress


class Compressor(Protocol):
    """What the Core ML backend needs of a compression recipe (quant.Compression is one)."""

    compresses: bool  # False: float16 weights as they are
    writes_into_weights: bool  # True: each program needs its own copy of a weight array
    label: str  # for progress lines

    def theoretical_sizes(self, program, weight_shapes: dict | None = None) -> dict: ...

    def apply_to_programs(self, programs: list, names: list[str] | None = None) -> None: ...


def convert_functions(model, plan: WeightPlan | None, tensors: TensorSource, settings: GraphSettings,
                      prefill_length: int, compression: Compressor, progress: Progress, chunk: Chunk | None = None,
                      label: str = "") -> tuple[dict, dict]:
    """Convert, fill and compress a chunk's functions (prefill and decode; the ane target's embed functions
    in the first chunk) into in-memory MIL programs.

    `model` is a skeleton whose matrices `plan` fills from `tensors` after conversion, or (plan None)
    a model holding its real weights. A skeleton's two programs are converted first (placeholders
    cost nothing), then each matrix is read once into both and compressed a batch at a time, once
    for both. Returns the programs and the theoretical sizes, read before compression.
    """
    chunk = chunk or Chunk.whole(model.config.num_transformer_layers)
    functions = graph_functions(settings.target, chunk, prefill_length, settings.verify_length, tuple(settings.adapters))
    if plan is None:
        return convert_whole_functions(model, settings, functions, compression, progress, chunk, label)
    programs, expected = {}, {}
    for function in functions:
        programs[function.name], module = convert_function(model, settings, function, chunk, progress, label, plan)
        expected[function.name] = placeholders_of(module)
        del module
    everything = set().union(*expected.values())
    body = programs["decode"]  # every matrix of the chunk but the embedding's gather
    sizes = compression.theoretical_sizes(body, {plan.matrices[i].name: plan.matrices[i].shape for i in everything})

    def compress(names: list[str]) -> None:
        compression.apply_to_programs(list(programs.values()), names)

    step = "fill weights" + (f" + quantize ({compression.label})" if compression.compresses else "")
    with progress.step(f"{step}{label}"):
        fill_weights(list(programs.values()), plan, tensors, [expected[name] for name in programs],
                     after_batch=compress if compression.compresses else None,
                     shared=not compression.writes_into_weights)
    return programs, sizes


def convert_function(model, settings: GraphSettings, function: GraphFunction, chunk: Chunk, progress: Progress,
                     label: str, plan: WeightPlan | None = None):
    """One function's in-memory MIL program, and the export module it was traced from."""
    module = build_module(function, model, settings, chunk, plan)
    tokens = function.tokens
    with progress.step(f"trace + convert {function.name} ({tokens} token{'s' if tokens > 1 else ''}){label}"):
        return convert_module(module, to_program=True), module


def convert_whole_functions(model, settings: GraphSettings, functions: list[GraphFunction], compression: Compressor,
                            progress: Progress, chunk: Chunk, label: str) -> tuple[dict, dict]:
    """A model holding its real (e.g. calibrated) weights: each function converted and compressed in turn."""
    programs, sizes = {}, None
    for function in functions:
        program, _ = convert_function(model, settings, function, chunk, progress, label)
        if not function.embeds:
            sizes = sizes or compression.theoretical_sizes(program)
        if compression.compresses:
            with progress.step(f"quantize {function.name} ({compression.label}){label}"):
                compression.apply_to_programs([program])
        programs[function.name] = program
        collect()  # the float16 weights of this function are gone once compressed
    return programs, sizes
