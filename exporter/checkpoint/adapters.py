"""LoRA adapters as they come: Hugging Face PEFT folders and apple/corenet LoRA checkpoints, read and checked.

What is checked here needs no model: the files (safetensors only: a pickle is refused, never unpickled), the
method (LoRA, DoRA), ranks, finiteness and which modules are targeted. The shapes are checked against the
model by exporter.model.lora.check_adapter. Every problem is one line that says how to fix it.

PEFT keeps, per adapted module (`base_model.model.` + the module path):
- a Linear: `lora_A.weight` [r, in] and `lora_B.weight` [out, r]; the output gains (x·Aᵀ·Bᵀ)·scale;
- the embedding: `lora_embedding_A` [r, vocab] and `lora_embedding_B` [dim, r]; a token's row gains Aᵀ[id]·Bᵀ·scale;
- DoRA: `lora_magnitude_vector` [out] as well;
scale = alpha / r (alpha / √r with rsLoRA). corenet (third_party/modeling/lora.py, the same layers) names them
`lora_A.<adapter>.weight`, `lora_embedding_A.<adapter>` ..., without `transformer.`, and keeps its
hyperparameters in the training YAML (`model.lora.config`: a regex and the params per module kind).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from exporter.checkpoint.corenet_adapters import read_corenet
from exporter.checkpoint.lora_tensors import (  # noqa: F401 (Adapter, LowRank, TARGETS: this module's API)
    EMBEDDING_MODULE,
    TARGETS,
    Adapter,
    LowRank,
    group_tensors,
    read_weights,
)
from exporter.checkpoint.tensors import PICKLE_PATTERNS
from exporter.errors import ExportError, UsageError

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")
PEFT_CONFIG, PEFT_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."


def parse_adapter_option(value: str) -> tuple[str, Path]:
    """`--adapter NAME=DIR` → (NAME, DIR)."""
    name, sep, folder = value.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise UsageError(f"--adapter {value!r} is not NAME=DIR (e.g. --adapter psalms=path/to/peft-folder)")
    return check_name(name.strip()), Path(folder.strip())


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise UsageError(f"adapter name {name!r} must be 1-32 lowercase letters, digits or _, starting with a "
                         "letter: it becomes part of the function names (prefill_NAME, decode_NAME)")
    return name


def read_adapter(name: str, folder: Path) -> Adapter:
    """The adapter in `folder`: a PEFT folder (adapter_config.json) or a corenet checkpoint (YAML + safetensors)."""
    folder = Path(folder).resolve()  # export.json records where it came from, for elm-verify run from anywhere
    if not folder.is_dir():
        raise ExportError(f"--adapter {name}={folder}: no such folder; pass a PEFT adapter folder "
                          f"({PEFT_CONFIG} + {PEFT_WEIGHTS}) or a corenet LoRA checkpoint folder")
    if (folder / PEFT_CONFIG).is_file():
        return read_peft(name, folder)
    if list(folder.glob("*.yaml")) and list(folder.glob("*.safetensors")):
        return read_corenet(name, folder)
    refuse_pickles(name, folder)
    raise ExportError(f"adapter {name}: {folder} holds neither {PEFT_CONFIG} (a PEFT adapter) nor a corenet YAML "
                      "config with .safetensors weights")


def refuse_pickles(name: str, folder: Path) -> None:
    pickles = sorted(p.name for pattern in PICKLE_PATTERNS for p in folder.glob(pattern))
    if pickles:
        raise ExportError(f"adapter {name}: {folder} holds only pickle weights ({', '.join(pickles)}), refused "
                          "because unpickling can run arbitrary code; save the adapter as safetensors (PEFT: "
                          "save_pretrained(..., safe_serialization=True)) on a trusted machine")


def read_peft(name: str, folder: Path) -> Adapter:
    try:
        config = json.loads((folder / PEFT_CONFIG).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(f"adapter {name}: {folder / PEFT_CONFIG} is not valid JSON ({e})") from None
    check_peft_config(name, config)
    if not (folder / PEFT_WEIGHTS).is_file():
        refuse_pickles(name, folder)
        raise ExportError(f"adapter {name}: {folder} has {PEFT_CONFIG} but no {PEFT_WEIGHTS}")
    tensors, sha256, size = read_weights(name, folder / PEFT_WEIGHTS)
    rslora = bool(config.get("use_rslora"))
    alpha, ranks, alphas = float(config["lora_alpha"]), config.get("rank_pattern") or {}, config.get("alpha_pattern") or {}

    def hyper(module: str) -> tuple[int, float]:
        rank = next((int(r) for key, r in ranks.items() if module.endswith(key)), int(config["r"]))
        return rank, next((float(a) for key, a in alphas.items() if module.endswith(key)), alpha)

    modules = group_tensors(name, tensors, PEFT_PREFIX, adapter_key="", hyper=hyper, rslora=rslora)
    check_targets(name, config.get("target_modules"), modules)
    return Adapter(name, folder, "peft", alpha, modules, sha256, size)


def check_peft_config(name: str, config: dict) -> None:
    """What our export can reproduce exactly; anything else is refused, not silently dropped."""
    kind = config.get("peft_type", "LORA")
    if kind != "LORA":
        raise ExportError(f"adapter {name}: peft_type {kind!r} is not supported; only LoRA (and DoRA) adapters are")
    if not isinstance(config.get("r"), int) or config["r"] < 1:
        raise ExportError(f"adapter {name}: rank r={config.get('r')!r}; a LoRA rank must be a positive integer")
    if not isinstance(config.get("lora_alpha"), (int, float)) or not math.isfinite(config["lora_alpha"]):
        raise ExportError(f"adapter {name}: lora_alpha={config.get('lora_alpha')!r} is not a finite number")
    if config.get("modules_to_save"):
        raise ExportError(f"adapter {name}: modules_to_save {config['modules_to_save']} replaces whole modules, "
                          "which is a model copy, not an adapter; merge it into a checkpoint and export that")
    if config.get("bias", "none") != "none":
        raise ExportError(f"adapter {name}: bias={config['bias']!r} trains biases OpenELM does not have; use "
                          "bias='none'")
    if config.get("fan_in_fan_out"):
        raise ExportError(f"adapter {name}: fan_in_fan_out=true is for GPT-2's Conv1D; OpenELM uses Linear layers")


def check_targets(name: str, targets, modules: dict) -> None:
    """target_modules naming a module OpenELM does not have is an adapter for another model."""
    if isinstance(targets, list):
        unknown = [t for t in targets if t.split(".")[-1] not in TARGETS]
        if unknown:
            raise ExportError(f"adapter {name}: unknown target module {unknown[0]!r} (OpenELM's adaptable modules "
                              f"are {', '.join(TARGETS)}); is this an adapter for another model?")
