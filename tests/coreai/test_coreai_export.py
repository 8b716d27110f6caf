"""Core AI exports run in Apple's own runtime (coreai-core): state across calls, weights stored once, integrity,
the wrong model, a missing install, and Apple's runtime checking our Core ML executor (--cross-check)."""

import json
import shutil

import numpy as np
import pytest

from exporter.checkpoint.text import sample_ids
from exporter.cli import run_cli
from exporter.coreai.package import load_program
from exporter.coreai.runtime import CoreAIExecutor
from exporter.coreai.weights import read_weights
from exporter.errors import ExportError
from exporter.files import folder_bytes
from exporter.manifest.build import file_hashes
from exporter.manifest.check import check_integrity, check_manifest
from exporter.manifest.document import read_manifest
from exporter.pipeline import ExportOptions, export
from exporter.verify.check import verify_export
from exporter.verify.cli import verify_command
from exporter.verify.drive import RecordedChunk, package_run
from exporter.verify.reference import logits_for, source_model
from exporter.verify.report import GRAPH_THRESHOLDS

pytestmark = pytest.mark.e2e  # whole exports, run in Apple's runtime

CONTEXT, PREFILL = 64, 16


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The embedded model, float16 weights, as a Core ML package and a Core AI model in one folder."""
    root = tmp_path_factory.mktemp("coreai")
    export(ExportOptions(size="tiny", quant="none", format="both", context_length=CONTEXT, prefill_length=PREFILL,
                         output=root / "both", verify=False))
    return root / "both"


@pytest.fixture
def copy(both, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(both, folder)
    return folder


def rewrite(folder, change):
    path = folder / "export.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_state_carries_across_32_decode_calls_to_the_last_slot(both):
    """Prefill 15 tokens, then 49 decode calls up to position 63 (the last cache slot), in Apple's runtime."""
    manifest = read_manifest(both)
    chunk = manifest["coreai"]["chunks"][0]
    tokens = sample_ids(both, manifest["vocab_size"], manifest["bos_token_id"], CONTEXT)
    executor = CoreAIExecutor(both / chunk["package"], chunk)
    try:
        logits, calls, first = package_run(RecordedChunk(executor, chunk, None), manifest, tokens, PREFILL)
    finally:
        executor.close()
    reference = logits_for(source_model(manifest, None), tokens)[first:]
    # The ane graph: 1 prefill call (15 tokens, no logits), then 49 decode calls from the prompt's last token.
    assert calls == 1 and first == PREFILL - 1 and logits.shape[0] == CONTEXT - first
    shifted = reference - reference.max(-1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)
    q = logits - logits.max(-1, keepdims=True)
    q = q - np.log(np.exp(q).sum(-1, keepdims=True))
    kl = (p * (np.log(p + 1e-30) - q)).sum(-1)
    assert kl.max() < 1e-3, kl.max()  # every position, the decoded ones (state read back) and the last slot included
    assert (logits.argmax(-1) == reference.argmax(-1)).mean() >= 0.98
    assert logits[-1].argmax() == reference[-1].argmax()


def test_two_entrypoints_store_the_weights_once(tmp_path):
    from exporter.coreai.convert import convert_functions
    from exporter.coreai.package import save_model
    from exporter.graph.functions import GraphSettings
    from exporter.model.load import open_source, resolve_source, whole_model

    source = resolve_source("tiny", False, None, None, None)
    config, tensors = open_source(source)
    model = whole_model(config, tensors).half()
    sizes = {}
    for label, functions in (("one", ("prefill",)), ("two", ("prefill", "decode"))):
        settings = GraphSettings("gpu", CONTEXT)
        program = convert_functions(model, settings, PREFILL, functions=functions).program
        save_model(program, tmp_path / f"{label}.aimodel")
        sizes[label] = folder_bytes(tmp_path / f"{label}.aimodel")
    assert sizes["two"] <= 1.02 * sizes["one"], sizes


def test_clean_export_passes_in_apples_runtime(both):
    report = verify_export(both, backend="coreai")
    assert report.passed and report.runtime.startswith("Core AI model in Apple's Core AI runtime")
    assert report.reference.mean_kl < 1e-3 and report.reference.greedy_agree


def test_a_tampered_aimodel_fails_integrity_before_anything_runs(copy, monkeypatch, capsys):
    program = copy / "OpenELM-tiny-none.aimodel" / "main.mlirb"
    data = bytearray(program.read_bytes())
    data[len(data) // 2] ^= 0x01
    program.write_bytes(bytes(data))

    def must_not_run(*args, **kwargs):
        raise AssertionError("the runtime was started on a tampered model")

    monkeypatch.setattr("exporter.coreai.runtime.CoreAIModel.__init__", must_not_run)
    code = run_cli(verify_command, "elm-verify", [str(copy), "--format", "coreai"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "main.mlirb: sha256 does not match export.json" in err


def test_an_aimodel_from_another_model_fails(copy, tmp_path):
    other = tmp_path / "other"
    export(ExportOptions(size="tiny", quant="none", format="coreai", context_length=2 * CONTEXT,
                         prefill_length=PREFILL, output=other, verify=False, tokenizer=None))
    name = "OpenELM-tiny-none.aimodel"
    shutil.rmtree(copy / name)
    shutil.copytree(other / name, copy / name)
    rewrite(copy, lambda m: m["coreai"]["chunks"][0].update(files=file_hashes(copy / name)))
    manifest = read_manifest(copy)
    check_integrity(copy, manifest, "coreai")  # the files are what export.json now lists...
    with pytest.raises(ExportError, match="context_length is 64 but the package's key_cache holds 128 positions"):
        check_manifest(copy, manifest)  # ...but not the model it describes


def test_a_missing_coreai_install_is_one_line_with_the_fix(tmp_path, monkeypatch, capsys):
    import importlib

    real = importlib.import_module

    def without_coreai(name, *args):
        if name.startswith("coreai"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_coreai)
    from exporter.cli import export_command

    code = run_cli(export_command, "elm-export", ["--size", "tiny", "--format", "coreai", "--output",
                                                  str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1, err
    assert "Core AI support needs coreai" in err and "make install" in err
    assert not (tmp_path / "out").exists()


def test_read_weights_gives_back_the_float16_weights(both):
    manifest = read_manifest(both)
    chunk = manifest["coreai"]["chunks"][0]
    values = read_weights(load_program(both / chunk["package"]), {n: e["nodes"] for n, e in chunk["weights"].items()})
    model = source_model(manifest, None)
    qkv = model.transformer.layers[0].attn.qkv_proj.weight.detach().numpy()
    assert np.array_equal(values["layers_0_attn_qkv_proj_weight"], qkv.astype(np.float16).astype(np.float32))


def test_cross_check_agrees_and_catches_a_broken_executor_kernel(both, monkeypatch):
    from exporter.verify.cross_check import cross_check_export
    from exporter.verify.kernels import registry

    agreement = cross_check_export(both, steps=4)
    assert agreement.passed and agreement.comparison.mean_kl < GRAPH_THRESHOLDS["mean_kl"] / 10
    for kernel, broken in (("softmax", lambda op, x, axis=-1: np.exp(x) / np.exp(x).sum(int(axis), keepdims=True) ** 0.9),
                           ("rsqrt", lambda op, x, epsilon=None: 1.0 / np.sqrt(np.abs(x) + 1e-2))):
        monkeypatch.setitem(registry.OPS, kernel, broken)
        assert not cross_check_export(both, steps=4).passed, kernel
        monkeypatch.undo()


def test_the_swift_fixtures_have_the_fields_elm_export_writes(both):
    """swift_harness reads real export.json files (Fixtures/manifest_exported_both.json: --target gpu;
    manifest_exported_ane.json: --target ane, the default): they must not drift from ours."""
    from pathlib import Path

    fixtures = Path(__file__).resolve().parents[2] / "swift_harness/Tests/ELMKitTests/Fixtures"
    manifest = read_manifest(both)
    for name in ("manifest_exported_both.json", "manifest_exported_ane.json"):
        fixture = json.loads((fixtures / name).read_text())
        assert set(fixture) == set(manifest), name
        assert set(fixture["coreai"]) == set(manifest["coreai"]), name
        assert set(fixture["coreai"]["chunks"][0]) == set(manifest["coreai"]["chunks"][0]), name
        assert set(fixture["chunks"][0]) == set(manifest["chunks"][0]), name
        assert set(fixture["graph"]) <= set(manifest["graph"]), name
    assert json.loads((fixtures / "manifest_exported_ane.json").read_text())["graph"].keys() == manifest["graph"].keys()


def test_a_model_too_big_for_the_linux_runtime_is_verified_through_its_twin(both, monkeypatch):
    monkeypatch.setattr("exporter.verify.check.RUNTIME_FULL_LIMIT", 0)  # as if the embedded model were 3B
    report = verify_export(both, backend="coreai")
    assert report.scope.startswith("twin: layers 0 and 5 of 6 at this model's widths (model_dim 192, vocab 4096)")
    assert report.prompt_tokens == 8 and report.decode_steps == 8 and report.prefill_calls == 1
    assert report.passed and report.reference.mean_kl < 1e-3


def test_max_chunk_bytes_splits_the_core_ai_model_too(tmp_path):
    result = export(ExportOptions(size="tiny", quant="int4", format="coreai", context_length=CONTEXT,
                                  prefill_length=PREFILL, max_chunk_bytes=1_000_000, output=tmp_path / "split"))
    chunks = result.manifest["coreai"]["chunks"]
    assert len(chunks) >= 2 and result.manifest["coreai"]["package"] is None
    assert [c["package"] for c in chunks][:2] == [f"OpenELM-tiny-int4-{i}of{len(chunks)}.aimodel" for i in (1, 2)]
    assert chunks[0]["output"] == "hidden_out" and chunks[-1]["input"] == "hidden_in"
    assert result.reports["coreai"].passed  # run as a chain in Apple's runtime, hidden states handed on


def test_neural_engine_rules_hold_in_both_formats(both):
    """The ane graph as written: no linear projection, no multi-head matmul, no table gather in the body, no fp32,
    rank <= 5, in every function of the Core ML package and of the Core AI model."""
    manifest = read_manifest(both)
    layers = manifest["model"]["num_transformer_layers"]
    for label, chunk in (("Core ML", manifest["chunks"][0]), ("Core AI", manifest["coreai"]["chunks"][0])):
        rules = chunk["neural_engine_rules"]
        assert {"embed_prefill", "embed_decode", "prefill", "decode"} <= set(rules), label
        for function, counts in rules.items():
            assert counts["linear"] == counts["multi_head_matmuls"] == counts["fp32_ops"] == 0, (label, function)
            assert counts["max_rank"] <= 5, (label, function)
            if not function.startswith("embed_"):
                assert counts["table_gathers"] == 0, (label, function)
        assert rules["decode"]["conv"] == 4 * layers + 1, label  # every projection and the vocabulary piece
        assert rules["prefill"]["conv"] == 4 * (layers - 1) + 1, label  # the last layer: only keys and values


def test_elm_run_generates_from_the_core_ai_model_in_apples_runtime(both, capsys):
    """elm-run --format coreai: Apple's runtime, the verify function included (prompt lookup speculates); the
    greedy text is the float16 executor's on the Core ML package of the same weights."""
    from exporter.generate.cli import run_command

    texts = {}
    for backend in ("coreai", "coreml"):
        code = run_cli(run_command, "elm-run", [str(both), "--format", backend, "--prompt", "And God said unto",
                                                "--max-new-tokens", "6", "--repetition-penalty", "1"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert "tok/s" in captured.err and "prompt_lookup drafts" in captured.err
        texts[backend] = captured.out
    assert texts["coreai"].strip() and texts["coreai"] == texts["coreml"]
