"""The Core AI backend's stage: each chunk converted with its real weights, compressed (coreai-opt) and saved.

Unlike the Core ML backend, which fills the real matrices into an already converted program,
coreai-torch converts real tensors: each chunk's weights are read in float16 just for its conversion.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Protocol

from exporter.checkpoint.tensors import TensorSource
from exporter.coreai.convert import ConvertedProgram, convert_functions, location_key
from exporter.coreai.package import model_name, save_model
from exporter.graph.chunks import Chunk
from exporter.graph.functions import GraphSettings
from exporter.graph.signature import ANE
from exporter.memory import collect
from exporter.model.names import EMBEDDING, FINAL_NORM
from exporter.model.streamed import holding
from exporter.progress import Progress


class CoreAICompressor(Protocol):
    """What the Core AI backend needs of a compression recipe (quant.Compression is one)."""

    compresses: bool
    label: str

    def theoretical_weight_bytes(self, weight_shapes: dict[str, tuple[int, int]]) -> int: ...

    def apply_to_coreai(self, program, weight_name) -> dict: ...


def weight_nodes(converted: ConvertedProgram, weight: str) -> list[str]:
    """Where verification finds a weight again: the torch nodes its constant may be located at, in the first
    entrypoint that holds it (prefill; the ane target's decode or embed_prefill hold some weights prefill lacks).
    Node names are per entrypoint, so any but prefill's are written "entrypoint/node"."""
    for entrypoint in ("prefill", "decode", "embed_prefill"):
        nodes = sorted(node for (where, node), name in converted.locations.items()
                       if where == entrypoint and name == weight)
        if nodes:
            return nodes if entrypoint == "prefill" else [f"{entrypoint}/{node}" for node in nodes]
    return []


def chunk_weight_names(model, chunk: Chunk) -> set[str]:
    """The checkpoint names of the weights one chunk's program holds."""
    names = {name for name, _ in model.named_parameters()
             if any(name.startswith(f"transformer.layers.{i}.") for i in range(chunk.start, chunk.stop))}
    if chunk.takes_ids or chunk.gives_logits:
        names.add(EMBEDDING)  # the tied table: lookup in the first chunk, output projection in the last
    if chunk.gives_logits:
        names.add(FINAL_NORM)
    return names


def element_bytes(value_type) -> float:
    return value_type.element_type.width / 8


def theoretical_sizes(converted: ConvertedProgram, compression: CoreAICompressor) -> tuple[dict, dict]:
    """(What the model should weigh: weight matrices by the recipe, every other constant once; the weight
    matrices' shapes by name)."""
    from coreai._compiler.ir import WalkResult

    shapes, other = {}, 0

    def visit(op):
        nonlocal other
        key = location_key(op)
        if op.name == "coreai.constant" and key is not None:  # every entrypoint: ane's prefill lacks some weights
            name = converted.locations.get(key)
            shape = tuple(op.result.type.shape)
            if name is not None and len(shape) in (2, 4) and shape[2:] in ((), (1, 1)):  # ane: [out, in, 1, 1]
                shapes[name] = shape[:2]
            elif key[0] == "decode":  # other constants, once (decode has them all but the embed functions')
                other += int(math.prod(shape) * element_bytes(op.result.type))
        return WalkResult.ADVANCE

    converted.program._module._mlir_module.operation.walk(visit)
    weights = compression.theoretical_weight_bytes(shapes)
    return {"theoretical_bytes": weights + other, "weight_matrix_bytes": weights, "other_constant_bytes": other}, shapes


def write_models(model, tensors: TensorSource, chunks: list[Chunk], settings: GraphSettings, prefill_length: int,
                 compression: CoreAICompressor, name: str, staging, progress: Progress) -> list:
    """Each chunk as one .aimodel with entrypoints prefill and decode (and verify); [(chunk, model name, sizes, weights)],
    weights: {weight name: {node, recipe}}, what verification reads the model's weights back by."""
    # Every RMSNorm max-scaled: coreai-torch lowers layer_norm through torch's decomposition, which computes a
    # float16 input's statistics in float32 (ANE rule: no fp32), so the layer_norm form is Core ML's only.
    settings = replace(settings, norm_forms=None)
    written = []
    for index, chunk in enumerate(chunks):
        label = "" if len(chunks) == 1 else f" [chunk {index + 1}/{len(chunks)}: layers {chunk.start}-{chunk.stop - 1}]"
        embed = "embed, " if settings.target == ANE and chunk.takes_ids else ""
        verify = " and verify" if settings.verify_length else ""
        with progress.step(f"Core AI: export + convert {embed}prefill, decode{verify}{label}"):
            with holding(model, tensors, chunk_weight_names(model, chunk)):
                converted = convert_functions(model, settings, prefill_length, chunk)
            collect()
        sizes, shapes = theoretical_sizes(converted, compression)
        recipes = {}
        if compression.compresses:
            with progress.step(f"Core AI: quantize ({compression.label}){label}"):
                recipes = compression.apply_to_coreai(converted.program, converted.weight_name)
        weights = {weight: {"nodes": weight_nodes(converted, weight), "recipe": recipes.get(weight, "none")}
                   for weight in sorted(shapes)}
        file_name = model_name(name, len(chunks), index)
        with progress.step(f"Core AI: save model{label}"):
            save_model(converted.program, staging / file_name, strip_decode=settings.target != ANE)
        del converted
        collect()
        written.append((chunk, file_name, sizes, weights))
    return written
