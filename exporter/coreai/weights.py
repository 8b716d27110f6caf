"""A saved Core AI model's weights as the runtime sees them: each matrix de-quantized from what the file holds.

Verification builds its de-quantized reference from these (as it does from a Core ML package), so
the comparison with the runtime isolates the error of the graph from the error of the compression.
coreai-opt writes a compressed weight as small chains of ops that expand constants: a palette
(`lut_to_dense`: indices into one table per group of output channels) and/or a linear scale
(`blockwise_shift_scale`: (data - offset) × scale, one per block); they are expanded here in numpy.
"""

from __future__ import annotations

import numpy as np

from exporter.coreai.convert import location_key
from exporter.errors import ExportError

EXPANDING_OPS = ("coreai.lut_to_dense", "coreai.blockwise_shift_scale")


def constant_value(op) -> np.ndarray:
    """A constant's value; sub-byte integers (int4, uint2, ...) unpacked with coreai-torch's own unpacking."""
    import torch
    from coreai_opt.coreai_utils._coreai_imports import _get_constant_value_as_np_array
    from coreai_torch._compression._intx import unpack_intx, unpack_uintx

    value_type = op.result.type
    width = getattr(value_type.element_type, "width", 16)
    shape = tuple(value_type.shape)
    attribute = op.attributes["value"]
    if getattr(attribute, "is_splat", False):  # one value for the whole tensor (int4 zero offsets): no buffer
        return np.full(shape, attribute.get_splat_value().value, dtype=np.float32)
    value = _get_constant_value_as_np_array(op)
    if width >= 8 or value.shape == shape:
        return value.reshape(shape)
    signed = str(value_type.element_type).startswith("si")
    unpack = unpack_intx if signed else unpack_uintx
    return unpack(torch.from_numpy(value.astype(np.uint8)), torch.Size(shape), width).numpy().reshape(shape)


def blockwise(values: np.ndarray, shape: tuple) -> np.ndarray:
    """A per-block tensor (scales, offsets, tables' groups) repeated up to the full `shape`."""
    for axis, (blocks, full) in enumerate(zip(values.shape, shape)):
        if blocks != full:
            values = np.repeat(values, full // blocks, axis=axis)
    return values


def expand(op) -> np.ndarray:
    """The dense float32 value an expanding chain (or a plain constant) produces."""
    if op.name == "coreai.constant":
        return constant_value(op).astype(np.float32)
    inputs = [operand.owner for operand in op.operands]
    if op.name == "coreai.blockwise_shift_scale":
        data = expand(inputs[0])
        scale = blockwise(expand(inputs[1]), data.shape)
        offset = blockwise(expand(inputs[2]), data.shape) if len(inputs) > 2 else 0.0
        return (data - offset) * scale
    if op.name == "coreai.lut_to_dense":
        indices = constant_value(inputs[0]).astype(np.int64)
        table = expand(inputs[1])  # [groups along each axis of the weight..., entries, vector size 1]
        rank = indices.ndim  # 2 for a matrix, 4 for the ane target's [out, in, 1, 1] conv weight
        groups = [(np.arange(size) // (size // count)).reshape([-1 if i == axis else 1 for i in range(rank)])
                  for axis, (size, count) in enumerate(zip(indices.shape, table.shape[:rank]))]
        return table[(*groups, indices, 0)]
    raise ExportError(f"unexpected op {op.name} in a weight's expansion; was the model written by elm-export?")


def read_weights(program, nodes: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """{weight name: dense float32 matrix} for the weights export.json lists as {name: its torch nodes}: the op
    that carries one of the nodes' location and is not itself expanded further."""
    from coreai._compiler.ir import WalkResult

    # A node is prefill's, or "entrypoint/node" (exporter.coreai.write.weight_nodes).
    wanted = {tuple(node.split("/")) if "/" in node else ("prefill", node): name
              for name, names in nodes.items() for node in names}
    found = {}

    def visit(op):
        key = location_key(op)
        if key is not None and key in wanted and (op.name == "coreai.constant" or op.name in EXPANDING_OPS):
            # A weight is a matrix or a [out, in, 1, 1] conv weight: a scalar located at the same conv (its
            # padding, say) is not it.
            if not any(use.owner.name in EXPANDING_OPS for use in op.result.uses) and len(op.result.type.shape) >= 2:
                found[wanted[key]] = op
        return WalkResult.ADVANCE

    program._module._mlir_module.operation.walk(visit)
    missing = sorted(set(nodes) - set(found))
    if missing:
        raise ExportError(f"weights {', '.join(missing[:3])} not found in the Core AI program; export.json and the "
                          "model do not match (re-export)")
    return {name: matrix(expand(op)) for name, op in found.items()}


def matrix(value: np.ndarray) -> np.ndarray:
    """A 1x1 conv's weight [out, in, 1, 1] (the ane target) as the matrix it holds."""
    return value.reshape(value.shape[:2]) if value.ndim == 4 and value.shape[2:] == (1, 1) else value
