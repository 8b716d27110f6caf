"""NumPy kernels for MIL (Core ML ML-program) ops, following each op's documented semantics.

One module per op family; importing this package registers every kernel in `OPS`.

`OPS` maps an op type to a kernel `kernel(op, **inputs)`: `op` is an `OpInfo` (the op's name,
opset version, output count, input dtypes), `inputs` are its input values by MIL input name. Optional
inputs the program leaves out arrive as the kernel's keyword defaults, which mirror the op
definitions in `coremltools/converters/mil/mil/ops/defs/iOS15..iOS18`.

Precision contract (the executor relies on it):
- a kernel receives float inputs as float16 (values the program stored) or float32 (constants,
  which are cached as exact float32 copies of their float16 values);
- arithmetic is done in float32 (`f32` widens float16 exactly), integer math in the integer type;
- the kernel returns its result in compute precision and the executor stores it in the dtype the
  program declares for the output (float16 rounding, ±inf overflow), so kernels never round.
  For +, -, ×, ÷ and sqrt, one float32 operation rounded once to float16 equals the float16
  operation itself (float32 has more than 2·11 + 2 mantissa bits), so those ops are bit-exact.
- kernels never modify an input in place: values are shared freely between ops and states.
"""

from exporter.verify.kernels import (  # noqa: F401  (imported for their @register side effect)
    activations,
    compressed,
    elementwise,
    linear_algebra,
    reductions,
    shapes,
    states,
)
from exporter.verify.kernels.registry import OPS, ExecutorError, OpInfo, UnsupportedOpError
from exporter.verify.kernels.states import StateSlot

__all__ = ["OPS", "ExecutorError", "OpInfo", "StateSlot", "UnsupportedOpError"]
