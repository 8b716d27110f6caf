"""Finding the weight matrices of a converted MIL program (what the recipes compress and the theory counts)."""

from __future__ import annotations


def mil_program(model_or_program):
    """The MIL program of an MLModel (as converted), or the program itself."""
    return getattr(model_or_program, "_mil_program", None) or model_or_program


def weight_matrix_vars(function):
    """The weight matrices of a function: the `weight` of every `linear` (gpu target) or 1x1 `conv` (ane), and
    the table of every `gather` that looks up the embedding (the ane target's embed functions, and a first
    chunk of a split model, use the table only that way)."""
    for op in function.operations:
        if op.op_type in ("linear", "conv"):
            yield op.weight
        elif op.op_type == "gather" and op.x.op is not None and op.x.op.name.startswith("vocab_pieces"):
            yield op.x  # not the rotary tables, which are gathered by position


def weight_matrix_names(mlmodel) -> list[str]:
    """Names of the const ops that are weight matrices of the program (see weight_matrix_vars)."""
    names = []
    for function in mil_program(mlmodel).functions.values():
        for var in weight_matrix_vars(function):
            if var.op is not None and var.op.op_type == "const":
                names.append(var.op.name)
    return sorted(set(names))
