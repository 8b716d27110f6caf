"""Export the graph's prefill and decode functions to one Core AI program (coreai-torch), weights stored once.

The same `StatefulOpenELM` the Core ML backend traces, built `exportable` (cache rows written by
index, which `torch.export` accepts), exported for each call shape and handed to coreai-torch as
two entrypoints of one program that share the KV-cache states and every weight.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings

import torch

from exporter.coreai.runtime import require_coreai
from exporter.graph.chunks import Chunk
from exporter.graph.functions import (
    GraphSettings,
    build_module,
    example_inputs,
    graph_functions,
    input_specs,
    output_name,
    state_shapes,
)
from exporter.graph.signature import STATE_NAMES
from exporter.model.openelm import OpenELM

# Ops that only re-view a parameter: a weight constant's torch node leads back to its parameter through them.
_VIEW_OPS = {"permute", "t", "transpose", "view", "reshape", "_to_copy", "alias", "expand", "unsqueeze", "clone"}


def export_function(module: torch.nn.Module):
    """torch.export of one call shape, decomposed to the ops coreai-torch converts."""
    coreai_torch = require_coreai("coreai_torch")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(module.eval(), example_inputs(module))
        return program.run_decompositions(coreai_torch.get_decomp_table())


def parameter_nodes(program) -> dict[str, str]:
    """{torch node name: weight name} for the nodes that are a parameter or a view of one (a linear's
    transposed weight): the names coreai-torch records in each constant's location."""
    signature = program.graph_signature
    sources = {**signature.inputs_to_parameters, **signature.inputs_to_buffers}
    names = {}
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in sources:
            names[node.name] = sources[node.name].replace(".", "_")  # the program names of exporter.model.names
        elif node.op == "call_function" and node.args and getattr(node.args[0], "name", None) in names:
            op = node.target.__name__.split(".")[0]
            if op in _VIEW_OPS or op in ("embedding", "index"):  # a lookup's constant is its table
                names[node.name] = names[node.args[0].name]
        elif node.op == "call_function" and node.target.__name__.split(".")[0] == "convolution":
            weight = getattr(node.args[1], "name", None)  # the ane target's 1x1 conv: its constant is the weight
            if weight in names:
                names[node.name] = names[weight]
    return names


_ENTRYPOINT = re.compile(r" in @(\w+)")
_IDENTIFIERS = re.compile(r'identifiers = \["([^"]+)"')


def location_key(op) -> tuple[str, str] | None:
    """(entrypoint, torch node name) of an op's location, as coreai-torch writes it; None when it has none."""
    text = str(op.location)
    entrypoint, identifier = _ENTRYPOINT.search(text), _IDENTIFIERS.search(text)
    return (entrypoint[1], identifier[1]) if entrypoint and identifier else None


class ConvertedProgram:
    """One Core AI program (prefill and decode) and the weight name of each of its weight constants."""

    def __init__(self, program, locations: dict[tuple[str, str], str]):
        self.program = program
        self.locations = locations  # (entrypoint, torch node) -> weight name

    def weight_name(self, op) -> str | None:
        key = location_key(op)
        return None if key is None else self.locations.get(key)


def convert_functions(model: OpenELM, settings: GraphSettings, prefill_length: int, chunk: Chunk | None = None,
                      functions: tuple[str, ...] | None = None) -> ConvertedProgram:
    """The chunk's functions (exporter.graph.functions: prefill and decode; the ane target's embed functions in
    the first chunk) of `model` (or its `chunk`) as the entrypoints of one program (`functions`: a subset, to
    measure what each entrypoint costs)."""
    coreai_torch = require_coreai("coreai_torch")
    converter = coreai_torch.TorchConverter()
    locations = {}
    chunk = chunk or Chunk.whole(model.config.num_transformer_layers)
    for function in graph_functions(settings.target, chunk, prefill_length, settings.verify_length):
        if functions is not None and function.name not in functions:
            continue
        module = build_module(function, model, settings, chunk, exportable=True)
        program = export_function(module)
        locations.update({(function.name, node): name for node, name in parameter_nodes(program).items()})
        states = list(STATE_NAMES) if state_shapes(module) else []
        converter.add_exported_program(program, input_names=[name for name, _, _ in input_specs(module)],
                                       output_names=[output_name(module)], state_names=states,
                                       entrypoint_name=function.name)
        del program, module
    # coreai-torch draws a progress line on stdout; elm-export reports its own steps.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return ConvertedProgram(converter.to_coreai(), locations)
