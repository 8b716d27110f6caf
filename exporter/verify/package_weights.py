"""Read the weights a package really carries (de-quantized) back into reference-model form.

coremltools expands compressed constants (`materialized_val_inference`), independently of our
executor, so a reference built from them isolates the error of the graph from the error of
the compression.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from exporter.errors import ExportError
from exporter.model import OpenELM
from exporter.verify.executor import load_program

EMBEDDING = "transformer.token_embeddings.weight"


def const_prefix(state_name: str) -> str:
    """The name coremltools gives the export module's copy of a checkpoint tensor."""
    if state_name == "transformer.norm.weight":
        return "final_norm_weight"
    return state_name.removeprefix("transformer.").replace(".", "_")


def weight_ops(function) -> dict:
    """Every weight-like constant of a function, keyed by op name: a const, or the constexpr that expands
    compressed data (whose data, scales and tables are not weights themselves)."""
    ops = {}
    for op in function.operations:
        if any(child.op_type.startswith("constexpr_") for child in op.outputs[0].child_ops):
            continue
        if op.op_type.startswith("constexpr_") or (
                op.op_type == "const" and op.outputs[0].val is not None and np.ndim(op.outputs[0].val) >= 1):
            ops[op.name] = op
    return ops


def value_of(op) -> np.ndarray:
    """A weight as the device sees it: de-quantized by coremltools' own expansion."""
    if op.op_type.startswith("constexpr_"):
        return np.asarray(op.materialized_val_inference())
    return np.asarray(op.outputs[0].val)


def constant_values(function) -> dict[str, np.ndarray]:
    """Every weight-like constant of a function, de-quantized, keyed by op name."""
    return {name: value_of(op) for name, op in weight_ops(function).items()}


def find(values: dict, prefix: str):
    for name, value in values.items():
        if name == prefix or (name.startswith(prefix + "_") and not name[len(prefix) + 1 :][:1].isdigit()):
            return value
    return None


class PackageTensors:
    """The package's own weights by checkpoint name (float16-rounded, de-quantized), expanded one at a
    time when read, like the checkpoint readers; tensors the program folded away come from `fallback`.

    packages: one package, or the chunks of a split export (their weights together make the model).
    """

    def __init__(self, packages, fallback: dict[str, torch.Tensor], config, function: str = "decode"):
        packages = [packages] if isinstance(packages, (str, Path)) else list(packages)
        self.where = str(packages[0])
        self.ops = {}
        for package in packages:
            self.ops.update(weight_ops(load_program(package).functions[function]))
        self.fallback, self.config = fallback, config
        self.expected = {name: tuple(t.shape) for name, t in fallback.items()}
        self.pieces = []
        while (piece := find(self.ops, f"vocab_pieces_{len(self.pieces)}")) is not None:
            self.pieces.append(piece)
        if not self.pieces:
            raise ExportError(f"{self.where}: no vocabulary weights found; was it written by elm-export?")

    def names(self) -> list[str]:
        return list(self.expected)

    def read(self, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        if name == EMBEDDING:
            table = np.concatenate([value_of(op) for op in self.pieces])[: self.config.vocab_size]
            return torch.from_numpy(table.astype(np.float32)).to(dtype)
        op = find(self.ops, const_prefix(name))
        if op is None:
            if name.endswith("proj.weight") or "proj_" in name:
                raise ExportError(f"{self.where}: weight for {name} not found in the program")
            return self.fallback[name].to(dtype)  # a norm weight folded into another op keeps its value
        value = value_of(op)
        if tuple(value.shape) != self.expected[name]:
            raise ExportError(f"{self.where}: {name} has shape {value.shape}, expected {self.expected[name]}")
        return torch.from_numpy(value.astype(np.float32)).to(dtype)


def dequantized_reference(packages, model: OpenELM, function: str = "decode", stream: bool = False) -> OpenELM:
    """A model whose weights are the package's own (float16-rounded, de-quantized) weights.

    stream: read each matrix from the package when its layer runs instead of holding them all
    (verification of models too big to hold twice).
    """
    from exporter.checkpoint import whole_model
    from exporter.weights import streamed_model

    state = {name: tensor for name, tensor in model.state_dict().items()}
    tensors = PackageTensors(packages, state, model.config, function)
    if stream:
        return streamed_model(model.config, tensors)
    return whole_model(model.config, tensors)
