"""The "Neural Engine rules" report: per function of a saved program (either format), each rule and its violations.

Counted from what was written, not from the graph code: a Core ML package through coremltools' milproto
loader, a Core AI model through its MLIR program. The rules are Apple's Neural Engine authoring rules
(apple/coreai-models, neural_engine_rules.md): projections as 1x1 convs, not linear; attention one head
at a time; no table indexed inside the body (embedding, RoPE); no fp32 (and no int32 arithmetic
beyond the state write's indices); rank <= 5; input/output last dimensions of at least 32.
"""

from __future__ import annotations

import math
import re

NARROW = 32  # ANE rule: the last dimension of inputs and outputs holds at least 32 float16 values (64 bytes)
EMBED_PREFIX = "embed_"  # the token lookup's own functions, where a table gather is the point


def empty_counts() -> dict:
    return {"ops": 0, "linear": 0, "conv": 0, "multi_head_matmuls": 0, "table_gathers": 0, "fp32_ops": 0,
            "int32_ops": 0, "max_rank": 0, "narrow_io": []}


def coreml_rules(package) -> dict[str, dict]:
    """{function: counts} for a saved .mlpackage."""
    from exporter.coreml.package import load_program

    report = {}
    for name, function in load_program(package).functions.items():
        counts = empty_counts()
        constants = set()
        for op in function.operations:
            if op.op_type == "const" or op.op_type.startswith("constexpr_"):
                constants.update(id(v) for v in op.outputs)
                continue
            count_op(counts, op.op_type, [_dtype(v) for v in op.outputs], [v.shape for v in op.outputs])
            operands = [v for v in op.inputs.values() if hasattr(v, "shape")]
            if op.op_type == "gather" and id(op.x) in constants:
                counts["table_gathers"] += 1
            if op.op_type in ("matmul", "einsum") and _multi_head(op, constants):
                counts["multi_head_matmuls"] += 1
            del operands
        io = [(v.name, v.shape) for v in function.inputs.values()] + [(v.name, v.shape) for v in function.outputs]
        counts["narrow_io"] = narrow(io)
        report[name] = counts
    return report


def count_op(counts: dict, op_type: str, dtypes: list[str], shapes: list) -> None:
    counts["ops"] += 1
    counts["linear"] += op_type == "linear"
    counts["conv"] += op_type == "conv"
    counts["fp32_ops"] += "fp32" in dtypes
    counts["int32_ops"] += "int32" in dtypes
    counts["max_rank"] = max([counts["max_rank"]] + [len(s) for s in shapes])


def narrow(io: list[tuple[str, tuple]]) -> list[str]:
    return [f"{name} {list(shape)}" for name, shape in io if len(shape) and int(shape[-1]) < NARROW]


def _dtype(var) -> str:
    from coremltools.converters.mil.mil import types

    dtype = var.dtype
    return "fp32" if dtype == types.fp32 else "int32" if dtype == types.int32 else str(types.builtin_to_string(dtype))


def _multi_head(op, constants: set) -> bool:
    """An activation-by-activation product over more than one head at once (ANE rule: attention per head)."""
    if op.op_type == "matmul":
        if id(op.x) in constants or id(op.y) in constants:
            return False
        return math.prod(int(d) for d in op.outputs[0].shape[:-2]) > 1
    equation = str(op.equation.val)
    inputs, output = equation.split("->")
    left, right = inputs.split(",")
    shape = dict(zip(left, op.values[0].shape)) | dict(zip(right, op.values[1].shape))
    batch = [letter for letter in output if letter in left and letter in right]
    return math.prod(int(shape[letter]) for letter in batch) > 1


# --- Core AI ----------------------------------------------------------------------------------------------

_TYPE = re.compile(r"tensor<((?:[0-9?]+x)*)([su]?i\d+|f16|f32|bf16)>")


def coreai_rules(path) -> dict[str, dict]:
    """{entrypoint: counts} for a saved .aimodel, from its program's op names and result types."""
    from exporter.coreai.package import load_program

    program = load_program(path)
    report = {}
    for function in program._module._mlir_module.body.operations:
        name = str(function.attributes["sym_name"]).strip('"') if "sym_name" in function.attributes else None
        if name is None:
            continue
        counts = empty_counts()
        for block in function.regions[0].blocks:
            for op in block.operations:
                count_coreai_op(counts, op)
        report[name] = counts
    return report


def count_coreai_op(counts: dict, op) -> None:
    kind = op.name.split(".")[-1]
    if kind in ("constant", "return") or "constant" in kind:
        return
    results = [str(r.type) for r in op.results]
    shapes, dtypes = [], []
    for text in results:
        found = _TYPE.search(text)
        if found:
            shapes.append([d for d in found[1].split("x") if d])
            dtypes.append("fp32" if found[2] == "f32" else "int32" if found[2] in ("i32", "si32") else found[2])
    count_op(counts, {"linear": "linear", "conv": "conv", "conv2d": "conv"}.get(kind, kind), dtypes, shapes)
    if kind in ("gather", "embedding", "gather_nd", "index_select"):
        counts["table_gathers"] += 1
