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
from exporter.graph.signature import FUNCTIONS, HIDDEN_IN, HIDDEN_OUT, INPUT_IDS, LOGITS, POSITION, STATE_NAMES
from exporter.graph.stateful import StatefulOpenELM
from exporter.model.openelm import OpenELM

# Ops that only re-view a parameter: a weight constant's torch node leads back to its parameter through them.
_VIEW_OPS = {"permute", "t", "transpose", "view", "reshape", "_to_copy", "alias", "expand", "unsqueeze", "clone"}


def example_inputs(module: StatefulOpenELM) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = module.tokens_per_call
    if module.chunk.takes_ids:
        first = torch.zeros((1, tokens), dtype=torch.int32)
    else:  # float16 between chunks: what the Neural Engine computes in anyway
        first = torch.zeros((1, tokens, module.config.model_dim), dtype=torch.float16)
    return first, torch.zeros((1,), dtype=torch.int32)


def export_function(module: StatefulOpenELM):
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
            if op in _VIEW_OPS or op == "embedding":  # embedding(table, ids): its constant is the table
                names[node.name] = names[node.args[0].name]
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


def convert_functions(model: OpenELM, context_length: int, prefill_length: int, chunk: Chunk | None = None,
                      functions: tuple[str, ...] = FUNCTIONS) -> ConvertedProgram:
    """prefill (prefill_length tokens) and decode (one token) of `model` (or its `chunk`) as one program
    (`functions`: a subset, to measure what each entrypoint costs)."""
    coreai_torch = require_coreai("coreai_torch")
    converter = coreai_torch.TorchConverter()
    locations = {}
    for function, tokens in zip(FUNCTIONS, (prefill_length, 1)):
        if function not in functions:
            continue
        module = StatefulOpenELM(model, context_length, tokens, chunk=chunk, exportable=True)
        program = export_function(module)
        locations.update({(function, node): name for node, name in parameter_nodes(program).items()})
        first = INPUT_IDS if module.chunk.takes_ids else HIDDEN_IN
        output = LOGITS if module.chunk.gives_logits else HIDDEN_OUT
        converter.add_exported_program(program, input_names=[first, POSITION], output_names=[output],
                                       state_names=list(STATE_NAMES), entrypoint_name=function)
        del program, module
    # coreai-torch draws a progress line on stdout; elm-export reports its own steps.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return ConvertedProgram(converter.to_coreai(), locations)
