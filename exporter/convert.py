"""Trace the export module for one call shape and convert it to a Core ML program with states."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from exporter.export_module import StatefulOpenELM
from exporter.model import OpenELM

INPUT_IDS, POSITION, LOGITS = "input_ids", "position", "logits"
STATE_NAMES = ("key_cache", "value_cache")


def trace(model: OpenELM, context_length: int, tokens_per_call: int) -> torch.jit.ScriptModule:
    module = StatefulOpenELM(model, context_length, tokens_per_call).eval()
    example = (
        torch.zeros((1, tokens_per_call), dtype=torch.int32),
        torch.zeros((1,), dtype=torch.int32),
    )
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape asserts are static by design
        return torch.jit.trace(module, example, check_trace=False)


def convert(model: OpenELM, context_length: int, tokens_per_call: int):
    """One Core ML function: `tokens_per_call` tokens at `position`, reading and writing the KV-cache states."""
    import coremltools as ct

    traced = trace(model, context_length, tokens_per_call)
    cache_shape = tuple(traced.key_cache.shape)
    return ct.convert(
        traced,
        inputs=[
            ct.TensorType(name=INPUT_IDS, shape=(1, tokens_per_call), dtype=np.int32),
            ct.TensorType(name=POSITION, shape=(1,), dtype=np.int32),
        ],
        outputs=[ct.TensorType(name=LOGITS, dtype=np.float16)],
        states=[
            ct.StateType(wrapped_type=ct.TensorType(shape=cache_shape, dtype=np.float16), name=name)
            for name in STATE_NAMES
        ],
        minimum_deployment_target=ct.target.iOS18,  # Core ML States need iOS 18 / macOS 15
        compute_precision=ct.precision.FLOAT16,  # Neural Engine computes in float16 only
        compute_units=ct.ComputeUnit.CPU_AND_NE,
        skip_model_load=True,  # Linux cannot load Core ML models; the spec is all we need
        convert_to="mlprogram",
    )
