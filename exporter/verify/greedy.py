"""The reference's greedy continuation of a prompt, its logits at every position and its activation range.

Decoding token by token reads every weight once per token. A reference too big to hold in float32 is
streamed (exporter.model.streamed): its seeded weights are generated again, or its checkpoint read
again, on each of those passes, ~25 s a pass for the 3B model. So a streamed reference is run as:

- a float16 copy of the model, built once, drafts the continuation token by token;
- one float32 pass over the prompt and the drafted tokens gives the reference's logits at every
  position (a causal pass gives each row the logits of its prefix, as decoding one token at a time
  does, up to float32 rounding) and records the activation range (exporter.model.preflight);
- where a drafted token is not the reference's own greedy choice, that choice replaces it, the rest
  is drafted again and the pass repeated. The tokens are the reference's greedy continuation however
  the draft does; a good draft only saves passes (float16 rounding rarely flips a top-1).

A held reference decodes token by token as before: its passes cost no reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from exporter.model.load import whole_model
from exporter.model.openelm import KVCache, OpenELM
from exporter.model.preflight import RangeReport, measure
from exporter.model.streamed import streamed_source
from exporter.verify.reference import reference_run


@dataclass
class ReferenceRun:
    tokens: list[int]  # the prompt and the reference's greedy continuation
    logits: np.ndarray  # [len(tokens), vocab] float32: row i predicts token i + 1
    activation_range: RangeReport  # over `tokens`
    checks: int = 0  # float32 passes that checked drafts (0: decoded token by token)


def run_reference(model: OpenELM, prompt: list[int], steps: int) -> ReferenceRun:
    """The reference's greedy continuation of `prompt` by `steps` tokens, its logits and activation range."""
    source = streamed_source(model)
    if source is None or len(prompt) + steps > model.config.max_context_length:
        tokens, logits = reference_run(model, prompt, steps)
        return ReferenceRun(tokens, logits, measure(model, tokens))
    copies = []  # the float16 copy, built when a first token is to be drafted

    def draft(tokens: list[int], count: int) -> list[int]:
        if count > 0 and not copies:
            copies.append(whole_model(model.config, source, torch.float16))
        return greedy_tokens(copies[0], tokens, count) if count > 0 else list(tokens)

    return checked_drafts(model, draft, prompt, steps)


def checked_drafts(model: OpenELM, draft, prompt: list[int], steps: int) -> ReferenceRun:
    """Greedy decoding of `model` by checking drafts: draft(tokens, count) continues `tokens` by `count`
    tokens; each check is one pass of `model` over the whole sequence."""
    tokens = draft(list(prompt), steps)
    settled, checks = len(prompt), 0  # tokens before `settled` are the reference's own
    while True:
        logits, ranges = logits_and_range(model, tokens)
        checks += 1
        chosen = logits[settled - 1 : len(tokens) - 1].argmax(-1)  # the reference's pick for each later token
        wrong = np.flatnonzero(chosen != np.asarray(tokens[settled:]))
        if not wrong.size:
            return ReferenceRun(tokens, logits, ranges, checks)
        settled += int(wrong[0])
        tokens = tokens[:settled] + [int(chosen[wrong[0]])]
        settled += 1
        tokens = draft(tokens, len(prompt) + steps - len(tokens))


@torch.no_grad()
def greedy_tokens(model: OpenELM, tokens: list[int], count: int) -> list[int]:
    """`tokens` continued greedily by `count` tokens."""
    tokens = list(tokens)
    if count <= 0:
        return tokens
    cache = KVCache(model.config.num_transformer_layers)
    logits = model(torch.tensor([tokens]), cache)[0, -1]
    for index in range(count):
        tokens.append(int(logits.argmax()))
        if index + 1 < count:
            logits = model(torch.tensor([tokens[-1:]]), cache)[0, -1]
    return tokens


def logits_and_range(model: OpenELM, tokens: list[int]) -> tuple[np.ndarray, RangeReport]:
    """One causal pass over `tokens`: the logits at every position, and the activation range it records."""
    rows = []
    hook = model.register_forward_hook(lambda module, args, out: rows.append(out[0].float()))
    try:
        ranges = measure(model, tokens)  # one window: the tokens fit the context
    finally:
        hook.remove()
    return torch.cat(rows).numpy(), ranges
