"""apple/corenet LoRA checkpoints (projects/openelm/peft_configs): the training YAML and the weights as safetensors.

corenet trains OpenELM with its copy of PEFT's LoRA layers (corenet/third_party/modeling/lora.py) inside its
own model (`token_embeddings`, `layers.N.attn.qkv_proj` ..., no `transformer.` prefix), keyed by adapter name:
`layers.0.attn.qkv_proj.lora_A.lora.weight`. Its checkpoints are saved whole (base weights too) and as pickles
(torch.save): those are refused; convert one with safetensors on a trusted machine. Only the LoRA tensors are
read here; the base comes from the checkpoint being exported.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from exporter.checkpoint.lora_tensors import Adapter, group_tensors, read_weights
from exporter.errors import ExportError

LORA_PART = re.compile(r"\.lora_(A|B|embedding_A|embedding_B|magnitude_vector)\.")


def lora_settings(name: str, folder: Path) -> list[tuple[re.Pattern, dict]]:
    """(module regex, params) of the YAML's `model.lora.config`, in its order (corenet applies the first match)."""
    for path in sorted(folder.glob("*.yaml")):
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise ExportError(f"adapter {name}: {path} is not valid YAML ({e})") from None
        lora = (document.get("model") or {}).get("lora") or {}
        if lora.get("use_lora") and lora.get("config"):
            try:
                return [(re.compile(entry["regex"]), dict(entry.get("params") or {})) for entry in lora["config"]]
            except (KeyError, TypeError, re.error) as e:
                raise ExportError(f"adapter {name}: {path}: model.lora.config is malformed ({e})") from None
    raise ExportError(f"adapter {name}: no YAML in {folder} has model.lora.use_lora with a model.lora.config; "
                      "put the corenet training config beside the weights")


def read_corenet(name: str, folder: Path) -> Adapter:
    settings = lora_settings(name, folder)
    adapters = {params.get("adapter_name", "lora") for _, params in settings}
    if len(adapters) != 1:
        raise ExportError(f"adapter {name}: the corenet config names several adapters {sorted(adapters)}; export "
                          "one checkpoint per adapter")
    tensors, sha256, size = {}, "", 0
    for path in sorted(folder.glob("*.safetensors")):
        more, sha256, more_size = read_weights(name, path)
        tensors.update({key: value for key, value in more.items() if LORA_PART.search(key)})
        size += more_size

    def params_of(module: str) -> dict:
        short = module.removeprefix("transformer.")
        found = next((params for pattern, params in settings if pattern.match(short)), None)
        if found is None:
            raise ExportError(f"adapter {name}: no model.lora.config regex matches {short}")
        if int(found.get("r", 0)) < 1:
            raise ExportError(f"adapter {name}: rank r={found.get('r')!r} for {short}; a LoRA rank must be ≥ 1")
        return found

    def hyper(module: str) -> tuple[int, float]:
        params = params_of(module)
        return int(params["r"]), float(params.get("lora_alpha", params["r"]))

    rslora = any(params.get("use_rslora") for _, params in settings)
    modules = group_tensors(name, tensors, "", adapter_key=adapters.pop(), hyper=hyper, rslora=rslora)
    alpha = float(settings[0][1].get("lora_alpha", settings[0][1].get("r", 1)))
    return Adapter(name, folder, "corenet", alpha, modules, sha256, size)
