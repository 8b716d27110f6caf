"""elm-export end to end on small seeded checkpoints: the package spec, export.json, --force, atomicity, determinism."""

import json

import numpy as np
import pytest

from exporter import pipeline
from exporter.coreml import functions
from exporter.coreml.package import WEIGHTS_IN_PACKAGE, load_program
from exporter.errors import ExportError, UsageError
from exporter.files import sha256_file
from exporter.model.load import expected_shapes, random_state_dict, save_checkpoint
from exporter.pipeline import ExportOptions, export
from tests.helpers import small_config

pytestmark = pytest.mark.e2e  # every test here runs a whole export

ANE_MAX_DIM = 16384


@pytest.fixture(scope="module")
def real_vocab_checkpoint(tmp_path_factory):
    """Real layer-wise pattern (heads 4..8, FFN 0.5x..4x) and the real 32000-token vocabulary."""
    config = small_config(num_layers=4, model_dim=256, head_dim=32, vocab_size=32000, max_context_length=256)
    folder = tmp_path_factory.mktemp("ckpt32k")
    save_checkpoint(folder, config, random_state_dict(config, seed=7))
    return folder, config


@pytest.fixture(scope="module")
def exported(real_vocab_checkpoint, tmp_path_factory):
    folder, config = real_vocab_checkpoint
    out = tmp_path_factory.mktemp("exports") / "pkg"
    result = export(ExportOptions(model_dir=folder, tokenizer=None, quant="none", prefill_length=16, output=out,
                                  verify=False))
    return result, config


def test_package_has_prefill_and_decode_sharing_state(exported):
    """The ane graph (the default) of a 32000-token model: the lookup as its own functions, the body taking hidden
    states, rotary rows and the mask; decode gives the logits in two 16000-row pieces, prefill none."""
    result, config = exported
    manifest = result.manifest
    import coremltools as ct

    package = result.folder / manifest["package"]
    spec, program = ct.models.MLModel(str(package), skip_model_load=True).get_spec(), load_program(package)
    assert sorted(program.functions) == ["decode", "embed_decode", "embed_prefill", "embed_verify", "prefill", "verify"]
    assert spec.description.defaultFunctionName == "decode"
    assert spec.specificationVersion >= 9  # iOS 18: states and multifunction
    assert config.num_kv_heads == [1, 2, 2, 2]
    layout_heads = 32  # 7 KV heads in all, padded to a multiple of 32
    assert manifest["states"] == [
        {"name": "key_cache", "shape": [1, layout_heads, 256, 32], "dtype": "float16"},
        {"name": "value_cache", "shape": [1, layout_heads, 32, 256], "dtype": "float16"},  # head_dim-major
    ]
    for name, tokens in (("prefill", 16), ("decode", 1)):
        function = manifest["functions"][name]
        assert function["inputs"] == [
            {"name": "hidden_in", "shape": [1, tokens, 256], "dtype": "float16"},
            {"name": "position", "shape": [1], "dtype": "int32"},
            {"name": "rotary", "shape": [1, tokens, 64], "dtype": "float16"},
            {"name": "mask", "shape": [1, tokens, 256], "dtype": "float16"},
        ]
        embed = manifest["functions"][f"embed_{name}"]
        assert embed["inputs"] == [{"name": "input_ids", "shape": [1, tokens], "dtype": "int32"}]
        assert embed["outputs"] == [{"name": "hidden_out", "shape": [1, tokens, 256], "dtype": "float16"}]
        ops = program.functions[name].operations
        op_types = {op.op_type for op in ops}
        assert {"read_state", "coreml_update_state", "slice_update"} <= op_types
        written = {op.inputs["state"].name for op in ops if op.op_type == "coreml_update_state"}
        assert written == {"key_cache", "value_cache"}
    assert manifest["functions"]["decode"]["outputs"] == [
        {"name": "logits", "shape": [1, 1, 2, 16000], "dtype": "float16"}]
    assert manifest["functions"]["prefill"]["outputs"] == [
        {"name": "hidden_out", "shape": [1, 16, 256], "dtype": "float16"}]


def test_no_tensor_dimension_over_neural_engine_limit(exported):
    result, _ = exported
    program = load_program(result.folder / result.manifest["package"])
    for function in program.functions.values():
        for op in function.operations:
            for var in op.outputs:
                shape = var.shape or ()
                assert all(int(d) <= ANE_MAX_DIM for d in shape), (op.op_type, op.name, shape)
                assert len(shape) <= 5, (op.op_type, op.name, shape)  # ANE rule: rank <= 5 (the lookup's gather)


def test_functions_share_weights(exported, real_vocab_checkpoint):
    result, config = exported
    weights = result.folder / result.manifest["package"] / WEIGHTS_IN_PACKAGE
    params = sum(int(np.prod(s)) for s in expected_shapes(config).values())
    # float16 weights stored once: about 2 bytes per parameter (+ small rotary tables), not twice that.
    assert weights.stat().st_size < 2 * params * 1.15


def test_manifest_is_complete_and_consistent(exported):
    result, config = exported
    manifest = json.loads((result.folder / "export.json").read_text())
    assert manifest == result.manifest
    assert manifest["format"] == "elm-export/1"
    assert manifest["source"] == {"folder": str(manifest["source"]["folder"])}
    assert manifest["model"]["num_query_heads"] == config.num_query_heads
    assert manifest["context_length"] == 256 and manifest["prefill_length"] == 16
    assert manifest["vocab_size"] == 32000 and manifest["logits_layout"] == {"pieces": 2, "piece_size": 16000}
    assert manifest["kv_cache"]["layer_head_offsets"] == [0, 1, 3, 5]
    assert manifest["quantization"]["recipe"] == "none"
    assert manifest["versions"]["coremltools"] == "9.0"
    package = result.folder / manifest["package"]
    assert manifest["package_bytes"] == sum(f.stat().st_size for f in package.rglob("*") if f.is_file())
    assert manifest["weights_sha256"] == sha256_file(package / manifest["weights_file"])
    assert manifest["tokenizer"] is None
    assert sorted(p.name for p in result.folder.iterdir()) == sorted(["export.json", manifest["package"]])


def test_existing_output_needs_force(exported, real_vocab_checkpoint):
    result, _ = exported
    folder, _ = real_vocab_checkpoint
    options = ExportOptions(model_dir=folder, tokenizer=None, quant="none", prefill_length=16, output=result.folder,
                            verify=False)
    with pytest.raises(ExportError, match="already exists; pass --force"):
        export(options)


def test_failure_mid_export_leaves_nothing(real_vocab_checkpoint, tmp_path, monkeypatch):
    folder, _ = real_vocab_checkpoint

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline, "save_functions", broken)
    with pytest.raises(ExportError, match="No space left on device.*nothing was written"):
        export(ExportOptions(model_dir=folder, tokenizer=None, quant="none", prefill_length=16, output=tmp_path / "o",
                             verify=False))
    assert list(tmp_path.iterdir()) == []


def test_interrupt_leaves_previous_output_intact(real_vocab_checkpoint, tmp_path, monkeypatch):
    folder, _ = real_vocab_checkpoint
    out = tmp_path / "o"
    out.mkdir()
    (out / "export.json").write_text("{}")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(functions, "convert_module", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export(ExportOptions(model_dir=folder, tokenizer=None, quant="none", prefill_length=16, output=out, force=True,
                             verify=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]
    assert (out / "export.json").read_text() == "{}"


def test_force_replaces_and_export_is_deterministic(tmp_path):
    config = small_config()
    save_checkpoint(tmp_path / "ckpt", config, random_state_dict(config, seed=1))
    options = ExportOptions(model_dir=tmp_path / "ckpt", tokenizer=None, quant="int4", prefill_length=8,
                            output=tmp_path / "out", verify=False)
    first = export(options).manifest
    weights = tmp_path / "out" / first["package"] / WEIGHTS_IN_PACKAGE
    first_bytes = weights.read_bytes()
    options.force = True
    second = export(options).manifest
    assert weights.read_bytes() == first_bytes
    assert second["weights_sha256"] == first["weights_sha256"]
    assert second["chunks"][0]["files"] == first["chunks"][0]["files"]  # every file of the package, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "out"]  # no staging folders left


@pytest.mark.parametrize(
    "context, prefill, message",
    [
        (512, 16, r"--context-length 512 exceeds the model's maximum 256"),
        (256, 48, r"not a multiple of --prefill-length 48"),
        (32, 64, r"--prefill-length 64 exceeds --context-length 32"),
        (80, 16, r"not a multiple of 32"),
        (256, 0, r"must be at least 1"),
    ],
)
def test_bad_lengths_are_usage_errors_before_loading(real_vocab_checkpoint, tmp_path, monkeypatch, context, prefill,
                                                     message):
    folder, _ = real_vocab_checkpoint
    monkeypatch.setattr(pipeline, "open_source", lambda *a, **k: pytest.fail("opened weights before checking"))
    with pytest.raises(UsageError, match=message):
        export(ExportOptions(model_dir=folder, tokenizer=None, context_length=context, prefill_length=prefill,
                             output=tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_unknown_recipe_lists_valid_ones(real_vocab_checkpoint, tmp_path):
    folder, _ = real_vocab_checkpoint
    with pytest.raises(UsageError, match=r"unknown --quant recipe 'int3'; choose one of: none, int8, int4"):
        export(ExportOptions(model_dir=folder, tokenizer=None, quant="int3", output=tmp_path / "o"))


def test_graph_computes_in_float16_throughout(exported):
    """No float32 islands (they would split the graph off the Neural Engine); only op attributes like epsilon."""
    from coremltools.converters.mil.mil import types

    result, _ = exported
    program = load_program(result.folder / result.manifest["package"])
    for function in program.functions.values():
        for op in function.operations:
            for var in op.outputs:
                if types.builtin_to_string(var.dtype) == "fp32":
                    assert op.op_type == "const" and all(c.op_type in ("rsqrt", "inverse") for c in var.child_ops), op
