"""Trace an export graph module for one call shape and convert it to a Core ML program (with states where it has them)."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from exporter.coreml.layer_norm_axis import fold_layer_norm_transposes
from exporter.coreml.lean import lean_conversion, validate
from exporter.graph.chunks import Chunk
from exporter.graph.functions import example_inputs, input_specs, output_name, state_shapes
from exporter.graph.signature import STATE_NAMES
from exporter.graph.stateful import StatefulOpenELM
from exporter.graph.weights import WeightPlan
from exporter.model.openelm import OpenELM


def trace(module: torch.nn.Module) -> torch.jit.ScriptModule:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape asserts are static by design
        traced = torch.jit.trace(module.eval(), example_inputs(module), check_trace=False)
    # The tracing run wrote into the caches (inf/NaN with placeholder weights); the states start empty.
    with torch.no_grad():
        for name in STATE_NAMES if state_shapes(module) else ():
            getattr(traced, name).zero_()
    return traced


def convert_module(module: torch.nn.Module, to_program: bool = False):
    """One Core ML function of an export graph module (exporter.graph.functions), reading and writing the
    KV-cache states where it has them.

    to_program: return coremltools' in-memory MIL program instead of an MLModel, so weights can be
    filled in and compressed before anything is serialized (see exporter.coreml.fill).
    """
    import coremltools as ct

    traced = trace(module)
    inputs = [ct.TensorType(name=name, shape=shape, dtype=np.int32 if dtype == torch.int32 else np.float16)
              for name, shape, dtype in input_specs(module)]
    states = [ct.StateType(wrapped_type=ct.TensorType(shape=shape, dtype=np.float16), name=name)
              for name, shape in zip(STATE_NAMES, state_shapes(module))]
    # Same program as plain ct.convert, without its known-answer work (exporter.coreml.lean).
    with lean_conversion(defer_validation=to_program) as pass_pipeline:
        converted = ct.convert(
            traced,
            pass_pipeline=pass_pipeline,
            inputs=inputs,
            outputs=[ct.TensorType(name=output_name(module), dtype=np.float16)],
            states=states or None,
            minimum_deployment_target=ct.target.iOS18,  # Core ML States need iOS 18 / macOS 15
            compute_precision=ct.precision.FLOAT16,  # Neural Engine computes in float16 only
            compute_units=ct.ComputeUnit.CPU_AND_NE,
            skip_model_load=True,  # Linux cannot load Core ML models; the spec is all we need
            convert_to="milinternal" if to_program else "mlprogram",
        )
    if to_program:
        validate(converted)
        from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY

        fold_layer_norm_transposes(converted)
        # The names the saved program will have (dots become underscores), which --quant-map globs match.
        PASS_REGISTRY["mil_backend::sanitize_name_strings"](converted)
    return converted


def convert(model: OpenELM, context_length: int, tokens_per_call: int, to_program: bool = False,
            chunk: Chunk | None = None, weight_plan: WeightPlan | None = None):
    """Convert the gpu-target export module of `model` (or of its `chunk`) for calls of `tokens_per_call` tokens."""
    module = StatefulOpenELM(model, context_length, tokens_per_call, chunk=chunk, weight_plan=weight_plan)
    return convert_module(module, to_program)
