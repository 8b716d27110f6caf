"""Which functions an export chunk has for a target, and the module each is traced from (for every backend).

gpu: prefill and decode of exporter.graph.stateful, token ids in, logits out of both.
ane: exporter.graph.ane's body (prefill without logits, decode with) and, in the first chunk, the token
lookup as embed_prefill and embed_decode; all functions of a chunk share every weight and the states.
With a verify length, both targets add verify (that many tokens, logits for every row; ane: and embed_verify),
the speculative decoder's check of drafted tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn

from exporter.graph.adapters import adapted_model, embedding_low_rank, function_name
from exporter.graph.ane import NeuralEngineOpenELM, TokenEmbedding, vocab_parameters
from exporter.graph.chunks import Chunk
from exporter.graph.contract import logit_functions
from exporter.graph.signature import (
    ANE,
    EMBED_FUNCTIONS,
    EMBED_VERIFY,
    FUNCTIONS,
    HIDDEN_IN,
    HIDDEN_OUT,
    INPUT_IDS,
    LOGITS,
    MASK,
    POSITION,
    ROTARY,
    VERIFY,
)
from exporter.graph.stateful import StatefulOpenELM
from exporter.graph.vocab import vocab_split
from exporter.graph.weights import WeightPlan


@dataclass(frozen=True)
class GraphFunction:
    kind: str  # prefill, decode, verify, embed_*: what the function does
    tokens: int  # per call
    embeds: bool  # the token lookup alone (ane), not the body
    adapter: str | None = None  # the LoRA adapter it runs (exporter.graph.adapters), None: the base model

    @property
    def name(self) -> str:
        """The function's name in the package: the kind, with the adapter's name after it."""
        return function_name(self.kind, self.adapter)

    @property
    def logits(self) -> bool:
        """Whether the ane body returns logits (exporter.graph.contract: only decode; prefill is prompt_opt)."""
        return self.kind in logit_functions(ANE)


def graph_functions(target: str, chunk: Chunk, prefill_length: int, verify_length: int = 0,
                    adapters: tuple[str, ...] = ()) -> list[GraphFunction]:
    """prefill, decode (and verify), after their token lookups (ane, first chunk); decode last but verify; then the
    same for each adapter (its own lookups too, which an adapted embedding needs and the others share weights with)."""
    body = [GraphFunction(name, tokens, False) for name, tokens in zip(FUNCTIONS, (prefill_length, 1))]
    embeds = [GraphFunction(name, tokens, True) for name, tokens in zip(EMBED_FUNCTIONS, (prefill_length, 1))]
    if verify_length:
        body.append(GraphFunction(VERIFY, verify_length, False))
        embeds.append(GraphFunction(EMBED_VERIFY, verify_length, True))
    base = embeds + body if target == ANE and chunk.takes_ids else body
    return base + [replace(function, adapter=adapter) for adapter in adapters for function in base]


@dataclass
class GraphSettings:
    """What shapes every function's module: the target and, for ane, each norm's form (exporter.graph.ane_blocks)."""

    target: str
    context_length: int
    norm_forms: dict[str, str] | None = None
    verify_length: int = 0  # tokens per verify call; 0: no verify function
    adapters: dict = field(default_factory=dict)  # {name: exporter.checkpoint.adapters.Adapter}: their functions


def build_module(function: GraphFunction, model, settings: GraphSettings, chunk: Chunk | None = None,
                 weight_plan: WeightPlan | None = None, exportable: bool = False) -> nn.Module:
    """The module one function is traced (Core ML) or exported (Core AI) from."""
    chunk = chunk or Chunk.whole(model.config.num_transformer_layers)
    if function.adapter is not None:
        model = adapted_model(model, settings.adapters[function.adapter], weight_plan)
    if settings.target != ANE:
        return StatefulOpenELM(model, settings.context_length, function.tokens, chunk=chunk, weight_plan=weight_plan,
                               exportable=exportable)
    if function.embeds:
        return TokenEmbedding(vocab_parameters(model, chunk, weight_plan), function.tokens,
                              embedding_low_rank(model, *vocab_split(model.config.vocab_size), weight_plan))
    return NeuralEngineOpenELM(model, settings.context_length, function.tokens, chunk=chunk, weight_plan=weight_plan,
                               exportable=exportable, norm_forms=settings.norm_forms, logits=function.logits)


def input_specs(module: nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    """(name, shape, dtype) of each input, in forward's order."""
    tokens = module.tokens_per_call
    if isinstance(module, TokenEmbedding):
        return [(INPUT_IDS, (1, tokens), torch.int32)]
    config = module.config
    if isinstance(module, StatefulOpenELM) and module.chunk.takes_ids:
        first = (INPUT_IDS, (1, tokens), torch.int32)
    else:  # float16 between chunks: what the Neural Engine computes in anyway
        first = (HIDDEN_IN, (1, tokens, config.model_dim), torch.float16)
    specs = [first, (POSITION, (1,), torch.int32)]
    if isinstance(module, NeuralEngineOpenELM):
        specs += [(ROTARY, (1, tokens, 2 * config.head_dim), torch.float16),
                  (MASK, (1, tokens, module.layout.context_length), torch.float16)]
    return specs


def output_name(module: nn.Module) -> str:
    if isinstance(module, TokenEmbedding):
        return HIDDEN_OUT
    gives_logits = module.chunk.gives_logits and getattr(module, "logits", True)
    return LOGITS if gives_logits else HIDDEN_OUT


def example_inputs(module: nn.Module) -> tuple[torch.Tensor, ...]:
    return tuple(torch.zeros(shape, dtype=dtype) for _, shape, dtype in input_specs(module))


def state_shapes(module: nn.Module) -> list[tuple[int, ...]]:
    """[] for the token lookup, else the key and value caches' shapes."""
    if isinstance(module, TokenEmbedding):
        return []
    return [tuple(module.key_cache.shape), tuple(module.value_cache.shape)]
