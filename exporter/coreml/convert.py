"""Trace the export module for one call shape and convert it to a Core ML program with states."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from exporter.coreml.lean import lean_conversion, validate
from exporter.graph.chunks import Chunk
from exporter.graph.signature import HIDDEN_IN, HIDDEN_OUT, INPUT_IDS, LOGITS, POSITION, STATE_NAMES
from exporter.graph.stateful import StatefulOpenELM
from exporter.graph.weights import WeightPlan
from exporter.model.openelm import OpenELM


def trace(module: StatefulOpenELM) -> torch.jit.ScriptModule:
    tokens = module.tokens_per_call
    if module.chunk.takes_ids:
        first = torch.zeros((1, tokens), dtype=torch.int32)
    else:
        first = torch.zeros((1, tokens, module.config.model_dim), dtype=torch.float16)
    example = (first, torch.zeros((1,), dtype=torch.int32))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape asserts are static by design
        traced = torch.jit.trace(module.eval(), example, check_trace=False)
    # The tracing run wrote into the caches (inf/NaN with placeholder weights); the states start empty.
    with torch.no_grad():
        traced.key_cache.zero_()
        traced.value_cache.zero_()
    return traced


def convert_module(module: StatefulOpenELM, to_program: bool = False):
    """One Core ML function: `tokens_per_call` tokens at `position`, reading and writing the KV-cache states.

    to_program: return coremltools' in-memory MIL program instead of an MLModel, so weights can be
    filled in and compressed before anything is serialized (see exporter.coreml.fill).
    """
    import coremltools as ct

    traced = trace(module)
    tokens = module.tokens_per_call
    if module.chunk.takes_ids:
        first = ct.TensorType(name=INPUT_IDS, shape=(1, tokens), dtype=np.int32)
    else:  # float16 between chunks: what the Neural Engine computes in anyway
        first = ct.TensorType(name=HIDDEN_IN, shape=(1, tokens, module.config.model_dim), dtype=np.float16)
    output = LOGITS if module.chunk.gives_logits else HIDDEN_OUT
    cache_shape = tuple(traced.key_cache.shape)
    # Same program as plain ct.convert, without its known-answer work (exporter.coreml.lean).
    with lean_conversion(defer_validation=to_program) as pass_pipeline:
        converted = ct.convert(
            traced,
            pass_pipeline=pass_pipeline,
            inputs=[first, ct.TensorType(name=POSITION, shape=(1,), dtype=np.int32)],
            outputs=[ct.TensorType(name=output, dtype=np.float16)],
            states=[
                ct.StateType(wrapped_type=ct.TensorType(shape=cache_shape, dtype=np.float16), name=name)
                for name in STATE_NAMES
            ],
            minimum_deployment_target=ct.target.iOS18,  # Core ML States need iOS 18 / macOS 15
            compute_precision=ct.precision.FLOAT16,  # Neural Engine computes in float16 only
            compute_units=ct.ComputeUnit.CPU_AND_NE,
            skip_model_load=True,  # Linux cannot load Core ML models; the spec is all we need
            convert_to="milinternal" if to_program else "mlprogram",
        )
    if to_program:
        validate(converted)
        from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY

        # The names the saved program will have (dots become underscores), which --quant-map globs match.
        PASS_REGISTRY["mil_backend::sanitize_name_strings"](converted)
    return converted


def convert(model: OpenELM, context_length: int, tokens_per_call: int, to_program: bool = False,
            chunk: Chunk | None = None, weight_plan: WeightPlan | None = None):
    """Convert the export module of `model` (or of its `chunk`) for calls of `tokens_per_call` tokens."""
    module = StatefulOpenELM(model, context_length, tokens_per_call, chunk=chunk, weight_plan=weight_plan)
    return convert_module(module, to_program)
