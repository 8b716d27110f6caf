"""Seeded LoRA adapters in PEFT's layout, for tests and benchmarks: what `peft.get_peft_model(...).save_pretrained`
writes for an OpenELM, with non-zero A and B (PEFT starts B at zero) so that the adapter changes the model."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from exporter.checkpoint.adapters import TARGETS
from exporter.model.lora import module_shapes


def write_peft_adapter(folder, config, rank: int = 4, alpha: float = 8.0, seed: int = 0, targets=None,
                       dora: bool = False, std: float = 0.05, **overrides):
    """A PEFT LoRA folder (adapter_config.json + adapter_model.safetensors, PEFT's names) with seeded, non-zero A and
    B for every targeted module of `config`: what `peft.get_peft_model(...).save_pretrained` writes."""
    targets = list(targets or TARGETS)
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for module, (out, columns) in module_shapes(config).items():
        if module.rsplit(".", 1)[-1] not in targets:
            continue
        key = "base_model.model." + module
        down, up = (torch.randn(shape, generator=generator) * std for shape in ((rank, columns), (out, rank)))
        if module.endswith("token_embeddings"):
            tensors[key + ".lora_embedding_A"], tensors[key + ".lora_embedding_B"] = down, up
        else:
            tensors[key + ".lora_A.weight"], tensors[key + ".lora_B.weight"] = down, up
            if dora:
                tensors[key + ".lora_magnitude_vector"] = 1 + torch.rand(out, generator=generator)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"peft_type": "LORA", "r": rank, "lora_alpha": alpha, "target_modules": targets, "use_dora": dora,
                "bias": "none", "lora_dropout": 0.0, "modules_to_save": None, **overrides}
    (folder / "adapter_config.json").write_text(json.dumps(settings))
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder
