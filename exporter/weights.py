"""Weight matrices streamed into the converted programs, so the export never holds the model in float32.

The export module is traced with *placeholders* for its weight matrices: one value broadcast to
the matrix's shape, which costs no memory in PyTorch and stays one number through conversion
(exporter.lean_convert). Each placeholder has its own value, so coremltools keeps them apart (it
merges identical constants) and each const in the converted program says which matrix it stands
for. `fill_weights` then swaps in the real matrix, read from the checkpoint (or the seed) only at
that moment and cast to float16, the same array into prefill and decode, and has each batch
compressed before reading the next. Peak memory is the compressed weights plus one batch of
float16 matrices, instead of the float32 model plus its copies.

The same skeleton serves the activation-range preflight: `materialized` loads each matrix just
before the layer that uses it and drops it after.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from exporter.checkpoint import build_model
from exporter.config import OpenELMConfig
from exporter.errors import ExportError
from exporter.memory import collect
from quant.recipes import batched

EMBEDDING = "transformer.token_embeddings.weight"
PLACEHOLDER_STEP = 1 / 1024  # placeholder k holds 1 + k/1024: exact in float16 for k < 1024


def placeholder(shape, index: int) -> nn.Parameter:
    """A [shape] parameter that is one stored number: distinct per index, no memory per element."""
    value = torch.full((), 1.0 + (index + 1) * PLACEHOLDER_STEP)
    return nn.Parameter(value.expand(shape), requires_grad=False)


def is_placeholder(tensor: torch.Tensor) -> bool:
    return tensor.dim() > 0 and tensor.numel() > 1 and all(stride == 0 for stride in tensor.stride())


def placeholder_index(value: float) -> int:
    return round((value - 1.0) / PLACEHOLDER_STEP) - 1


def program_name(checkpoint_name: str) -> str:
    """The const name of a checkpoint matrix in the program, as coremltools writes names (dots → underscores)."""
    return checkpoint_name.removeprefix("transformer.").replace(".", "_")


def is_matrix(name: str, shape: tuple) -> bool:
    return len(shape) == 2  # linear weights and the embedding; norms are vectors and stay real


@dataclass(frozen=True)
class Matrix:
    """One weight matrix of the export graph: where its rows come from in the checkpoint."""

    name: str  # the const name in the program, which the recipes' --quant-map globs match
    source: str  # checkpoint tensor name
    rows: tuple[int, int]  # [start, stop) of the source's rows; rows past the source are zero padding
    shape: tuple[int, int]


class WeightPlan:
    """Placeholder index → matrix, for every weight matrix of one export module."""

    def __init__(self):
        self.matrices: list[Matrix] = []

    def add(self, name: str, source: str, rows: tuple[int, int], shape: tuple[int, int]) -> nn.Parameter:
        """A placeholder for the matrix `name` (the same index when asked again: both functions share it)."""
        for index, matrix in enumerate(self.matrices):
            if matrix.name == name:
                return placeholder(shape, index)
        self.matrices.append(Matrix(name, source, rows, tuple(shape)))
        return placeholder(shape, len(self.matrices) - 1)

    def vocab_pieces(self, pieces: int, piece_size: int, model_dim: int) -> list[nn.Parameter]:
        """Placeholders for the export module's pieces of the (tied) embedding, zero-padded past the vocabulary."""
        return [self.add(f"vocab_pieces_{i}", EMBEDDING, (i * piece_size, (i + 1) * piece_size),
                         (piece_size, model_dim)) for i in range(pieces)]


def skeleton_model(config: OpenELMConfig, tensors, plan: WeightPlan):
    """The reference model with real norms and placeholders for every matrix (its layers' and the embedding)."""
    state = {}
    for name, shape in tensors.expected.items():
        if name == EMBEDDING:
            # The export module uses the embedding as vocabulary pieces (WeightPlan.vocab_pieces).
            state[name] = placeholder(shape, -1)
        elif is_matrix(name, shape):
            state[name] = plan.add(program_name(name), name, (0, shape[0]), shape)
        else:
            state[name] = tensors.read(name)
    model = build_model(config, state)
    model.weight_plan = plan  # read by the export module to make placeholders for its vocabulary pieces
    return model


def read_matrix(tensors, matrix: Matrix, cache: dict) -> np.ndarray:
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


def placeholders_of(module: nn.Module) -> set[int]:
    """Plan indices of the placeholder matrices `module` uses (what its converted program must contain)."""
    return {placeholder_index(float(p.detach().reshape(-1)[0])) for p in module.parameters() if is_placeholder(p)}


def fill_weights(programs: list, plan: WeightPlan, tensors, expected: set[int], after_batch=None,
                 shared: bool = True) -> None:
    """Replace every placeholder const of each program by the real float16 matrix, named for the recipes.

    Each matrix is read once and the same array goes into every program (prefill and decode share
    their weights; `shared=False` gives each its own copy, for compression that writes into the array).
    After each batch of matrices, `after_batch(names)` may compress them, so the
    float16 weights of only one batch are held at a time.
    """
    functions = [program.functions["main"] for program in programs]
    # Index → that placeholder's op in each program; popped as they go, so replaced ops can be freed.
    found = [{index: op for op in f.operations if (index := placeholder_of(op, plan)) is not None}
             for f in functions]
    for ops in found:
        if set(ops) != expected:
            missing = [plan.matrices[i].name for i in sorted(expected - set(ops))]
            raise ExportError(f"internal: the converted program lost weight matrices {missing[:3]}; run with "
                              "--debug and report it")
    cache, garbage = {}, 0
    for batch in batched(sorted(expected), FILL_BATCH):
        matrices = [plan.matrices[index] for index in batch]
        arrays = [read_matrix(tensors, matrix, cache) for matrix in matrices]
        for number, (function, ops) in enumerate(zip(functions, found)):
            own = arrays if shared or number == 0 else [values.copy() for values in arrays]
            replace_placeholders(function, [ops.pop(index) for index in batch], matrices, own)
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
    if not isinstance(value, np.ndarray) or value.ndim != 2 or value.size < 2:
        return None
    index = placeholder_index(float(value.flat[0]))
    if not 0 <= index < len(plan.matrices) or value.shape != plan.matrices[index].shape:
        return None
    if any(value.strides):  # placeholders stay one broadcast number through conversion (exporter.lean_convert)
        return None  # a real constant that happens to start with a placeholder's value
    return index


def replace_placeholders(function, ops: list, matrices: list[Matrix], arrays: list[np.ndarray]) -> None:
    """Swap in the real matrices."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil.scope import ScopeInfo, ScopeSource

    # As a graph pass: the new consts inherit the placeholders' source scopes, which the program requires.
    with mb.scope(ScopeInfo(source=ScopeSource.COREMLTOOLS_GRAPH_PASS, data=["elm_fill_weights"])):
        with function:  # one block for the batch: each exit walks the whole function
            reals = [mb.const(val=values, name=matrix.name, before_op=op)
                     for op, matrix, values in zip(ops, matrices, arrays)]
        for op, real in zip(ops, reals):
            function.replace_uses_of_var_after_op(anchor_op=op, old_var=op.outputs[0], new_var=real)
        function.remove_ops(ops)


def stream_weights(model, tensors) -> list:
    """Hooks that make the skeleton run as the real float32 model: each placeholder matrix is read just
    before its module runs and dropped after; the tied embedding stays loaded while the whole model runs."""
    hooks = []

    def swap_in(module, name):
        placeholder_param = module.weight
        module.weight = nn.Parameter(tensors.read(name), requires_grad=False)
        return placeholder_param

    def hold(module, name):
        saved = {}
        hooks.append(module.register_forward_pre_hook(lambda m, a: saved.__setitem__("p", swap_in(m, name))))
        hooks.append(module.register_forward_hook(lambda m, a, out: setattr(m, "weight", saved.pop("p"))))

    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and is_placeholder(module.weight):
            hold(module, f"{name}.weight")
    if is_placeholder(model.transformer.token_embeddings.weight):
        embedding = model.transformer.token_embeddings
        saved = {}
        hooks.append(model.register_forward_pre_hook(
            lambda m, a: saved.__setitem__("p", swap_in(embedding, EMBEDDING))))
        hooks.append(model.register_forward_hook(lambda m, a, out: setattr(embedding, "weight", saved.pop("p"))))
    return hooks


@contextmanager
def materialized(model, tensors):
    """The skeleton running as the real model (stream_weights) inside the block, a skeleton again after."""
    hooks = stream_weights(model, tensors)
    try:
        yield model
    finally:
        for hook in hooks:
            hook.remove()


def streamed_model(config: OpenELMConfig, tensors):
    """A reference model that reads its matrices from `tensors` whenever a layer runs: for models too
    big to hold in float32 next to what is being checked (each forward pass re-reads the weights)."""
    model = skeleton_model(config, tensors, WeightPlan())
    stream_weights(model, tensors)
    return model
