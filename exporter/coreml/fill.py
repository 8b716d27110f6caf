"""Real weight matrices streamed into converted programs, so the export never holds the model in float32.

The export graph is traced with placeholders for its matrices (exporter.model.streamed), which stay
one number each through conversion (exporter.coreml.lean). `fill_weights` then swaps in each real
matrix, read from the checkpoint (or the seed) only at that moment and cast to float16, the same
array into prefill and decode, and has each batch compressed before reading the next. Peak memory
is the compressed weights plus one batch of float16 matrices, instead of the float32 model plus
its copies.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from exporter.checkpoint.tensors import TensorSource
from exporter.errors import ExportError
from exporter.graph.weights import Matrix, WeightPlan
from exporter.memory import batched, collect
from exporter.model.streamed import placeholder_index


def read_matrix(tensors: TensorSource, matrix: Matrix, cache: dict) -> np.ndarray:
    """The real float16 rows of `matrix`; the last source tensor read is kept for the next piece of it."""
    if cache.get("name") != matrix.source:
        cache.clear()
        cache.update(name=matrix.source, tensor=tensors.read(matrix.source))
    source = cache["tensor"]
    start, stop = matrix.rows
    rows = source[start:min(stop, source.shape[0])]
    if stop > source.shape[0]:
        rows = F.pad(rows, (0, 0, 0, stop - source.shape[0]))
    values = rows.to(torch.float16)  # torch casts on every core; numpy's float16 goes one value at a time
    if not torch.isfinite(torch.stack(torch.aminmax(values))).all():  # an inf or NaN shows in the min or max
        raise ExportError(f"{matrix.source}: weights beyond float16's range (|w| > 65504); the Neural Engine "
                          "cannot hold them")
    return values.numpy()


def fill_weights(programs: list, plan: WeightPlan, tensors: TensorSource, expected: list[set[int]],
                 after_batch=None, shared: bool = True) -> None:
    """Replace every placeholder const of each program by the real float16 matrix, named for the recipes.

    expected: the plan indices each program holds (the ane target's embed functions hold only the table).
    Each matrix is read once and the same array goes into every program (prefill and decode share
    their weights; `shared=False` gives each its own copy, for compression that writes into the array).
    After each batch of matrices, `after_batch(names)` may compress them, so the
    float16 weights of only one batch are held at a time.
    """
    functions = [program.functions["main"] for program in programs]
    # Index → that placeholder's op in each program; popped as they go, so replaced ops can be freed.
    found = [{index: op for op in f.operations if (index := placeholder_of(op, plan)) is not None}
             for f in functions]
    for ops, wanted in zip(found, expected):
        if set(ops) != wanted:
            missing = [plan.matrices[i].name for i in sorted(wanted - set(ops))]
            raise ExportError(f"internal: the converted program lost weight matrices {missing[:3]}; run with "
                              "--debug and report it")
    cache, garbage = {}, 0
    for batch in batched(sorted(set().union(*expected)), FILL_BATCH):
        matrices = [plan.matrices[index] for index in batch]
        arrays = [read_matrix(tensors, matrix, cache) for matrix in matrices]
        for number, (function, ops) in enumerate(zip(functions, found)):
            held = [i for i, index in enumerate(batch) if index in ops]
            own = [arrays[i] if shared or number == 0 else arrays[i].copy() for i in held]
            replace_placeholders(function, [ops.pop(batch[i]) for i in held], [matrices[i] for i in held], own)
        garbage += sum(values.nbytes for values in arrays) * (1 if shared else len(functions))
        del arrays, own
        if after_batch is not None:
            after_batch([matrix.name for matrix in matrices])
        if garbage > GARBAGE_BYTES:  # compressed float16 arrays sit in reference cycles until collected
            collect()
            garbage = 0


FILL_BATCH = 16  # matrices filled (and compressed) at a time
GARBAGE_BYTES = 512 * 2**20  # collected this often: each collection walks every object of both programs


def placeholder_of(op, plan: WeightPlan) -> int | None:
    """The plan index of the matrix a const op stands for, or None."""
    value = op.outputs[0].val if op.op_type == "const" else None
    if not isinstance(value, np.ndarray) or value.ndim not in (2, 4) or value.size < 2:
        return None
    index = placeholder_index(float(value.flat[0]))
    # A matrix, or (ane target) a 1x1 conv's weight [out, in, 1, 1] holding it.
    if not 0 <= index < len(plan.matrices) or value.shape[:2] != plan.matrices[index].shape or value.shape[2:] not in (
            (), (1, 1)):
        return None
    if any(value.strides):  # placeholders stay one broadcast number through conversion (exporter.coreml.lean)
        return None  # a real constant that happens to start with a placeholder's value
    return index


def replace_placeholders(function, ops: list, matrices: list[Matrix], arrays: list[np.ndarray]) -> None:
    """Swap in the real matrices."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil.scope import ScopeInfo, ScopeSource

    # As a graph pass: the new consts inherit the placeholders' source scopes, which the program requires.
    with mb.scope(ScopeInfo(source=ScopeSource.COREMLTOOLS_GRAPH_PASS, data=["elm_fill_weights"])):
        with function:  # one block for the batch: each exit walks the whole function
            reals = [mb.const(val=values.reshape(op.outputs[0].shape), name=matrix.name, before_op=op)
                     for op, matrix, values in zip(ops, matrices, arrays)]
        for op, real in zip(ops, reals):
            function.replace_uses_of_var_after_op(anchor_op=op, old_var=op.outputs[0], new_var=real)
        function.remove_ops(ops)
