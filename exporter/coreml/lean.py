"""coremltools' conversion, minus work whose answer is known in advance: same program, less time and memory.

Each change is scoped to `lean_conversion()` and gives coremltools' own result (tests/coreml/test_lean.py
compares programs op by op, values included):

- float16 overflow check: coremltools builds |w|, a mask, index arrays and a copy of every float32
  const (~25 bytes per weight at once); the const's max and min answer it first.
- float16 underflow check: coremltools flattens (copies) every cast const before seeing that it
  skips consts of 400 values or more; their size answers it first.
- casting a placeholder (one number broadcast to a matrix's shape, exporter.weights): coremltools'
  astype writes out the whole matrix; casting the number keeps it one number, so the placeholders
  cost nothing until the real weights are filled in.
- deduplication across functions: coremltools compares every pair of same-looking consts value by
  value (np.allclose); arrays that are the very same object (prefill and decode share their
  weights) are equal without reading them.
- transpose reduction: a pass that finds nothing to change in the export module's graph (it has
  no transposes to cancel) yet takes an eighth of a conversion; left out of the pass pipeline.
- validation: coremltools re-validates the whole program after each of its ~95 passes (a tenth of
  a conversion); `convert_module` validates the result once, as strictly as the last pass would.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager

import numpy as np

from exporter.model.preflight import FLOAT16_MAX
from exporter.patching import patched


def is_broadcast(value) -> bool:
    """One stored number seen at a matrix's shape (every stride zero)."""
    return isinstance(value, np.ndarray) and value.size > 1 and not any(value.strides)


@contextmanager
def lean_fp16_overflow_check():
    from coremltools.converters.mil.mil.passes.defs.quantization import FP16ComputePrecision

    def lean(full_check):
        def fp16_overflow(op) -> bool:
            for inputs in op.inputs.values():
                for var in inputs if isinstance(inputs, (list, tuple)) else [inputs]:
                    if var.op is not None and var.op.op_type == "const" and var.is_tensor_or_scalar_of(dtype="fp32"):
                        value = np.asarray(var.op.val.val)
                        if is_broadcast(value):
                            value = value[(0,) * value.ndim]  # one number: its max and min
                        if value.size and max(abs(float(value.max())), abs(float(value.min()))) > FLOAT16_MAX:
                            return full_check(op)  # NaN fails the comparison too and lands here, as before
            return False

        return staticmethod(fp16_overflow)

    with patched(FP16ComputePrecision, "fp16_overflow", lean):
        yield


@contextmanager
def lean_fp16_underflow_check():
    from coremltools.converters.mil.mil.passes.defs.quantization import FP16ComputePrecision

    def lean(full_check):
        def check_underflow_to_zero(self, new_var, var):
            if var.val is not None and np.size(var.val) >= 400:
                return  # coremltools skips these too, after copying them
            full_check(self, new_var, var)

        return check_underflow_to_zero

    with patched(FP16ComputePrecision, "_check_underflow_to_zero", lean):
        yield


@contextmanager
def broadcast_preserving_cast():
    from coremltools.converters.mil.mil.ops.defs.iOS15.elementwise_unary import cast
    from coremltools.converters.mil.mil.types.type_mapping import string_to_nptype

    def lean(full_cast):
        def get_cast_value(cls, input_var, dtype_val):
            value = input_var.val
            if is_broadcast(value):
                number = np.asarray(value[(0,) * value.ndim]).astype(string_to_nptype(dtype_val))
                return np.broadcast_to(number, value.shape)
            return full_cast.__func__(cls, input_var, dtype_val)

        return classmethod(get_cast_value)

    with patched(cast, "get_cast_value", lean):
        yield


class NumpyKnowingIdentity:
    """numpy, except that allclose answers at once for an integer array compared with itself, and compares
    integer arrays exactly where its tolerance is below 1 (the same answer, without isclose's float copies:
    the int4 data and palette indices of prefill and decode are equal arrays held as separate copies)."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def allclose(a, b, rtol=1e-05, atol=1e-08, **options):
        integers = all(isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.integer) for x in (a, b))
        if integers and a is b:
            return True  # float arrays still go through allclose: NaN is not close to itself
        if integers and rtol == 0 and atol < 1 and not options and a.shape == b.shape:
            return bool(np.array_equal(a, b))
        return np.allclose(a, b, rtol=rtol, atol=atol, **options)


@contextmanager
def identity_aware_deduplication():
    import importlib

    module = importlib.import_module("coremltools.converters.mil.mil.passes.defs.cleanup.const_deduplication")
    with patched(module, "np", lambda numpy: NumpyKnowingIdentity()):
        yield


@contextmanager
def validation_deferred():
    """Program.validate does nothing inside; call `validate` on the result."""
    from coremltools.converters.mil.mil import Program

    with patched(Program, "validate", lambda full: lambda self, check_essential_scope=False: None):
        yield


def validate(program) -> None:
    """The check coremltools' pipeline ends with (after its last dead-code elimination)."""
    from coremltools.converters.mil.mil import Program

    Program.validate(program, check_essential_scope=True)


UNNEEDED_PASSES = ["common::reduce_transposes"]


@contextmanager
def lean_conversion(defer_validation: bool = False):
    """Inside: coremltools without its known-answer work; yields the pass pipeline to convert with."""
    import coremltools as ct

    pipeline = ct.PassPipeline.DEFAULT
    pipeline.remove_passes(UNNEEDED_PASSES)
    with ExitStack() as stack:
        stack.enter_context(lean_fp16_overflow_check())
        stack.enter_context(lean_fp16_underflow_check())
        stack.enter_context(broadcast_preserving_cast())
        if defer_validation:
            stack.enter_context(validation_deferred())
        yield pipeline
