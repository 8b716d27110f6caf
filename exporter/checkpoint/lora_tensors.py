"""The tensors of a LoRA adapter, whatever wrote it: the low-rank pairs per module, read from safetensors (never a
pickle) and checked for what needs no model (names, ranks, finiteness). exporter.checkpoint.adapters reads PEFT
folders, exporter.checkpoint.corenet_adapters corenet checkpoints; both end here."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from exporter.errors import ExportError

TARGETS = ("token_embeddings", "qkv_proj", "out_proj", "proj_1", "proj_2")  # what an OpenELM adapter may adapt
EMBEDDING_MODULE = "transformer.token_embeddings"
MODULE_PATTERN = re.compile(r"transformer\.(token_embeddings|layers\.(\d+)\.(attn\.qkv_proj|attn\.out_proj|"
                            r"ffn\.proj_1|ffn\.proj_2))")


@dataclass
class LowRank:
    """One adapted module: down [r, in] (the embedding: [r, vocab]), up [out, r], and the scale of up·down."""

    module: str  # the checkpoint's module path, e.g. transformer.layers.0.attn.qkv_proj
    down: torch.Tensor  # PEFT's A
    up: torch.Tensor  # PEFT's B
    scale: float
    magnitude: torch.Tensor | None = None  # DoRA: the norm each output row is rescaled to

    @property
    def rank(self) -> int:
        return self.down.shape[0]

    @property
    def embedding(self) -> bool:
        return self.module == EMBEDDING_MODULE


@dataclass
class Adapter:
    name: str
    folder: Path
    format: str  # peft or corenet
    alpha: float
    modules: dict[str, LowRank] = field(default_factory=dict)
    sha256: str = ""  # of the weights file
    file_bytes: int = 0

    @property
    def dora(self) -> bool:
        return any(m.magnitude is not None for m in self.modules.values())

    @property
    def rank(self) -> int:
        return max(m.rank for m in self.modules.values())

    @property
    def targets(self) -> list[str]:
        return [t for t in TARGETS if any(module.endswith(t) for module in self.modules)]

    def to_dict(self) -> dict:
        return {"format": self.format, "rank": self.rank, "alpha": self.alpha,
                "scale": sorted({m.scale for m in self.modules.values()})[0], "targets": self.targets,
                "dora": self.dora, "modules": len(self.modules),
                "source": {"path": str(self.folder), "sha256": self.sha256, "bytes": self.file_bytes}}


def read_weights(name: str, path: Path) -> tuple[dict[str, torch.Tensor], str, int]:
    """The tensors of a safetensors file (never a pickle), with the file's sha256 and size."""
    try:
        data = path.read_bytes()
        return load_file(str(path)), hashlib.sha256(data).hexdigest(), len(data)
    except (SafetensorError, OSError) as e:
        raise ExportError(f"adapter {name}: {path} is not a readable safetensors file ({e})") from None


def group_tensors(name: str, tensors: dict, prefix: str, adapter_key: str, hyper, rslora: bool) -> dict:
    """{module: LowRank} from flat names `<prefix><module>.<part>[.<adapter_key>][.weight]`."""
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        match = re.fullmatch(re.escape(prefix) + r"(.+?)\.(lora_A|lora_B|lora_embedding_A|lora_embedding_B|"
                             r"lora_magnitude_vector)" + (re.escape("." + adapter_key) if adapter_key else "")
                             + r"(\.weight)?", key)
        if match is None:
            raise ExportError(f"adapter {name}: tensor {key!r} is not a LoRA matrix of an OpenELM module; only "
                              f"{', '.join(TARGETS)} can be adapted")
        module = match[1] if match[1].startswith("transformer.") else "transformer." + match[1]
        if not MODULE_PATTERN.fullmatch(module):
            raise ExportError(f"adapter {name}: unknown target module {match[1]!r}; an OpenELM adapter may target "
                              f"{', '.join(TARGETS)}")
        if not bool(torch.isfinite(tensor).all()):
            raise ExportError(f"adapter {name}: tensor {key!r} contains NaN or Inf values; the adapter is corrupt "
                              "or comes from a diverged run")
        parts.setdefault(module, {})[match[2].removeprefix("lora_").removeprefix("embedding_")] = tensor.float()
    if not parts:
        raise ExportError(f"adapter {name}: its weights hold no LoRA matrices")
    return {module: low_rank(name, module, found, hyper, rslora) for module, found in parts.items()}


def low_rank(name: str, module: str, found: dict, hyper, rslora: bool) -> LowRank:
    if "A" not in found or "B" not in found:
        raise ExportError(f"adapter {name}: {module} has {'A' if 'A' in found else 'B'} without its "
                          f"{'B' if 'A' in found else 'A'} matrix")
    down, up = found["A"], found["B"]
    rank, alpha = hyper(module)
    if down.ndim != 2 or up.ndim != 2 or down.shape[0] != up.shape[1] or down.shape[0] == 0:
        raise ExportError(f"adapter {name}: {module}'s matrices {list(down.shape)} and {list(up.shape)} are not a "
                          "rank-r pair (A [r, in], B [out, r], r ≥ 1)")
    if down.shape[0] != rank:
        raise ExportError(f"adapter {name}: {module} has rank {down.shape[0]}, its config says {rank}")
    scale = alpha / math.sqrt(rank) if rslora else alpha / rank
    return LowRank(module, down, up, scale, found.get("magnitude_vector"))
