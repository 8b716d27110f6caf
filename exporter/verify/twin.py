"""Verifying a Core AI export too big for Apple's Linux runtime: a twin at the model's real widths.

coreai-core's runtime on Linux is a CPU reference (measured here: the embedded 3M-parameter model
verifies in ~40 s; two layers of OpenELM-270M decode at ~7 s per token, a 64-token prefill takes
~135 s), so a whole 270M-3B model cannot run in it in reasonable time. What can run is the same
export code, with the same recipe, on a twin: the model's first and last layers (OpenELM's
layer-wise scaling makes them its narrowest and widest), its real embedding and widths, read
from the same checkpoint, exported and run in Apple's runtime with a short context. That proves
the export and the recipe produce, at these widths, a program Apple's runtime computes as the
reference does; the shipped .aimodel itself is checked by sha256 and by its declared signature.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from pathlib import Path

from exporter.graph.chunks import Chunk
from exporter.manifest.build import coreai_entry
from exporter.model.config import OpenELMConfig
from exporter.model.load import whole_model
from exporter.progress import Progress
from exporter.verify.drive import graph_settings
from exporter.verify.parity import verify
from exporter.verify.reference import coreai_dequantized_reference, source_tensors
from exporter.verify.report import ParityReport
from quant.coreml import Compression
from quant.recipes import DEFAULT_GROUP_SIZE, get_recipe

RUNTIME_FULL_LIMIT = 50_000_000  # parameters: above this a Core AI export is verified through its twin
TWIN_CONTEXT, TWIN_PREFILL, TWIN_PROMPT, TWIN_STEPS = 64, 8, 8, 8  # one prefill call, eight decode steps


def twin_layers(config: OpenELMConfig) -> list[int]:
    last = config.num_transformer_layers - 1
    return [0] if last == 0 else [0, last]


def twin_config(config: OpenELMConfig, layers: list[int]) -> OpenELMConfig:
    return dataclasses.replace(
        config, num_transformer_layers=len(layers), max_context_length=TWIN_CONTEXT,
        num_query_heads=[config.num_query_heads[i] for i in layers],
        num_kv_heads=[config.num_kv_heads[i] for i in layers],
        ffn_multipliers=[config.ffn_multipliers[i] for i in layers])


class TwinTensors:  # a TensorSource (exporter.checkpoint.tensors): twin layer j is the source's layers[j]
    def __init__(self, tensors, layers: list[int]):
        self.tensors, self.layers = tensors, layers
        self.expected = {self.twin_name(name): shape for name, shape in tensors.expected.items()
                         if source_layer(name, CHECKPOINT_LAYER) in (None, *layers)}

    def twin_name(self, name: str) -> str:
        return rename_layer(name, CHECKPOINT_LAYER, self.layers.index)

    def names(self) -> list[str]:
        return list(self.expected)

    def read(self, name: str, *dtype):
        return self.tensors.read(rename_layer(name, CHECKPOINT_LAYER, self.layers.__getitem__), *dtype)


CHECKPOINT_LAYER = re.compile(r"^transformer\.layers\.(\d+)\.")  # checkpoint names
PROGRAM_LAYER = re.compile(r"^layers_(\d+)_")  # program names (exporter.model.names)


def source_layer(name: str | None, pattern: re.Pattern) -> int | None:
    match = name and pattern.match(name)
    return int(match[1]) if match else None


def rename_layer(name: str | None, pattern: re.Pattern, new_index) -> str | None:
    """`name` with its layer number i replaced by new_index(i) (names without one unchanged)."""
    layer = source_layer(name, pattern)
    if layer is None:
        return name
    match = pattern.match(name)
    return match[0].replace(str(layer), str(new_index(layer))) + name[match.end():]


class TwinCompression:
    """The export's compression, with each twin weight given the recipe its source layer's weight got."""

    def __init__(self, compression: Compression, layers: list[int]):
        self.compression, self.layers = compression, layers
        self.compresses, self.label = compression.compresses, compression.label

    def source(self, name: str | None) -> str | None:
        return rename_layer(name, PROGRAM_LAYER, self.layers.__getitem__)

    def theoretical_weight_bytes(self, weight_shapes: dict) -> int:
        return self.compression.theoretical_weight_bytes({self.source(n): s for n, s in weight_shapes.items()})

    def apply_to_coreai(self, program, weight_name) -> dict:
        recipes = self.compression.apply_to_coreai(program, lambda op: self.source(weight_name(op)))
        return {rename_layer(name, PROGRAM_LAYER, self.layers.index): recipe for name, recipe in recipes.items()}


def compression_of(manifest: dict) -> Compression:
    quantization = manifest.get("quantization") or {}
    return Compression(get_recipe(quantization.get("recipe", "none")), quantization.get("quant_map"),
                       quantization.get("group_size") or DEFAULT_GROUP_SIZE,
                       bool(quantization.get("per_channel_scale")))


def verify_twin(manifest: dict, model_dir: Path | None, prompt: list[int], steps: int) -> ParityReport:
    config, tensors = source_tensors(manifest, model_dir)
    layers = twin_layers(config)
    twin = twin_config(config, layers)
    model = whole_model(twin, TwinTensors(tensors, layers))
    compression = TwinCompression(compression_of(manifest), layers)
    from exporter.coreai.write import write_models

    with tempfile.TemporaryDirectory(prefix="elm-twin-") as scratch:
        settings = graph_settings(manifest, TWIN_CONTEXT, layers)
        written = write_models(model, None, [Chunk.whole(len(layers))], settings, TWIN_PREFILL, compression,
                               "twin", Path(scratch), Progress(quiet=True))
        entries = [coreai_entry(Path(scratch), chunk, name, sizes, weights, twin, TWIN_CONTEXT)
                   for chunk, name, sizes, weights in written]
        twin_manifest = {**manifest, "model": twin.to_dict(), "context_length": TWIN_CONTEXT,
                         "prefill_length": TWIN_PREFILL, "coreai": {"chunks": entries}}
        paths = [Path(scratch) / entry["package"] for entry in entries]

        def dequantized():
            return coreai_dequantized_reference(paths, entries, model)

        # Judged on the graph alone, by KL: a two-layer model's logits have near-ties that float16 rounding flips.
        report = verify(paths, twin_manifest, model, prompt[:TWIN_PROMPT], min(steps, TWIN_STEPS),
                        dequantized_model=dequantized, judge_total=False, backend="coreai")
    report.scope = (f"twin: layers {' and '.join(map(str, layers))} of {config.num_transformer_layers} at this model's "
                    f"widths (model_dim {config.model_dim}, vocab {config.vocab_size}), same recipe and export code, "
                    f"context {TWIN_CONTEXT}, in Apple's runtime (the whole model is too slow for its Linux CPU "
                    "runtime); the shipped .aimodel is checked by sha256 and signature. A two-layer twin is no "
                    "language model, so only the graph (vs its de-quantized weights) is judged, by KL")
    return report
