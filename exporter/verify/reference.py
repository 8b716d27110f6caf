"""The references a package is compared with: the checkpoint it came from, and the package's own weights.

The first is the float32 model of the checkpoint (held, or streamed layer by layer when too big).
The second carries the weights the package really holds, de-quantized by coremltools' own
expansion (`materialized_val_inference`, independent of our executor), so it isolates the error
of the graph from the error of the compression.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from exporter.checkpoint.sources import Source
from exporter.errors import ExportError
from exporter.model.config import OpenELMConfig
from exporter.model.load import open_checkpoint, open_source, whole_model
from exporter.model.names import EMBEDDING, program_name
from exporter.model.openelm import KVCache, OpenELM
from exporter.model.streamed import streamed_model
from exporter.verify.programs import ProgramShelf, read_program

HOLD_LIMIT_BYTES = 3 * 10**9  # a bigger float32 reference is streamed from its checkpoint (OpenELM-1.1B and 3B)
READ_AHEAD = 2  # matrices a streamed reference generates or expands on worker threads while a layer computes


def weight_ops(function) -> dict:
    """Every weight-like constant of a function, keyed by op name: a const, or the constexpr that expands
    compressed data (whose data, scales and tables are not weights themselves)."""
    ops = {}
    for op in function.operations:
        if any(child.op_type.startswith("constexpr_") for child in op.outputs[0].child_ops):
            continue
        if op.op_type.startswith("constexpr_") or (
                op.op_type == "const" and op.outputs[0].val is not None and np.ndim(op.outputs[0].val) >= 1):
            ops[op.name] = op
    return ops


def value_of(op) -> np.ndarray:
    """A weight as the device sees it: de-quantized by coremltools' own expansion."""
    if op.op_type == "constexpr_blockwise_shift_scale" and is_float16_scaled_bytes(op):
        # coremltools' expansion on a float32 scale, rounded once to float16: the same bits as its float16
        # arithmetic (a float16 scale times a 9-bit integer is exact in float32), 2x faster.
        offset = None if op.offset is None else op.offset.val
        values = op.decompress(op.data.val, op.scale.val.astype(np.float32), offset)
        return torch.from_numpy(values).to(torch.float16).numpy()  # NumPy's rounding, faster (read-ahead threads)
    if op.op_type.startswith("constexpr_"):
        return np.asarray(op.materialized_val_inference())
    return np.asarray(op.outputs[0].val)


def is_float16_scaled_bytes(op) -> bool:
    """A float16 scale on 8-bit or narrower integers (and offsets): |data - offset| < 2**9."""
    data, scale = op.data.val, op.scale.val
    offset = None if op.offset is None else op.offset.val
    return (data is not None and scale is not None and scale.dtype == np.float16 and data.dtype.kind in "iu"
            and data.itemsize == 1 and (offset is None or (offset.dtype.kind in "iu" and offset.itemsize == 1)))


def constant_values(function) -> dict[str, np.ndarray]:
    """Every weight-like constant of a function, de-quantized, keyed by op name."""
    return {name: value_of(op) for name, op in weight_ops(function).items()}


def as_expected(value: np.ndarray, shape: tuple) -> np.ndarray:
    """The ane target's layouts of a checkpoint tensor ([out, in, 1, 1] conv weights, (1, D, 1, 1) norm weights)
    as the checkpoint's shape; anything else as it is."""
    if value.shape != shape and value.size == math.prod(shape) and [d for d in value.shape if d != 1] == [
            d for d in shape if d != 1]:
        return value.reshape(shape)
    return value


def find(values: dict, prefix: str):
    for name, value in values.items():
        if name == prefix or (name.startswith(prefix + "_") and not name[len(prefix) + 1 :][:1].isdigit()):
            return value
    return None


class PackageTensors:  # a TensorSource (exporter.checkpoint.tensors)
    """The package's own weights by checkpoint name (float16-rounded, de-quantized), expanded one at a
    time when read, like the checkpoint readers; tensors the program folded away come from `fallback`.

    packages: one package, or the chunks of a split export (their weights together make the model).
    programs: a ProgramShelf holding programs already loaded (exporter.verify.programs).
    """

    def __init__(self, packages, fallback: dict[str, torch.Tensor], config: OpenELMConfig, function: str = "decode",
                 programs: ProgramShelf | None = None):
        packages = [packages] if isinstance(packages, (str, Path)) else list(packages)
        self.where = str(packages[0])
        self.ops = {}
        for package in packages:
            functions = (programs.take(package) if programs else read_program(package)).functions
            # The named function first; the ane target's first chunk holds the table in its embed functions only.
            for name in [function] + [f for f in functions if f != function]:
                self.ops = {**weight_ops(functions[name]), **self.ops}
        self.fallback, self.config = fallback, config
        self.expected = {name: tuple(t.shape) for name, t in fallback.items()}
        self.pieces = []
        while (piece := find(self.ops, f"vocab_pieces_{len(self.pieces)}")) is not None:
            self.pieces.append(piece)
        if not self.pieces:
            raise ExportError(f"{self.where}: no vocabulary weights found; was it written by elm-export?")

    def names(self) -> list[str]:
        return list(self.expected)

    def read(self, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        if name == EMBEDDING:
            table = np.concatenate([value_of(op).reshape(-1, self.config.model_dim) for op in self.pieces])
            return widened(table[: self.config.vocab_size], dtype)
        op = find(self.ops, program_name(name))
        if op is None:
            if name.endswith("proj.weight") or "proj_" in name:
                raise ExportError(f"{self.where}: weight for {name} not found in the program")
            return self.fallback[name].to(dtype)  # a norm weight folded into another op keeps its value
        value = as_expected(value_of(op), self.expected[name])
        if tuple(value.shape) != self.expected[name]:
            raise ExportError(f"{self.where}: {name} has shape {value.shape}, expected {self.expected[name]}")
        return widened(value, dtype)


def widened(value: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """A float16 weight as a new `dtype` tensor, by torch's conversion (exact, and faster than NumPy's)."""
    return torch.from_numpy(np.ascontiguousarray(value)).to(dtype, copy=True)


class CoreAITensors:  # a TensorSource (exporter.checkpoint.tensors)
    """A Core AI export's own weights by checkpoint name (de-quantized from what each .aimodel holds,
    exporter.coreai.weights), found by where export.json says each weight's constant is."""

    def __init__(self, paths: list, chunks: list[dict], fallback: dict[str, torch.Tensor], config: OpenELMConfig):
        from exporter.coreai.package import load_program
        from exporter.coreai.weights import read_weights

        self.values = {}
        for path, chunk in zip(paths, chunks):
            nodes = {name: entry["nodes"] for name, entry in (chunk.get("weights") or {}).items()}
            self.values.update(read_weights(load_program(path), nodes))
        self.where, self.fallback, self.config = str(paths[0]), fallback, config
        self.expected = {name: tuple(t.shape) for name, t in fallback.items()}

    def names(self) -> list[str]:
        return list(self.expected)

    def read(self, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        if name == EMBEDDING:
            pieces = [self.values[f"vocab_pieces_{i}"] for i in range(len(self.values)) if f"vocab_pieces_{i}" in
                      self.values]
            if not pieces:
                raise ExportError(f"{self.where}: no vocabulary weights found; was it written by elm-export?")
            return torch.from_numpy(np.concatenate(pieces)[: self.config.vocab_size]).to(dtype)
        value = self.values.get(program_name(name))
        value = None if value is None else as_expected(value, self.expected[name])
        if value is None:
            if len(self.expected[name]) == 2:
                raise ExportError(f"{self.where}: weight for {name} not found in the model")
            return self.fallback[name].to(dtype)  # norms: float16 constants the export does not compress
        if tuple(value.shape) != self.expected[name]:
            raise ExportError(f"{self.where}: {name} has shape {value.shape}, expected {self.expected[name]}")
        return torch.from_numpy(value).to(dtype)


def dequantized_reference(packages, model: OpenELM, function: str = "decode", stream: bool = False,
                          programs: ProgramShelf | None = None) -> OpenELM:
    """A model whose weights are the package's own (float16-rounded, de-quantized) weights.

    stream: read each matrix from the package when its layer runs instead of holding them all
    (verification of models too big to hold twice). programs: see PackageTensors.
    """
    state = {name: tensor for name, tensor in model.state_dict().items()}
    return reference_of(PackageTensors(packages, state, model.config, function, programs), model.config, stream)


def coreai_dequantized_reference(paths: list, chunks: list[dict], model: OpenELM, stream: bool = False) -> OpenELM:
    """dequantized_reference for a Core AI export: its .aimodels' own weights (CoreAITensors)."""
    return reference_of(CoreAITensors(paths, chunks, model.state_dict(), model.config), model.config, stream)


def reference_of(tensors, config: OpenELMConfig, stream: bool) -> OpenELM:
    return streamed_model(config, tensors, READ_AHEAD) if stream else whole_model(config, tensors)


def source_tensors(manifest: dict, model_dir: Path | None):
    """(config, tensors) of the checkpoint the package came from: --model-dir, or the source export.json records."""
    if model_dir is not None:
        return open_checkpoint(Path(model_dir))
    return open_source(Source.from_dict(manifest.get("source") or {}))


def source_model(manifest: dict, model_dir: Path | None) -> OpenELM:
    """The float32 reference: held in memory, or streamed layer by layer when it is too big to hold."""
    config, tensors = source_tensors(manifest, model_dir)
    if held_bytes(tensors) > HOLD_LIMIT_BYTES:
        return streamed_model(config, tensors, READ_AHEAD)
    return whole_model(config, tensors)


def held_bytes(tensors) -> int:
    return 4 * parameter_count(tensors)


def parameter_count(tensors) -> int:
    return sum(math.prod(shape) for shape in tensors.expected.values())


@torch.no_grad()
def reference_run(model: OpenELM, prompt: list[int], steps: int) -> tuple[list[int], np.ndarray]:
    """Greedy continuation and the logits at every position (prompt and decode), float32."""
    cache = KVCache(model.config.num_transformer_layers)
    logits = model(torch.tensor([prompt]), cache)[0]
    rows, tokens = [logits], list(prompt)
    for _ in range(steps):
        tokens.append(int(rows[-1][-1].argmax()))
        rows.append(model(torch.tensor([[tokens[-1]]]), cache)[0])
    return tokens, torch.cat(rows)[: len(tokens)].float().numpy()


@torch.no_grad()
def logits_for(model: OpenELM, tokens: list[int]) -> np.ndarray:
    """Float32 logits at every position of `tokens`, in one full-sequence pass."""
    return model(torch.tensor([tokens]))[0].float().numpy()
