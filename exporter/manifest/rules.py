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
    """{function: counts} for a saved .mlpackage, read from its program's protobuf (no weights loaded)."""
    import coremltools as ct
    from coremltools.proto import MIL_pb2

    spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
    report = {}
    for name, function in spec.mlProgram.functions.items():
        block = function.block_specializations[function.opset]
        counts, constants, types = empty_counts(), {}, {}
        for op in block.operations:
            for output in op.outputs:
                types[output.name] = output.type.tensorType
            if op.type == "const" or op.type.startswith("constexpr_"):
                value = op.attributes["val"].immediateValue.tensor if "val" in op.attributes else None
                strings = list(value.strings.values) if value is not None and value.HasField("strings") else []
                constants.update({output.name: strings[0] if strings else None for output in op.outputs})
                continue
            outputs = [types[output.name] for output in op.outputs]
            count_op(counts, op.type, [_proto_dtype(MIL_pb2, t.dataType) for t in outputs], [_dims(t) for t in outputs])
            argument = {key: [a.name for a in binding.arguments] for key, binding in op.inputs.items()}
            if op.type == "gather" and argument["x"][0] in constants:
                counts["table_gathers"] += 1
            if op.type == "matmul" and not ({argument["x"][0], argument["y"][0]} & set(constants)):
                counts["multi_head_matmuls"] += math.prod(_dims(outputs[0])[:-2]) > 1
            if op.type == "einsum":
                shapes = [_dims(types[value]) for value in argument["values"]]
                counts["multi_head_matmuls"] += _multi_head_einsum(constants[argument["equation"][0]], shapes)
        io = [(i.name, _dims(i.type.tensorType)) for i in function.inputs if i.type.HasField("tensorType")]
        io += [(output, _dims(types[output])) for output in block.outputs]
        counts["narrow_io"] = narrow(io)
        report[name] = counts
    return report


def _dims(tensor_type) -> list[int]:
    return [int(d.constant.size) for d in tensor_type.dimensions]


def _proto_dtype(MIL_pb2, data_type) -> str:
    return {"FLOAT32": "fp32", "INT32": "int32"}.get(MIL_pb2.DataType.Name(data_type), "other")


def _multi_head_einsum(equation: str, shapes: list[list[int]]) -> bool:
    """An einsum over more than one head at once: its batch letters (in both operands and the output) span > 1."""
    inputs, output = equation.split("->")
    left, right = inputs.split(",")
    sizes = dict(zip(left, shapes[0])) | dict(zip(right, shapes[1]))
    return math.prod(sizes[letter] for letter in output if letter in left and letter in right) > 1


def count_op(counts: dict, op_type: str, dtypes: list[str], shapes: list) -> None:
    counts["ops"] += 1
    counts["linear"] += op_type == "linear"
    counts["conv"] += op_type == "conv"
    counts["fp32_ops"] += "fp32" in dtypes
    counts["int32_ops"] += "int32" in dtypes
    counts["max_rank"] = max([counts["max_rank"]] + [len(s) for s in shapes])


def narrow(io: list[tuple[str, tuple]]) -> list[str]:
    return [f"{name} {list(shape)}" for name, shape in io if len(shape) and int(shape[-1]) < NARROW]


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
