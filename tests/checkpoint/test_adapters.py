"""Reading LoRA adapters: PEFT folders and corenet checkpoints give the same low-rank pairs, and every bad adapter
is one line that says what is wrong, before anything is written."""

import json
import pickle

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from exporter.checkpoint.adapters import parse_adapter_option, read_adapter
from exporter.errors import ExportError, UsageError
from exporter.model.lora import check_adapter
from exporter.pipeline_adapters import plan_adapter_options
from tests.helpers import small_config, write_peft_adapter


@pytest.fixture
def config():
    return small_config(num_layers=2, model_dim=64, head_dim=16, vocab_size=300)


def test_peft_folder_gives_each_module_its_pair_and_scale(tmp_path, config):
    adapter = read_adapter("style", write_peft_adapter(tmp_path / "a", config, rank=4, alpha=8))
    assert len(adapter.modules) == 1 + 4 * config.num_transformer_layers
    pair = adapter.modules["transformer.layers.1.ffn.proj_2"]
    assert pair.down.shape == (4, config.ffn_dims[1]) and pair.up.shape == (config.model_dim, 4) and pair.scale == 2.0
    assert adapter.targets == ["token_embeddings", "qkv_proj", "out_proj", "proj_1", "proj_2"]
    check_adapter(adapter, config)


def test_rslora_and_per_module_ranks(tmp_path, config):
    folder = write_peft_adapter(tmp_path / "a", config, rank=4, alpha=8, use_rslora=True, targets=["qkv_proj"])
    assert read_adapter("x", folder).modules["transformer.layers.0.attn.qkv_proj"].scale == 8 / 2  # alpha / √r


def corenet_copy(peft_folder, folder, adapter_name="lora"):
    """The same adapter as corenet saves it: its module names, keyed by adapter name, base weights beside them,
    and the training YAML's model.lora.config."""
    folder.mkdir()
    tensors = {}
    for key, value in load_file(str(peft_folder / "adapter_model.safetensors")).items():
        module, part = key.removeprefix("base_model.model.transformer.").split(".lora_")
        suffix = ".weight" if part.endswith(".weight") else ""
        tensors[f"{module}.lora_{part.removesuffix('.weight')}.{adapter_name}{suffix}"] = value
        tensors[f"{module}.base_layer.weight"] = torch.zeros(2, 2)  # corenet saves the whole model
    save_file(tensors, str(folder / "checkpoint.safetensors"))
    params = {"adapter_name": adapter_name, "r": 4, "lora_alpha": 8, "use_rslora": False, "use_dora": False}
    config = [{"regex": regex, "module_type": kind, "params": params}
              for regex, kind in ((".*token_embedding.*", "embedding"), (".*qkv_proj.*", "linear"),
                                  (".*out_proj.*", "linear"), (r".*proj_\d.*", "linear"))]
    (folder / "openelm_lora.yaml").write_text(yaml.safe_dump({"model": {"lora": {"use_lora": True, "config": config}}}))
    return folder


def test_a_corenet_checkpoint_reads_as_the_same_adapter(tmp_path, config):
    peft = read_adapter("x", write_peft_adapter(tmp_path / "peft", config, rank=4, alpha=8))
    corenet = read_adapter("x", corenet_copy(tmp_path / "peft", tmp_path / "corenet"))
    assert corenet.format == "corenet" and set(corenet.modules) == set(peft.modules)
    for module, pair in peft.modules.items():
        assert torch.equal(pair.down, corenet.modules[module].down) and pair.scale == corenet.modules[module].scale


class Pwned:
    """Unpickling this writes a file: proof that a pickle was loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("case", ["rank 0", "NaN weights", "unknown target", "unknown tensor", "pickle only",
                                  "A without B", "modules_to_save", "not LoRA"])
def test_bad_adapters_are_one_line_errors(tmp_path, config, case):
    folder = write_peft_adapter(tmp_path / "a", config, targets=["qkv_proj", "proj_2"])
    weights = folder / "adapter_model.safetensors"
    settings = json.loads((folder / "adapter_config.json").read_text())
    tensors = load_file(str(weights))
    key = "base_model.model.transformer.layers.0.attn.qkv_proj.lora_A.weight"
    if case == "rank 0":
        settings["r"] = 0
    elif case == "NaN weights":
        tensors[key][0, 0] = float("nan")
    elif case == "unknown target":
        settings["target_modules"] = ["q_proj", "v_proj"]
    elif case == "unknown tensor":
        tensors["base_model.model.transformer.layers.0.attn.q_proj.lora_A.weight"] = tensors.pop(key)
    elif case == "pickle only":
        weights.unlink()
        (folder / "adapter_model.bin").write_bytes(pickle.dumps(Pwned(str(tmp_path / "pwned"))))
    elif case == "A without B":
        del tensors[key.replace("lora_A", "lora_B")]
    elif case == "modules_to_save":
        settings["modules_to_save"] = ["lm_head"]
    elif case == "not LoRA":
        settings["peft_type"] = "IA3"
    (folder / "adapter_config.json").write_text(json.dumps(settings))
    if weights.exists():
        save_file(tensors, str(weights))
    with pytest.raises(ExportError) as error:
        read_adapter("style", folder)
    message = str(error.value)
    assert "\n" not in message and message.startswith("adapter style:")
    expected = {"rank 0": "rank", "NaN weights": "NaN", "unknown target": "unknown target module 'q_proj'",
                "unknown tensor": "unknown target module", "pickle only": "refused because unpickling",
                "A without B": "without its B", "modules_to_save": "modules_to_save", "not LoRA": "IA3"}[case]
    assert expected in message
    assert not (tmp_path / "pwned").exists()  # the pickle was never loaded


def test_an_adapter_for_another_model_is_a_shape_mismatch(tmp_path, config):
    other = small_config(num_layers=2, model_dim=128, head_dim=16, vocab_size=300)
    adapter = read_adapter("style", write_peft_adapter(tmp_path / "a", other))
    with pytest.raises(ExportError, match="trained for another model"):
        check_adapter(adapter, config)
    deeper = read_adapter("deep", write_peft_adapter(tmp_path / "b", small_config(num_layers=3, model_dim=64,
                                                                               head_dim=16, vocab_size=300)))
    with pytest.raises(ExportError, match="does not have"):
        check_adapter(deeper, config)


@pytest.mark.parametrize("specs, merge, message", [
    (["decode=x"], None, "collides with a function"),
    (["embed_prefill=x"], None, "collides with a function"),
    (["a=x", "a=y"], None, "given twice"),
    (["Style=x"], None, "lowercase"),
    (["style"], None, "not NAME=DIR"),
    (["a=x"], "b", "no --adapter b=DIR"),
])
def test_bad_adapter_options_are_usage_errors(specs, merge, message):
    with pytest.raises(UsageError, match=message):
        plan_adapter_options(specs, merge, None, "coreml", None)


def test_options_that_do_not_combine_yet_are_refused():
    with pytest.raises(UsageError, match="Core ML packages only"):
        plan_adapter_options(["a=x"], None, None, "coreai", None)
    with pytest.raises(UsageError, match="--adapter-quant applies"):
        plan_adapter_options([], None, "int8", "coreml", None)
    assert parse_adapter_option("style=some/dir")[0] == "style"


def test_adapter_matrices_get_the_adapter_recipe_not_the_base_one():
    from quant.recipes import RECIPES, assign

    names = ["layers_0_attn_qkv_proj_weight", "lora_style_layers_0_attn_qkv_proj_down", "vocab_pieces_0"]
    chosen = assign(names, RECIPES["int4"], "embedding=lut6")
    assert [chosen[n].name for n in names] == ["int4", "none", "lut6"]  # float16 unless --adapter-quant
    chosen = assign(names, RECIPES["mixed"], None, RECIPES["int8"])
    assert [chosen[n].name for n in names] == ["lut4", "int8", "lut6"]


def test_an_adapter_recipe_whose_groups_do_not_tile_the_rank_is_refused(tmp_path, config):
    from exporter.pipeline_adapters import check_recipe_fits
    from quant.recipes import RECIPES

    adapter = read_adapter("style", write_peft_adapter(tmp_path / "a", config, rank=8))
    check_recipe_fits(adapter, RECIPES["lut4"], 8)
    with pytest.raises(UsageError, match="rank 8, which --group-size 16 does not divide"):
        check_recipe_fits(adapter, RECIPES["lut4"], 16)
    with pytest.raises(UsageError, match="int4 quantizes blocks of 32"):
        check_recipe_fits(adapter, RECIPES["int4"], 16)
