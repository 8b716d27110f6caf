"""The lean float16-overflow check gives coremltools' own answer, op by op."""

import numpy as np
import torch

from exporter.convert import lean_fp16_overflow_check


class Mixed(torch.nn.Module):
    """Constants inside float16's range, past it, and infinite (a mask), as the float16 pass meets them."""

    def __init__(self):
        super().__init__()
        self.register_buffer("small", torch.full((4, 8), 0.5))
        self.register_buffer("large", torch.full((4, 8), 7e4))
        mask = torch.zeros(4, 8)
        mask[:, 4:] = float("-inf")
        self.register_buffer("mask", mask)

    def forward(self, x):
        return (x * self.small + 1) * self.large + self.mask + torch.nn.functional.linear(x, torch.ones(8, 8) * 3)


def converted_dtypes(lean: bool):
    import coremltools as ct

    traced = torch.jit.trace(Mixed().eval(), torch.zeros(4, 8))
    options = dict(inputs=[ct.TensorType(name="x", shape=(4, 8), dtype=np.float32)], convert_to="milinternal",
                   compute_precision=ct.precision.FLOAT16, minimum_deployment_target=ct.target.iOS18)
    if lean:
        with lean_fp16_overflow_check():
            program = ct.convert(traced, **options)
    else:
        program = ct.convert(traced, **options)
    from coremltools.converters.mil.mil import types

    return [(op.op_type, types.builtin_to_string(op.outputs[0].dtype)) for op in program.functions["main"].operations]


def test_same_program_as_coremltools_check():
    from coremltools.converters.mil.mil.passes.defs.quantization import FP16ComputePrecision

    original = FP16ComputePrecision.fp16_overflow
    lean, full = converted_dtypes(True), converted_dtypes(False)
    assert lean == full
    assert any("fp32" in dtype for _, dtype in full)  # the 7e4 constant kept its op in float32
    assert any("fp16" in dtype for _, dtype in full)
    assert FP16ComputePrecision.fp16_overflow is original  # restored after the block
