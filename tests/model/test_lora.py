"""The adapter reference (exporter.model.lora) computes what Hugging Face PEFT computes for the same adapter, on the
OpenELM reference itself: LoRA on every target (the embedding too), rsLoRA, DoRA, and the merge --merge-adapter
bakes in."""

import pytest
import torch

peft = pytest.importorskip("peft")

from exporter.checkpoint.adapters import read_adapter  # noqa: E402
from exporter.model.lora import merged_weight, with_adapter  # noqa: E402
from tests.graph.test_stateful import reference  # noqa: E402
from tests.helpers import small_config  # noqa: E402


def peft_adapter(tmp_path, config, **options):
    """A PEFT model of the reference with non-zero adapter weights, saved by PEFT itself; (PEFT model, our Adapter)."""
    torch.manual_seed(3)
    model = peft.get_peft_model(reference(config), peft.LoraConfig(init_lora_weights=False, **options)).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_embedding_A" in name or "lora_embedding_B" in name:
                parameter.normal_(0, 0.2)  # PEFT starts the embedding's A at zero even without init
    model.save_pretrained(tmp_path)
    return model, read_adapter("style", tmp_path)


@pytest.mark.parametrize("options", [
    dict(r=4, lora_alpha=8, target_modules=["token_embeddings", "qkv_proj", "out_proj", "proj_1", "proj_2"]),
    dict(r=8, lora_alpha=4, target_modules=["qkv_proj", "proj_2"], use_rslora=True),
    dict(r=4, lora_alpha=16, target_modules=["out_proj", "proj_1"], use_dora=True),
])
@torch.no_grad()
def test_the_reference_with_an_adapter_is_what_peft_computes(tmp_path, options):
    config = small_config(num_layers=2, vocab_size=300)
    theirs, adapter = peft_adapter(tmp_path, config, **options)
    base = reference(config)
    ours = with_adapter(base, adapter)
    ids = torch.randint(0, config.vocab_size, (1, 24))
    assert (ours(ids) - theirs(ids)).abs().max() < 1e-4
    assert (base(ids) - theirs(ids)).abs().max() > 1e-2  # the adapter matters: the check above can fail


@pytest.mark.parametrize("dora", [False, True])
@torch.no_grad()
def test_merged_weights_are_peft_merge_and_unload(tmp_path, dora):
    config = small_config(num_layers=2, vocab_size=300)
    theirs, adapter = peft_adapter(tmp_path, config, r=4, lora_alpha=8, target_modules=["qkv_proj", "proj_2"],
                                   use_dora=dora)
    merged = theirs.merge_and_unload()
    base = reference(config)
    for module, pair in adapter.modules.items():
        original = base.get_submodule(module).weight
        assert (merged_weight(original, pair) - merged.get_submodule(module).weight).abs().max() < 1e-5


def test_the_adapted_model_shares_every_base_weight(tmp_path):
    config = small_config(num_layers=2, vocab_size=300)
    _, adapter = peft_adapter(tmp_path, config, r=4, lora_alpha=8, target_modules=["qkv_proj"])
    base = reference(config)
    adapted = with_adapter(base, adapter)
    assert adapted.transformer.layers[0].attn.qkv_proj.weight is base.transformer.layers[0].attn.qkv_proj.weight
    assert adapted.transformer.token_embeddings is base.transformer.token_embeddings
    assert not hasattr(base.transformer.layers[0].attn.qkv_proj, "down")  # the base model itself is untouched
