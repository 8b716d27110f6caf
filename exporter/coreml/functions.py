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
from exporter.graph.signature import FUNCTIONS
from exporter.graph.stateful import StatefulOpenELM
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


def convert_functions(model, plan: WeightPlan | None, tensors: TensorSource, context_length: int,
                      prefill_length: int, compression: Compressor, progress: Progress, chunk: Chunk | None = None,
                      label: str = "") -> tuple[dict, dict]:
    """Convert, fill and compress prefill and decode into in-memory MIL programs.

    `model` is a skeleton whose matrices `plan` fills from `tensors` after conversion, or (plan None)
    a model holding its real weights. A skeleton's two programs are converted first (placeholders
    cost nothing), then each matrix is read once into both and compressed a batch at a time, once
    for both. Returns the programs and the theoretical sizes, read before compression.
    """
    if plan is None:
        return convert_whole_functions(model, context_length, prefill_length, compression, progress, chunk, label)
    programs, expected = {}, None
    for function, tokens in zip(FUNCTIONS, (prefill_length, 1)):
        programs[function], module = convert_function(model, context_length, tokens, chunk, progress,
                                                      function, label, plan)
        expected = placeholders_of(module)
        del module
    sizes = compression.theoretical_sizes(programs[FUNCTIONS[0]],
                                          {plan.matrices[i].name: plan.matrices[i].shape for i in expected})

    def compress(names: list[str]) -> None:
        compression.apply_to_programs(list(programs.values()), names)

    step = "fill weights" + (f" + quantize ({compression.label})" if compression.compresses else "")
    with progress.step(f"{step}{label}"):
        fill_weights(list(programs.values()), plan, tensors, expected,
                     after_batch=compress if compression.compresses else None,
                     shared=not compression.writes_into_weights)
    return programs, sizes


def convert_function(model, context_length: int, tokens: int, chunk: Chunk | None, progress: Progress,
                     function: str, label: str, plan: WeightPlan | None = None):
    """One function's in-memory MIL program, and the export module it was traced from."""
    module = StatefulOpenELM(model, context_length, tokens, chunk=chunk, weight_plan=plan)
    with progress.step(f"trace + convert {function} ({tokens} token{'s' if tokens > 1 else ''}){label}"):
        return convert_module(module, to_program=True), module


def convert_whole_functions(model, context_length: int, prefill_length: int, compression: Compressor,
                            progress: Progress, chunk: Chunk | None, label: str) -> tuple[dict, dict]:
    """A model holding its real (e.g. calibrated) weights: each function converted and compressed in turn."""
    programs, sizes = {}, None
    for function, tokens in zip(FUNCTIONS, (prefill_length, 1)):
        program, _ = convert_function(model, context_length, tokens, chunk, progress, function, label)
        sizes = sizes or compression.theoretical_sizes(program)
        if compression.compresses:
            with progress.step(f"quantize {function} ({compression.label}){label}"):
                compression.apply_to_programs([program])
        programs[function] = program
        collect()  # the float16 weights of this function are gone once compressed
    return programs, sizes
