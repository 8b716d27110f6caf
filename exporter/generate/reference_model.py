"""The export graph run eagerly in float32 as a `LanguageModel`: what tests and golden files generate with.

One `StatefulOpenELM` per call width (prefill_length, 1 for decode, verify_length), all sharing one key/value
cache, so the calls behave like one exported package's functions sharing its state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from exporter.graph.stateful import StatefulOpenELM
from exporter.model.load import load_checkpoint
from exporter.model.openelm import OpenELM


class ReferenceLanguageModel:
    """A checkpoint folder (or a loaded OpenELM) driven through the export graph, float32 on the CPU."""

    def __init__(self, folder_or_model: Path | str | OpenELM, context_length: int, prefill_length: int,
                 verify_length: int = 0, prefill_gives_logits: bool = True):
        model = folder_or_model if isinstance(folder_or_model, OpenELM) else load_checkpoint(Path(folder_or_model))
        model = model.float().eval()
        self.context_length = context_length
        self.prefill_length = prefill_length
        self.verify_length = verify_length
        self.prefill_gives_logits = prefill_gives_logits
        self.vocab_size = model.config.vocab_size
        widths = {"prefill": prefill_length, "decode": 1}
        if verify_length > 0:
            widths["verify"] = verify_length
        self.graphs = {name: StatefulOpenELM(model, context_length, width, cache_dtype=torch.float32).eval()
                       for name, width in widths.items()}
        shared = self.graphs["prefill"]
        for graph in self.graphs.values():  # one state for every function, as in an exported package
            graph.key_cache, graph.value_cache = shared.key_cache, shared.value_cache

    def reset(self) -> None:
        self.graphs["prefill"].reset_cache()

    def prefill(self, tokens: list[int], position: int) -> np.ndarray:
        rows = self._run("prefill", tokens, position)
        return rows if self.prefill_gives_logits else rows[:0]

    def decode(self, token: int, position: int) -> np.ndarray:
        return self._run("decode", [token], position)[0]

    def verify(self, tokens: list[int], position: int) -> np.ndarray:
        if "verify" not in self.graphs:
            raise ValueError("this model was built without a verify function (verify_length 0)")
        return self._run("verify", tokens, position)

    @torch.no_grad()
    def _run(self, function: str, tokens: list[int], position: int) -> np.ndarray:
        """Feeds `tokens` padded to the function's width; the rows of the given tokens, cut to the vocabulary."""
        graph = self.graphs[function]
        width = graph.tokens_per_call
        if not 1 <= len(tokens) <= width:
            raise ValueError(f"{function} takes 1 to {width} tokens, got {len(tokens)}")
        if not 0 <= position <= self.context_length - width:
            raise ValueError(f"{function} at position {position} would write past the {self.context_length}-token "
                             f"cache (it writes {width} slots)")
        ids = torch.zeros(1, width, dtype=torch.int32)
        ids[0, : len(tokens)] = torch.tensor(tokens, dtype=torch.int32)
        logits = graph(ids, torch.tensor([position], dtype=torch.int32))  # [1, width, pieces, piece_size]
        return logits.flatten(2)[0, : len(tokens), : self.vocab_size].numpy().astype(np.float32, copy=False)
