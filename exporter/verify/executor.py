"""Run a saved Core ML ML program on any OS, with float16 storage, the way an app calls it.

Core ML itself only runs on Apple platforms, so the program is read back with coremltools'
milproto loader and executed op by op with the NumPy kernels of `exporter.verify.kernels`:

    executor = ProgramExecutor("model.mlpackage")
    state = executor.new_state()
    logits = executor.run("prefill", {"input_ids": ids, "position": pos}, state)["logits"]

Every op output is stored in the dtype the program declares (float16 activations overflow to
±inf as on device); arithmetic happens in float32. States persist in the caller's `state` dict
across calls. Constants (and compressed weights, expanded once) are shared by all functions.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exporter.verify.constant_pool import ConstantPool
from exporter.verify.in_place import mark_in_place_updates
from exporter.verify.kernels import ExecutorError, StateSlot, UnsupportedOpError
from exporter.verify.program_plan import (
    FunctionPlan,
    TensorSignature,
    compile_function,
    declared_dtype,
    declared_shape,
    execute,
    resolve,
    shape_matches,
    store,
)
from exporter.verify.programs import read_program

__all__ = ["ExecutorError", "ExecutorStats", "ProgramExecutor", "TensorSignature", "UnsupportedOpError"]

# float16 constants of at least this many elements (weights) stay float16 with keep_large_float16.
LARGE_CONSTANT_ELEMENTS = 1 << 20


@dataclass
class ExecutorStats:
    load_seconds: float = 0.0
    unique_constants: int = 0  # after sharing identical constants between functions
    expanded_weights: int = 0  # constexpr ops actually expanded (shared ones count once)
    updates_in_place: int = 0  # slice_update ops that write into their input (exporter.verify.in_place)
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


_BLAS_CONTROLLER = None


def single_threaded_numpy_blas():
    """NumPy's OpenBLAS on one thread while a call runs.

    Its worker threads sleep between the many small products of a call and waking them cost about
    1 ms per product on a busy 2-core machine; large products go to torch
    (`kernels.linear_algebra.blas_matmul`).
    """
    global _BLAS_CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # only a speed concern
        return contextlib.nullcontext()
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def widened_weight_bytes(program) -> int:
    """What a program's weight-sized float16 values take widened to float32 (keep_large_float16 keeps them
    float16). Its functions share their weights: the largest function counts."""

    def of_function(function) -> int:
        total = 0
        for op in function.operations:
            if op.op_type == "const" or op.op_type.startswith("constexpr_"):
                for var in op.outputs:
                    elements = math.prod(declared_shape(var))
                    if declared_dtype(var) == np.float16 and elements >= LARGE_CONSTANT_ELEMENTS:
                        total += 4 * elements
        return total

    return max((of_function(f) for f in program.functions.values()), default=0)


# --- the executor ---------------------------------------------------------------------------------


class ProgramExecutor:
    """Executes the functions of an ML program with NumPy, float16 storage and persistent states."""

    def __init__(self, mlpackage_path, keep_large_float16: bool = False):
        started = time.perf_counter()
        self._init_from_program(read_program(mlpackage_path), started, keep_large_float16)

    @classmethod
    def from_program(cls, program, keep_large_float16: bool = False) -> "ProgramExecutor":
        """An executor for an in-memory pymil program (e.g. one built with `mb.program`, or loaded)."""
        executor = cls.__new__(cls)
        executor._init_from_program(program, time.perf_counter(), keep_large_float16)
        return executor

    def _init_from_program(self, program, started: float, keep_large_float16: bool = False) -> None:
        self.stats = ExecutorStats()
        # Read at construction (not import) time, so tests can lower the threshold for tiny models.
        pool = ConstantPool(LARGE_CONSTANT_ELEMENTS if keep_large_float16 else None)
        self._plans = {name: compile_function(name, f, pool) for name, f in program.functions.items()}
        for plan in self._plans.values():
            self.stats.updates_in_place += mark_in_place_updates(plan)
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
