"""Run a saved Core ML ML program on any OS, with float16 storage, the way an app calls it.

Core ML itself only runs on Apple platforms, so the program is read back with coremltools'
milproto loader and executed op by op with the NumPy kernels of `exporter.verify.ops`:

    executor = ProgramExecutor("model.mlpackage")
    state = executor.new_state()
    logits = executor.run("prefill", {"input_ids": ids, "position": pos}, state)["logits"]

Every op output is stored in the dtype the program declares (float16 activations overflow to
±inf as on device); arithmetic happens in float32. States persist in the caller's `state` dict
across calls. Constants (and compressed weights, expanded once) are shared by all functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from exporter.coreml.package import load_program
from exporter.verify.ops import OPS, ExecutorError, OpInfo, StateSlot, UnsupportedOpError

__all__ = ["ExecutorError", "ExecutorStats", "ProgramExecutor", "TensorSignature", "UnsupportedOpError"]

# Input bindings of a compiled op: where each input value comes from at run time.
CONST, VAR, STATE, TUPLE = "const", "var", "state", "tuple"
Binding = tuple  # (CONST, value) | (VAR, var name) | (STATE, state name) | (TUPLE, [bindings])

SMALL_CONSTANT_BYTES = 256  # below this a constant's bytes are its own key; above, a digest


@dataclass(frozen=True)
class TensorSignature:
    """One declared input, output or state of a function."""

    name: str
    shape: tuple  # ints; a symbol (flexible dimension) accepts any size
    dtype: np.dtype


@dataclass
class ExecutorStats:
    load_seconds: float = 0.0
    unique_constants: int = 0  # after sharing identical constants between functions
    expanded_weights: int = 0  # constexpr ops actually expanded (shared ones count once)
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ops_executed: int = 0
    run_seconds: float = 0.0
    seconds_by_op_type: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def summary(self) -> str:
        slowest = sorted(self.seconds_by_op_type.items(), key=lambda kv: -kv[1])[:5]
        return (
            f"loaded in {self.load_seconds:.1f}s ({self.unique_constants} constants, "
            f"{self.expanded_weights} compressed weights expanded); {sum(self.calls.values())} calls, "
            f"{self.ops_executed} ops in {self.run_seconds:.2f}s; slowest: "
            + ", ".join(f"{name} {seconds:.2f}s" for name, seconds in slowest)
        )


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
            array = array.astype(dtype)
    if not shape_matches(array.shape, shape):
        raise ExecutorError(f"op {op.name!r} ({op.op_type}) produced shape {array.shape}, program declares {shape}")
    return array


LARGE_CONSTANT_ELEMENTS = 1 << 20


def compute_form(value, keep_large_float16: bool = False):
    """Constants are kept in compute precision: float16 becomes an exact float32 copy, once.

    keep_large_float16: weight-sized float16 constants stay float16 (half the memory; NumPy widens
    them to float32 exactly inside each op, so results are identical, only slower): for models
    whose float32 weights would not fit next to everything else verification holds.
    """
    if isinstance(value, np.ndarray) and value.dtype == np.float16:
        if keep_large_float16 and value.size >= LARGE_CONSTANT_ELEMENTS:
            return value
        return value.astype(np.float32)
    if isinstance(value, np.float16):
        return np.float32(value)
    return value


# --- constants ----------------------------------------------------------------------------------


class ConstantPool:
    """Constants and expanded compressed weights, shared across functions by content.

    prefill and decode load separate copies of the same weights; keyed by a digest of their bytes,
    both functions bind the same float32 array, and each compressed weight is expanded once.
    """

    def __init__(self, keep_large_float16: bool = False):
        self._values: dict[tuple, Any] = {}
        self.expanded = 0
        self.keep_large_float16 = keep_large_float16

    @staticmethod
    def key_of(value) -> tuple:
        if isinstance(value, (np.ndarray, np.generic)):
            array = np.asarray(value)  # keeps 0-d: a scalar and a 1-element vector are different constants
            if array.nbytes <= SMALL_CONSTANT_BYTES:
                data = array.tobytes()
            else:
                data = hashlib.blake2b(np.ascontiguousarray(array).data, digest_size=20).digest()
            return ("array", array.dtype.str, array.shape, data)
        return ("python", type(value).__name__, repr(value))

    def constant(self, value) -> tuple[tuple, Any]:
        key = self.key_of(value)
        if key not in self._values:
            self._values[key] = compute_form(value, self.keep_large_float16)
        return key, self._values[key]

    def expanded_weight(self, op, input_keys: dict[str, tuple], inputs: dict[str, Any]) -> tuple[tuple, list]:
        """The outputs of a constexpr op (stored in their declared dtypes, kept in compute form)."""
        key = ("constexpr", op.op_type, tuple(sorted(input_keys.items())))
        if key not in self._values:
            info = OpInfo.of(op)
            values = execute(info, OPS[op.op_type], inputs)
            self._values[key] = [
                compute_form(store(value, declared_dtype(var), declared_shape(var), info), self.keep_large_float16)
                for value, var in zip(values, op.outputs)
            ]
            self.expanded += 1
        return key, self._values[key]

    def __len__(self) -> int:
        return len(self._values)


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


def schedule_frees(steps: list[Step], outputs: list[tuple[TensorSignature, Binding]]) -> None:
    """Drop each value after its last reader, so large activations do not pile up during a call."""

    def var_names(b: Binding):
        if b[0] == VAR:
            yield b[1]
        elif b[0] == TUPLE:
            for inner in b[1]:
                yield from var_names(inner)

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


_BLAS_CONTROLLER = None


def single_threaded_numpy_blas():
    """NumPy's OpenBLAS on one thread while a call runs.

    Its worker threads sleep between the many small products of a call and waking them cost about
    1 ms per product on a busy 2-core machine; large products go to torch (`ops.blas_matmul`).
    """
    global _BLAS_CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # only a speed concern
        return contextlib.nullcontext()
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


# --- the executor ---------------------------------------------------------------------------------


class ProgramExecutor:
    """Executes the functions of an ML program with NumPy, float16 storage and persistent states."""

    def __init__(self, mlpackage_path, keep_large_float16: bool = False):
        started = time.perf_counter()
        self._init_from_program(load_program(mlpackage_path), started, keep_large_float16)

    @classmethod
    def from_program(cls, program) -> "ProgramExecutor":
        """An executor for an in-memory pymil program (e.g. one built with `mb.program`)."""
        executor = cls.__new__(cls)
        executor._init_from_program(program, time.perf_counter())
        return executor

    def _init_from_program(self, program, started: float, keep_large_float16: bool = False) -> None:
        self.stats = ExecutorStats()
        pool = ConstantPool(keep_large_float16)
        self._plans = {name: compile_function(name, f, pool) for name, f in program.functions.items()}
        self.stats.unique_constants = len(pool)
        self.stats.expanded_weights = pool.expanded
        self.stats.load_seconds = time.perf_counter() - started

    # --- signatures -----------------------------------------------------------------------------

    @property
    def functions(self) -> list[str]:
        return list(self._plans)

    def _plan(self, function: str) -> FunctionPlan:
        if function not in self._plans:
            raise ExecutorError(f"no function {function!r} in the program; it has: {', '.join(self._plans)}")
        return self._plans[function]

    def function_inputs(self, function: str) -> list[TensorSignature]:
        return list(self._plan(function).inputs)

    def function_outputs(self, function: str) -> list[TensorSignature]:
        return [sig for sig, _ in self._plan(function).outputs]

    def function_states(self, function: str) -> list[TensorSignature]:
        return list(self._plan(function).states)

    def new_state(self, function: str | None = None) -> dict[str, np.ndarray]:
        """Zeroed states in their declared shape and dtype (float16), for `function` or all functions."""
        plans = [self._plan(function)] if function is not None else list(self._plans.values())
        declared: dict[str, TensorSignature] = {}
        for plan in plans:
            for sig in plan.states:
                if sig.name in declared and declared[sig.name] != sig:
                    raise ExecutorError(f"state {sig.name!r} is declared differently by two functions")
                declared[sig.name] = sig
        return {name: np.zeros(sig.shape, dtype=sig.dtype) for name, sig in declared.items()}

    # --- running --------------------------------------------------------------------------------

    def run(self, function: str, inputs: dict[str, np.ndarray], state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One prediction: executes `function`'s ops in order and returns its outputs.

        `state` is updated in place (same arrays, new contents) for every state the function
        writes, so consecutive calls see each other's KV cache exactly like an app's MLState.
        """
        plan = self._plan(function)
        env = self._checked_inputs(plan, inputs)
        current = self._checked_states(plan, state)  # state name -> value the next read_state sees
        slots = {sig.name: StateSlot(sig.name, current, sig.dtype) for sig in plan.states}
        by_type = self.stats.seconds_by_op_type
        started = time.perf_counter()
        with single_threaded_numpy_blas():
            self._execute_steps(plan, env, slots, by_type)
        outputs = {sig.name: np.array(resolve(b, env, slots), dtype=sig.dtype) for sig, b in plan.outputs}
        self._write_back(state, current)
        self.stats.calls[function] += 1
        self.stats.ops_executed += len(plan.steps)
        self.stats.run_seconds += time.perf_counter() - started
        return outputs

    @staticmethod
    def _execute_steps(plan: FunctionPlan, env: dict, slots: dict, by_type: dict) -> None:
        for step in plan.steps:
            args = {k: resolve(b, env, slots) for k, b in step.args.items()}
            op_started = time.perf_counter()
            values = execute(step.op, step.kernel, args)
            for (name, dtype, shape), value in zip(step.outputs, values):
                env[name] = store(value, dtype, shape, step.op)
            for name in step.free_after:
                del env[name]
            by_type[step.op.op_type] += time.perf_counter() - op_started

    @staticmethod
    def _checked_inputs(plan: FunctionPlan, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        expected = {sig.name: sig for sig in plan.inputs}
        missing = sorted(set(expected) - set(inputs))
        unknown = sorted(set(inputs) - set(expected))
        if missing or unknown:
            states = {sig.name for sig in plan.states}
            hint = " (states go in the `state` argument)" if states & set(unknown) else ""
            raise ExecutorError(
                f"function {plan.name!r} takes inputs {sorted(expected)}; missing {missing}, unknown {unknown}{hint}"
            )
        env = {}
        for name, sig in expected.items():
            value = inputs[name]
            if not isinstance(value, (np.ndarray, np.generic)):
                raise ExecutorError(f"input {name!r} must be a NumPy array of {sig.dtype}, got {type(value).__name__}")
            value = np.asarray(value)
            if value.dtype != sig.dtype:
                raise ExecutorError(f"input {name!r} must be {sig.dtype}, got {value.dtype}")
            if not shape_matches(value.shape, sig.shape):
                raise ExecutorError(f"input {name!r} must have shape {sig.shape}, got {value.shape}")
            env[name] = value
        return env

    @staticmethod
    def _checked_states(plan: FunctionPlan, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        current = {}
        for sig in plan.states:
            if sig.name not in state:
                raise ExecutorError(f"function {plan.name!r} needs state {sig.name!r}; create states with new_state()")
            value = state[sig.name]
            well_formed = isinstance(value, np.ndarray) and value.dtype == sig.dtype
            if not well_formed or not shape_matches(value.shape, sig.shape):
                got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
                raise ExecutorError(f"state {sig.name!r} must be a {sig.dtype} array of shape {sig.shape}, got {got}")
            if not value.flags.writeable:
                raise ExecutorError(f"state {sig.name!r} is read-only; the executor updates states in place")
            current[sig.name] = value
        return current

    @staticmethod
    def _write_back(state: dict[str, np.ndarray], current: dict[str, np.ndarray]) -> None:
        """Copy each state's final value into the caller's array (keeping the caller's arrays)."""
        changed = {name: value for name, value in current.items() if value is not state[name]}
        callers = [state[name] for name in current]
        for name, value in changed.items():
            if any(np.may_share_memory(value, array) for array in callers):
                changed[name] = value.copy()  # e.g. a state set to another state's old value
        for name, value in changed.items():
            np.copyto(state[name], value)
