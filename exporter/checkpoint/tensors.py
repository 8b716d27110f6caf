"""A checkpoint's tensors, read one at a time: from safetensors files, or seeded at the real shapes.

Every tensor source (`TensorSource`) knows the names and shapes it holds (`expected`) and reads
one tensor on demand, so the export can stream weight matrices instead of holding the model.
Only safetensors are read: pickle files (`pytorch_model.bin`) are refused, because unpickling
can run code. Names and shapes are checked against what the caller expects when a reader opens
(from the safetensors headers, without reading data), finiteness when a tensor is read.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from exporter.errors import ExportError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt")
Shapes = dict[str, tuple[int, ...]]


@runtime_checkable
class TensorSource(Protocol):
    """Tensors by name, read one at a time: a checkpoint's files, seeded weights, a package's own weights."""

    expected: Shapes  # every tensor's name and shape

    def names(self) -> list[str]: ...

    def read(self, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor: ...


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a checkpoint: one file, or the shards an index names."""
    index = folder / INDEX_NAME
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise ExportError(f"{index}: not a valid safetensors index ({e}); re-download the checkpoint") from None
        shards = []
        for shard in dict.fromkeys(weight_map.values()):
            path = folder / shard
            if Path(shard).is_absolute() or ".." in Path(shard).parts:
                raise ExportError(f"{index}: shard name {shard!r} points outside the checkpoint folder")
            if not path.is_file():
                raise ExportError(f"{index} names shard {shard!r}, which is missing; re-download the checkpoint")
            shards.append(path)
        return shards
    single = folder / WEIGHTS_NAME
    if single.is_file():
        return [single]
    pickles = sorted(p.name for pattern in PICKLE_PATTERNS for p in folder.glob(pattern))
    if pickles:
        raise ExportError(
            f"{folder} holds only PyTorch pickle weights ({', '.join(pickles)}); they are refused because "
            "unpickling can run arbitrary code: use the checkpoint's model.safetensors (every apple/OpenELM "
            "repo has one) or convert it to safetensors on a trusted machine"
        )
    raise ExportError(f"{folder}: no {WEIGHTS_NAME} or {INDEX_NAME}; is this an OpenELM checkpoint folder?")


class SafetensorsTensors:
    """Random access to a checkpoint's tensors, one at a time, each checked before it is returned.

    `expected`: every name and shape the checkpoint must hold (from its config.json).
    """

    def __init__(self, folder: Path, expected: Shapes):
        self.folder = Path(folder)
        self.expected = dict(expected)
        self._handles, self._where = [], {}
        try:
            for path in weight_files(self.folder):
                handle = safe_open(str(path), framework="pt")
                self._handles.append(handle)
                for name in handle.keys():
                    if name not in self.expected:
                        raise ExportError(
                            f"{path.name}: unexpected tensor {name!r} (not part of an OpenELM with this "
                            "config.json); the weights and config.json do not belong together"
                        )
                    shape = tuple(handle.get_slice(name).get_shape())
                    if shape != self.expected[name]:
                        raise ExportError(
                            f"{path.name}: tensor {name!r} has shape {list(shape)}, expected "
                            f"{list(self.expected[name])} from config.json; the weights and config do not match"
                        )
                    self._where[name] = (path, handle)
        except SafetensorError as e:
            raise ExportError(f"{path}: not a readable safetensors file ({e}); it may be truncated: re-download it"
                              ) from None
        except OSError as e:
            raise ExportError(f"{path}: cannot be read ({e.strerror or e})") from None
        missing = [name for name in self.expected if name not in self._where]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise ExportError(f"checkpoint {self.folder} is missing tensor {missing[0]!r}{more}; re-download the "
                              "checkpoint")

    def names(self) -> list[str]:
        return list(self.expected)

    def read(self, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        path, handle = self._where[name]
        try:
            tensor = handle.get_tensor(name)
        except SafetensorError as e:
            raise ExportError(f"{path}: tensor {name!r} cannot be read ({e}); re-download the checkpoint") from None
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ExportError(
                f"{path.name}: tensor {name!r} contains NaN or Inf values; the checkpoint is "
                "corrupt or was saved from a diverged run"
            )
        return tensor.to(dtype)


class RandomTensors:
    """Seeded weights at the real shapes, generated per tensor: the same values however they are read."""

    def __init__(self, expected: Shapes, seed: int = 0):
        self.expected = dict(expected)
        self.seed = seed

    def names(self) -> list[str]:
        return list(self.expected)

    def read(self, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        shape = self.expected[name]
        if name.endswith("norm.weight"):
            return torch.ones(shape, dtype=dtype)
        # Each tensor has its own generator, so streaming one tensor gives what the whole dict holds.
        digest = hashlib.sha256(f"{self.seed}:{name}".encode()).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
        return torch.randn(shape, generator=generator).mul_(0.02).to(dtype)


class ReadAhead:
    """A TensorSource that reads the tensors of `order` ahead on worker threads while the caller works on
    the one it asked for: generating seeded weights (~8 ns an element) or reading a checkpoint overlaps the
    computing of a pass that reads them in that order (a streamed forward pass). Other reads go straight to
    the source, which must allow reads from several threads (each read of the sources here stands alone)."""

    def __init__(self, tensors: TensorSource, order: list[str], depth: int = 2):
        self.tensors, self.order, self.depth = tensors, list(order), depth
        self.expected = tensors.expected
        self._index = {name: i for i, name in enumerate(self.order)}
        self._pending: dict[tuple, Future] = {}  # (name, dtype) -> its read under way
        self._workers = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="read-ahead")

    def names(self) -> list[str]:
        return self.tensors.names()

    def read(self, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        index = self._index.get(name)
        if index is None:
            return self.tensors.read(name, dtype)
        future = self._pending.pop((name, dtype), None)
        for key in [key for key in self._pending if self._index[key[0]] <= index or key[1] != dtype]:
            self._pending.pop(key).cancel()  # the reads skipped them: not wanted any more
        for following in self.order[index + 1 : index + 1 + self.depth]:
            if (following, dtype) not in self._pending:
                self._pending[following, dtype] = self._workers.submit(self.tensors.read, following, dtype)
        return future.result() if future is not None else self.tensors.read(name, dtype)


def all_tensors(tensors: TensorSource, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Every tensor of a source at once."""
    return {name: tensors.read(name, dtype) for name in tensors.names()}


def save_tensors(folder: Path, hub_config: dict, state: dict[str, torch.Tensor], max_shard_bytes=None):
    """Write a Hub-format folder (config.json + safetensors, sharded when over `max_shard_bytes`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_NAME).write_text(json.dumps(hub_config, indent=2) + "\n")
    state = {k: v.contiguous() for k, v in state.items()}
    if max_shard_bytes is None:
        save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
        return
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        shard_name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / shard_name), metadata={"format": "pt"})
        weight_map.update({name: shard_name for name in shard})
    (folder / INDEX_NAME).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}, indent=2) + "\n")
