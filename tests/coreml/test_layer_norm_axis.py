"""The MIL pass that folds transpose → layer_norm(last axis) → transpose into one layer_norm over the moved axis."""

import numpy as np
import torch

from exporter.coreml.layer_norm_axis import fold_layer_norm_transposes, swapped_axis
from exporter.graph.ane_blocks import LAYER_NORM, ChannelNorm


def test_swapped_axis_recognizes_only_a_swap_with_the_last():
    assert swapped_axis([0, 3, 2, 1]) == 1 and swapped_axis([0, 1, 3, 2]) == 2
    assert swapped_axis([0, 2, 3, 1]) is None and swapped_axis([0, 1, 2, 3]) is None


def test_channel_layer_norm_converts_to_one_layer_norm_over_the_channels():
    import coremltools as ct

    class Norm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = ChannelNorm(torch.rand(32) + 0.5, 1e-6, 1, 4, LAYER_NORM)

        def forward(self, x):
            return self.norm.forward(x)

    traced = torch.jit.trace(Norm().eval(), torch.zeros(1, 32, 1, 8))
    program = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=(1, 32, 1, 8), dtype=np.float16)],
                         minimum_deployment_target=ct.target.iOS18, compute_precision=ct.precision.FLOAT16,
                         convert_to="milinternal", skip_model_load=True)
    assert fold_layer_norm_transposes(program) == 1
    ops = [op for op in program.functions["main"].operations if op.op_type != "const"]
    assert [op.op_type for op in ops].count("transpose") == 0
    layer_norm = next(op for op in ops if op.op_type == "layer_norm")
    assert [int(a) for a in layer_norm.axes.val] == [1]
