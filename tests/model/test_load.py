"""Loading Hub-format checkpoints: single, sharded, bfloat16; and every way a checkpoint can be wrong."""

import json

import pytest
import torch
from safetensors.torch import save_file

from exporter.errors import ExportError
from exporter.model.load import load_checkpoint, random_state_dict, save_checkpoint


def test_loads_single_file_in_eval_mode(checkpoint_dir, config):
    model = load_checkpoint(checkpoint_dir)
    assert not model.training
    assert model.config == config
    expected = random_state_dict(config, seed=0)
    for name, tensor in model.state_dict().items():
        assert tensor.dtype == torch.float32
        assert torch.equal(tensor, expected[name]), name


def test_loads_sharded_checkpoint(tmp_path, config):
    state = random_state_dict(config, seed=4)
    save_checkpoint(tmp_path, config, state, max_shard_bytes=400_000)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) >= 3
    assert not (tmp_path / "model.safetensors").exists()
    model = load_checkpoint(tmp_path)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_loads_bfloat16_checkpoint_as_float32_or_bfloat16(tmp_path, config):
    state = random_state_dict(config, seed=5, dtype=torch.bfloat16)
    save_checkpoint(tmp_path, config, state)
    as_float = load_checkpoint(tmp_path)
    as_bf16 = load_checkpoint(tmp_path, dtype=torch.bfloat16)
    name = "transformer.layers.1.ffn.proj_1.weight"
    assert as_float.state_dict()[name].dtype == torch.float32
    assert torch.equal(as_float.state_dict()[name], state[name].float())
    assert as_bf16.state_dict()[name].dtype == torch.bfloat16
    ids = torch.tensor([[1, 2, 3, 4]])
    assert as_float(ids).dtype == torch.float32


def test_config_lists_from_hub_win(checkpoint_dir):
    raw = json.loads((checkpoint_dir / "config.json").read_text())
    assert raw["num_query_heads"] == [4, 8, 8, 8]  # expanded lists are written, as on the Hub
    raw["qkv_multipliers"] = [0.5, 1.0]
    (checkpoint_dir / "config.json").write_text(json.dumps(raw))
    assert load_checkpoint(checkpoint_dir).config.num_query_heads == [4, 8, 8, 8]


def _rewrite(folder, config, mutate):
    state = random_state_dict(config, seed=0)
    mutate(state)
    (folder / "model.safetensors").unlink()
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))


def test_missing_tensor_is_named(checkpoint_dir, config):
    _rewrite(checkpoint_dir, config, lambda s: s.pop("transformer.layers.2.attn.k_norm.weight"))
    with pytest.raises(ExportError, match=r"missing tensor 'transformer.layers.2.attn.k_norm.weight'"):
        load_checkpoint(checkpoint_dir)


def test_extra_tensor_is_named(checkpoint_dir, config):
    _rewrite(checkpoint_dir, config, lambda s: s.update({"lm_head.weight": torch.zeros(2, 2)}))
    with pytest.raises(ExportError, match=r"unexpected tensor 'lm_head.weight'"):
        load_checkpoint(checkpoint_dir)


def test_misshaped_tensor_is_named(checkpoint_dir, config):
    name = "transformer.layers.3.ffn.proj_2.weight"
    _rewrite(checkpoint_dir, config, lambda s: s.update({name: torch.zeros(256, 7)}))
    with pytest.raises(ExportError, match=rf"'{name}' has shape \[256, 7\], expected \[256, 1024\]"):
        load_checkpoint(checkpoint_dir)


def test_nan_weights_are_refused(checkpoint_dir, config):
    name = "transformer.layers.0.attn.out_proj.weight"

    def poison(state):
        state[name][3, 4] = float("nan")

    _rewrite(checkpoint_dir, config, poison)
    with pytest.raises(ExportError, match=rf"'{name}' contains NaN or Inf"):
        load_checkpoint(checkpoint_dir)


def test_truncated_safetensors(checkpoint_dir):
    path = checkpoint_dir / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ExportError, match=r"not a readable safetensors file.*truncated"):
        load_checkpoint(checkpoint_dir)


def test_index_naming_missing_shard(tmp_path, config):
    save_checkpoint(tmp_path, config, random_state_dict(config), max_shard_bytes=400_000)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    gone = sorted(set(index["weight_map"].values()))[1]
    (tmp_path / gone).unlink()
    with pytest.raises(ExportError, match=rf"names shard '{gone}', which is missing"):
        load_checkpoint(tmp_path)


def test_pickle_checkpoint_is_refused_without_unpickling(tmp_path, config):
    (tmp_path / "config.json").write_text(json.dumps(config.to_hub_dict()))
    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import pickle

    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(ExportError, match=r"pytorch_model.bin.*refused because unpickling can run arbitrary code"):
        load_checkpoint(tmp_path)
    assert not marker.exists()


def test_remote_code_in_folder_is_never_imported(checkpoint_dir, tmp_path):
    marker = tmp_path / "imported"
    for name in ("modeling_openelm.py", "configuration_openelm.py"):
        (checkpoint_dir / name).write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    raw = json.loads((checkpoint_dir / "config.json").read_text())
    raw["auto_map"] = {"AutoModelForCausalLM": "modeling_openelm.OpenELMForCausalLM"}
    (checkpoint_dir / "config.json").write_text(json.dumps(raw))
    load_checkpoint(checkpoint_dir)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, r"config.json: not found"),
        ("{not json", r"cannot be read as JSON"),
        ('{"model_type": "llama"}', r"model_type is 'llama', not 'openelm'"),
        ('{"model_type": "openelm", "model_dim": 64}', r"missing or invalid field 'num_transformer_layers'"),
    ],
)
def test_bad_config(checkpoint_dir, content, message):
    path = checkpoint_dir / "config.json"
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    with pytest.raises(ExportError, match=message):
        load_checkpoint(checkpoint_dir)


def test_missing_folder(tmp_path):
    with pytest.raises(ExportError, match=r"no such checkpoint folder"):
        load_checkpoint(tmp_path / "nope")
