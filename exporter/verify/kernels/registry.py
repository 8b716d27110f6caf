"""The kernel registry (`OPS`), the errors kernels raise, and what a kernel knows about its op."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from exporter.errors import ExportError

OPS: dict[str, Callable] = {}


class ExecutorError(ExportError):
    """The program cannot be executed as given: bad inputs, or an op failed."""


class UnsupportedOpError(ExecutorError):
    """The program uses an op type that has no kernel here; executing it anyway would be a guess."""

    def __init__(self, op_type: str, op_name: str):
        super().__init__(f"op type {op_type!r} (op {op_name!r}) has no NumPy kernel; add one to exporter/verify/kernels/")
        self.op_type = op_type
        self.op_name = op_name


def register(*op_types: str):
    def decorate(kernel: Callable) -> Callable:
        for op_type in op_types:
            OPS[op_type] = kernel
        return kernel

    return decorate


@dataclass(frozen=True)
class OpInfo:
    """What a kernel may know about its op besides its input values.

    The executor keeps this instead of the pymil op, so the loaded program (and its float16
    weights) can be freed once the functions are compiled.
    """

    op_type: str
    name: str
    opset: int  # iOS opset of the op's definition (coremltools targets compare as ints); 0: unversioned
    output_count: int
    input_dtypes: dict  # declared NumPy dtype of each tensor input, by input name

    @classmethod
    def of(cls, op) -> "OpInfo":
        from coremltools.converters.mil.mil import types

        try:
            opset = int(op.opset_version)
        except Exception:  # dialect ops (coreml_update_state) are not versioned
            opset = 0
        dtypes = {}
        for name, var in op.inputs.items():
            if not isinstance(var, (list, tuple)) and (types.is_tensor(var.sym_type) or types.is_scalar(var.sym_type)):
                dtypes[name] = np.dtype(types.nptype_from_builtin(var.dtype))
        return cls(op.op_type, op.name, opset, len(op.outputs), dtypes)


@functools.cache
def _ios17() -> int:
    import coremltools as ct

    return int(ct.target.iOS17)


def ios17_or_later(op: OpInfo) -> bool:
    return op.opset >= _ios17()
