"""Core ML states during a call, and the kernels that read and replace them."""

from __future__ import annotations

import numpy as np

from exporter.verify.kernels.registry import register


class StateSlot:
    """One Core ML state during a call: what `read_state` sees and `coreml_update_state` replaces."""

    def __init__(self, name: str, values: dict[str, np.ndarray], dtype: np.dtype):
        self.name = name
        self._values = values
        self.dtype = dtype

    def read(self) -> np.ndarray:
        return self._values[self.name]

    def write(self, value: np.ndarray) -> None:
        self._values[self.name] = np.asarray(value, dtype=self.dtype)


@register("read_state")
def read_state(op, input: StateSlot):
    return input.read()  # no copy needed: kernels never write into their inputs


@register("coreml_update_state")
def coreml_update_state(op, state: StateSlot, value):
    state.write(value)
    return value
