"""Helpers the tests share: small OpenELM configs with the real layer-wise pattern."""

from __future__ import annotations

from exporter.model.config import OpenELMConfig, expand_layerwise


def small_config(num_layers: int = 4, model_dim: int = 256, head_dim: int = 32, vocab_size: int = 512, **overrides):
    """A few-layer OpenELM whose heads and FFN widths vary per layer like the real ones."""
    layers = expand_layerwise(num_layers, model_dim, head_dim, 4, (0.5, 1.0), (0.5, 4.0))
    fields = dict(
        num_transformer_layers=num_layers,
        model_dim=model_dim,
        head_dim=head_dim,
        vocab_size=vocab_size,
        max_context_length=128,
        **layers,
    )
    fields.update(overrides)
    return OpenELMConfig(**fields)


def write_peft_adapter(folder, config, rank: int = 4, alpha: float = 8.0, seed: int = 0, targets=None,
                       dora: bool = False, std: float = 0.05, **overrides):
    """A PEFT LoRA folder (adapter_config.json + adapter_model.safetensors, PEFT's names) with seeded, non-zero A and
    B for every targeted module of `config`: what `peft.get_peft_model(...).save_pretrained` writes."""
    import json
    from pathlib import Path

    import torch
    from safetensors.torch import save_file

    from exporter.checkpoint.adapters import TARGETS
    from exporter.model.lora import module_shapes

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
