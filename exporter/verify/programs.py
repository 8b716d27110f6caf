"""Loading the programs verification runs: each weight read once, and kept for its next reader.

coremltools' loader reads a weight blob again for every function that uses it: prefill and decode
hold the same weights, so a package's weights were read and held twice; it also unpacks int4 blobs
at ~8 ns an element, twice NumPy's time. The executor runs the packages, then the de-quantized
reference reads the same packages' weights: a ProgramShelf keeps the programs for it, since loading
a 3B chunk takes 20-30 s.
"""

from __future__ import annotations

import os
import struct
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from exporter.coreml.package import load_program
from exporter.memory import collect

BLOB_SENTINEL = 0xDEADBEEF
BLOB_METADATA = struct.Struct("<IIQQ")  # sentinel, storage dtype, size in bytes, offset of the data


@contextmanager
def blobs_read_once():
    """Inside the block, coremltools' program loader returns the same array for every use of one blob, and
    reads int4 and uint4 blobs with NumPy."""
    from coremltools.converters.mil.frontend.milproto import load as milproto
    from coremltools.converters.mil.mil import types

    original_value, original_file_value = milproto._load_value, milproto._load_file_value
    loaded = {}

    def load_value(context, value_spec):
        if value_spec.WhichOneof("value") != "blobFileValue":
            return original_value(context, value_spec)
        key = value_spec.SerializeToString()  # the blob's file, offset, dtype and shape
        if key not in loaded:
            loaded[key] = original_value(context, value_spec)
        return loaded[key]

    def load_file_value(context, spec, dtype):
        if dtype in (types.int4, types.uint4):
            path = os.path.join(context.weights_dir, spec.fileName.split("/")[-1])
            values = nibbles(path, spec.offset, signed=dtype == types.int4)
            if values is not None:
                return values
        return original_file_value(context, spec, dtype)

    milproto._load_value, milproto._load_file_value = load_value, load_file_value
    try:
        yield
    finally:
        milproto._load_value, milproto._load_file_value = original_value, original_file_value


def nibbles(path: str, offset: int, signed: bool) -> np.ndarray | None:
    """A 4-bit blob of a Core ML weight file unpacked as coremltools does (low nibble first, int8 or uint8);
    None when the metadata at `offset` is not a blob's (coremltools then reads it, or says what is wrong)."""
    with open(path, "rb") as file:
        file.seek(offset)
        header = file.read(BLOB_METADATA.size)
    if len(header) < BLOB_METADATA.size:
        return None
    sentinel, _, size, data_offset = BLOB_METADATA.unpack(header)
    if sentinel != BLOB_SENTINEL:
        return None
    packed = np.fromfile(path, np.uint8, count=size, offset=data_offset)
    values = np.empty(2 * packed.size, np.uint8)
    values[0::2], values[1::2] = packed & 15, packed >> 4
    return (values ^ 8).view(np.int8) - np.int8(8) if signed else values  # two's complement of 4 bits


def read_program(package):
    """The pymil program of a saved package, each of its weight blobs read once."""
    with blobs_read_once():
        return load_program(package)


class ProgramShelf:
    """Loads programs and keeps them for whoever reads the same packages next, until taken or released."""

    def __init__(self):
        self.programs = {}

    def load(self, package):
        """The package's program, kept on the shelf."""
        path = Path(package).resolve()
        if path not in self.programs:
            self.programs[path] = read_program(path)
        return self.programs[path]

    def take(self, package):
        """The package's program, off the shelf when it is there."""
        program = self.programs.pop(Path(package).resolve(), None)
        return program if program is not None else read_program(package)

    def release(self) -> None:
        if self.programs:
            self.programs.clear()
            collect()  # pymil ops hold their values in reference cycles
