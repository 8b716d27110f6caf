"""A program function compiled into steps: what each op reads, computes, stores and frees.

`compile_function` turns a pymil function into a `FunctionPlan` once, so a call only walks its
steps: constants are bound in place (from a `ConstantPool`), every other input names the runtime
value, state or tuple it comes from, and each value is dropped after its last reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from exporter.verify.kernels import OPS, ExecutorError, OpInfo, StateSlot, UnsupportedOpError
from exporter.verify.kernels.operands import as_dtype


class ConstantPool(Protocol):
    """Where compiled plans get their constants (exporter.verify.constant_pool.ConstantPool is one)."""

    def constant(self, value) -> tuple[tuple, Any]: ...

    def expanded_weight(self, op, input_keys: dict[str, tuple], inputs: dict[str, Any]) -> tuple[tuple, list]: ...

# Input bindings of a compiled op: where each input value comes from at run time.
CONST, VAR, STATE, TUPLE = "const", "var", "state", "tuple"
Binding = tuple  # (CONST, value) | (VAR, var name) | (STATE, state name) | (TUPLE, [bindings])


@dataclass(frozen=True)
class TensorSignature:
    """One declared input, output or state of a function."""

    name: str
    shape: tuple  # ints; a symbol (flexible dimension) accepts any size
    dtype: np.dtype


@dataclass
class Step:
    op: OpInfo
    kernel: Callable
    args: dict[str, Binding]
    outputs: list[tuple[str, np.dtype, tuple]]  # (var name, declared dtype, declared shape)
    free_after: list[str] = field(default_factory=list)  # values no later step needs


@dataclass
class FunctionPlan:
    name: str
    inputs: list[TensorSignature]
    states: list[TensorSignature]
    outputs: list[tuple[TensorSignature, Binding]]
    steps: list[Step]


# --- types --------------------------------------------------------------------------------------


def declared_dtype(var) -> np.dtype:
    from coremltools.converters.mil.mil import types

    return np.dtype(types.nptype_from_builtin(var.dtype))


def declared_shape(var) -> tuple:
    return tuple(var.shape) if var.shape is not None else ()


def signature(var) -> TensorSignature:
    return TensorSignature(var.name, declared_shape(var), declared_dtype(var))


def shape_matches(actual: tuple, declared: tuple) -> bool:
    if len(actual) != len(declared):
        return False
    return all(not isinstance(d, (int, np.integer)) or a == d for a, d in zip(actual, declared))


def store(value, dtype: np.dtype, shape: tuple, op: OpInfo) -> np.ndarray:
    """An op result as the program stores it: in its declared dtype (float16: rounded, ±inf past 65504)."""
    array = np.asarray(value)
    if array.dtype != dtype:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow to ±inf is the emulated behaviour
            array = as_dtype(array, dtype)
    if not shape_matches(array.shape, shape):
        raise ExecutorError(f"op {op.name!r} ({op.op_type}) produced shape {array.shape}, program declares {shape}")
    return array


def execute(op: OpInfo, kernel: Callable, args: dict[str, Any]) -> tuple:
    """Run one kernel; its results as a tuple, one per op output. Kernel failures name the op."""
    try:
        result = kernel(op, **args)
    except ExecutorError:
        raise
    except Exception as error:
        raise ExecutorError(f"op {op.name!r} ({op.op_type}) failed: {type(error).__name__}: {error}") from error
    values = tuple(result) if isinstance(result, (tuple, list)) else (result,)
    if len(values) != op.output_count:
        raise ExecutorError(
            f"op {op.name!r} ({op.op_type}) gave {len(values)} outputs, program declares {op.output_count}"
        )
    return values


# --- compiling a function into steps -------------------------------------------------------------


def compile_function(name: str, function, pool: ConstantPool) -> FunctionPlan:
    from coremltools.converters.mil.mil import types

    inputs, states = [], []
    runtime_names: set[str] = set()
    state_names: set[str] = set()
    for input_name, var in function.inputs.items():
        if types.is_state(var.sym_type):
            states.append(TensorSignature(input_name, declared_shape(var), declared_dtype(var)))
            state_names.add(var.name)
        else:
            inputs.append(TensorSignature(input_name, declared_shape(var), declared_dtype(var)))
            runtime_names.add(var.name)

    constants: dict[str, tuple[tuple, Any]] = {}  # var name -> (pool key, compute-form value)

    def binding(var) -> Binding:
        if isinstance(var, (list, tuple)):
            return (TUPLE, [binding(v) for v in var])
        if var.name in constants:
            return (CONST, constants[var.name][1])
        if var.name in state_names:
            return (STATE, var.name)
        if var.name in runtime_names:
            return (VAR, var.name)
        raise ExecutorError(f"function {name!r}: value {var.name!r} is used before it is computed")

    steps = []
    for op in function.operations:
        if op.op_type not in OPS and op.op_type != "const":
            raise UnsupportedOpError(op.op_type, op.name)
        if op.op_type == "const":
            constants[op.outputs[0].name] = pool.constant(op.outputs[0].val)
        elif op.op_type.startswith("constexpr_"):
            if any(v.name not in constants for v in op.inputs.values()):
                raise ExecutorError(f"{op.op_type} {op.name!r} has an input that is not a constant")
            keys = {k: constants[v.name][0] for k, v in op.inputs.items()}
            values = {k: constants[v.name][1] for k, v in op.inputs.items()}
            key, outputs = pool.expanded_weight(op, keys, values)
            for index, (var, value) in enumerate(zip(op.outputs, outputs)):
                constants[var.name] = ((key, index), value)
        else:
            args = {k: binding(v) for k, v in op.inputs.items()}
            outputs = [(var.name, declared_dtype(var), declared_shape(var)) for var in op.outputs]
            steps.append(Step(OpInfo.of(op), OPS[op.op_type], args, outputs))
            runtime_names.update(var.name for var in op.outputs)

    plan_outputs = [(signature(var), binding(var)) for var in function.outputs]
    schedule_frees(steps, plan_outputs)
    return FunctionPlan(name, inputs, states, plan_outputs, steps)


def var_names(b: Binding):
    """The runtime values a binding reads."""
    if b[0] == VAR:
        yield b[1]
    elif b[0] == TUPLE:
        for inner in b[1]:
            yield from var_names(inner)


def schedule_frees(steps: list[Step], outputs: list[tuple[TensorSignature, Binding]]) -> None:
    """Drop each value after its last reader, so large activations do not pile up during a call."""
    keep = {n for _, b in outputs for n in var_names(b)}
    last_use: dict[str, int] = {}
    for index, step in enumerate(steps):
        for b in step.args.values():
            for n in var_names(b):
                last_use[n] = index
        for n, _, _ in step.outputs:
            last_use.setdefault(n, index)  # never read: free right away
    for n, index in last_use.items():
        if n not in keep:
            steps[index].free_after.append(n)


def resolve(b: Binding, env: dict[str, Any], slots: dict[str, StateSlot]):
    kind, payload = b
    if kind == CONST:
        return payload
    if kind == VAR:
        return env[payload]
    if kind == STATE:
        return slots[payload]
    return [resolve(inner, env, slots) for inner in payload]
