"""Read the weights a package really carries (de-quantized) back into reference-model form.

coremltools expands compressed constants (`materialized_val_inference`), independently of our
executor, so a reference built from them isolates the error of the graph from the error of
the compression.
"""

from __future__ import annotations

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


def constant_values(function) -> dict[str, np.ndarray]:
    """Every weight-like constant of a function, de-quantized, keyed by op name."""
    values = {}
    for op in function.operations:
        if any(child.op_type.startswith("constexpr_") for child in op.outputs[0].child_ops):
            continue  # the compressed parts (data, scales, tables): only their expansion is a weight
        if op.op_type.startswith("constexpr_"):
            values[op.name] = np.asarray(op.materialized_val_inference())
        elif op.op_type == "const" and op.outputs[0].val is not None and np.ndim(op.outputs[0].val) >= 1:
            values[op.name] = np.asarray(op.outputs[0].val)
    return values


def find(values: dict[str, np.ndarray], prefix: str) -> np.ndarray | None:
    for name, value in values.items():
        if name == prefix or (name.startswith(prefix + "_") and not name[len(prefix) + 1 :][:1].isdigit()):
            return value
    return None


def dequantized_reference(package_path, model: OpenELM, function: str = "decode") -> OpenELM:
    """A copy of `model` whose weights are the package's own (float16-rounded, de-quantized) weights."""
    program = load_program(package_path)
    values = constant_values(program.functions[function])
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    vocab = model.config.vocab_size
    pieces = []
    while (piece := find(values, f"vocab_pieces_{len(pieces)}")) is not None:
        pieces.append(piece)
    if not pieces:
        raise ExportError(f"{package_path}: no vocabulary weights found; was it written by elm-export?")
    state[EMBEDDING] = torch.from_numpy(np.concatenate(pieces)[:vocab].astype(np.float32))
    for name in state:
        if name == EMBEDDING:
            continue
        value = find(values, const_prefix(name))
        if value is None:
            if name.endswith("proj.weight") or "proj_" in name:
                raise ExportError(f"{package_path}: weight for {name} not found in the program")
            continue  # a norm weight folded into another op keeps the checkpoint's value
        if tuple(value.shape) != tuple(state[name].shape):
            raise ExportError(f"{package_path}: {name} has shape {value.shape}, expected {tuple(state[name].shape)}")
        state[name] = torch.from_numpy(value.astype(np.float32))
    copy = OpenELM(model.config)
    copy.load_state_dict(state)
    return copy.eval()
