"""The three calls an app makes of an export (prefill, decode, verify) on any executor, as export.json says to.

`ExportCalls` turns token ids and a position into one function call of a package (or a chain of chunks):
gpu exports take the ids; ane exports get the rotary rows and the mask computed here (exporter.graph.host_inputs),
and their first chunk looks the ids up with its embed function. Logits come back as float32 rows over the
vocabulary. elm-verify's verify-function check and elm-run both drive exports through it.
"""

from __future__ import annotations

import numpy as np

from exporter.graph.adapters import function_name
from exporter.graph.contract import target_of, verify_length_of
from exporter.graph.host_inputs import call_inputs
from exporter.graph.signature import ANE, INPUT_IDS, LOGITS, POSITION


def padded_ids(ids: list[int], length: int) -> np.ndarray:
    padded = np.zeros((1, length), dtype=np.int32)
    padded[0, : len(ids)] = ids
    return padded


def position_of(position: int) -> np.ndarray:
    return np.array([position], np.int32)


class ExportCalls:
    """`executor.run(function, inputs, state)` (a ChunkChain, a RecordedChunk, one executor) driven by tokens."""

    def __init__(self, executor, manifest: dict, adapter: str | None = None):
        self.executor, self.manifest, self.adapter = executor, manifest, adapter  # adapter: its functions run
        self.neural_engine = target_of(manifest) == ANE
        self.vocab_size = manifest["vocab_size"]
        self.prefill_length = manifest["prefill_length"]
        self.verify_length = verify_length_of(manifest)
        self.state = executor.new_state()

    def reset(self) -> None:
        self.state = self.executor.new_state()

    def call(self, function: str, ids: list[int], position: int, length: int) -> np.ndarray | None:
        """`function` on `ids` (padded to its `length` tokens) at `position`: [len(ids), vocab] float32 rows, or
        None when it gives no logits (the ane prefill)."""
        extra = call_inputs(position, length, self.manifest) if self.neural_engine else {
            POSITION: position_of(position)}
        function = function_name(function, self.adapter)
        out = self.executor.run(function, {INPUT_IDS: padded_ids(ids, length), **extra}, self.state)[LOGITS]
        if out is None:
            return None
        return np.asarray(out, np.float32).reshape(length, -1)[: len(ids), : self.vocab_size]

    def prefill(self, ids: list[int], position: int) -> np.ndarray | None:
        return self.call("prefill", ids, position, self.prefill_length)

    def decode(self, token: int, position: int) -> np.ndarray:
        return self.call("decode", [token], position, 1)[0]

    def verify(self, ids: list[int], position: int) -> np.ndarray:
        return self.call("verify", ids, position, self.verify_length)
