"""Split exports (--max-chunk-bytes) chain exactly like one package, and elm-verify checks them end to end."""

import json
import shutil

import numpy as np
import pytest

from exporter.checkpoint.sources import EMBEDDED_SIZE
from exporter.errors import ExportError
from exporter.pipeline import ExportOptions, export

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tiny_exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("chunked")
    single = export(ExportOptions(size=EMBEDDED_SIZE, quant="int4", output=root / "single", verify=False))
    split = export(ExportOptions(size=EMBEDDED_SIZE, quant="int4", output=root / "split", max_chunk_bytes=800_000))
    return single, split


def test_split_export_describes_each_chunk(tiny_exports):
    _, split = tiny_exports
    manifest = split.manifest
    chunks = manifest["chunks"]
    assert len(chunks) == 3 and manifest["package"] is None and manifest["states"] is None
    assert [c["layers"] for c in chunks] == [[0, 2], [2, 5], [5, 6]]
    # The ane graph (the default): every body takes hidden states; the first chunk alone embeds.
    assert [(c["input"], c["output"]) for c in chunks] == [("hidden_in", "hidden_out"), ("hidden_in", "hidden_out"),
                                                          ("hidden_in", "logits")]
    assert [sorted(c["functions"]) for c in chunks] == [
        ["decode", "embed_decode", "embed_prefill", "embed_verify", "prefill", "verify"],
        ["decode", "prefill", "verify"], ["decode", "prefill", "verify"]]
    assert [o["name"] for o in chunks[2]["functions"]["prefill"]["outputs"]] == ["hidden_out"]  # no logits
    for chunk in chunks:
        assert (split.folder / chunk["package"]).is_dir()
        assert chunk["kv_cache"]["layer_kv_heads"] == manifest["model"]["num_kv_heads"][slice(*chunk["layers"])]
        assert chunk["size"]["weights_to_theory"] < 1.03
    decode = chunks[1]["functions"]["decode"]
    assert decode["inputs"][0] == {"name": "hidden_in", "shape": [1, 1, manifest["model"]["model_dim"]],
                                   "dtype": "float16"}
    assert manifest["size"]["weight_file_bytes"] == sum(c["size"]["weight_file_bytes"] for c in chunks)
    assert split.report.passed  # elm-export verified the chain end to end


def test_chained_chunks_give_the_single_package_logits(tiny_exports):
    from exporter.manifest.check import check_integrity
    from exporter.verify.drive import ChunkChain, package_run
    from exporter.verify.executor import ProgramExecutor

    single, split = tiny_exports
    tokens = list(range(1, 80))
    runs = []
    for result in (single, split):
        manifest = result.manifest
        packages = check_integrity(result.folder, manifest)
        chain = ChunkChain([ProgramExecutor(p) for p in packages], manifest["chunks"])
        runs.append(package_run(chain, manifest, tokens, 70)[0])
    # Same graph, same float16 residual stream: splitting changes nothing but where the layers live.
    np.testing.assert_allclose(runs[1], runs[0], atol=2e-2)
    assert (runs[1].argmax(-1) == runs[0].argmax(-1)).mean() > 0.99


def test_verify_catches_chunks_run_out_of_order(tiny_exports, tmp_path):
    from exporter.verify.check import verify_export

    _, split = tiny_exports
    folder = tmp_path / "swapped"
    shutil.copytree(split.folder, folder)
    manifest = json.loads((folder / "export.json").read_text())
    first, second = manifest["chunks"][1], manifest["chunks"][2]
    # Swap what the middle and last chunk files hold, keeping the manifest's checksums consistent.
    for key in ("package", "weights_sha256", "files"):
        first[key], second[key] = second[key], first[key]
    (folder / "export.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match="the manifest does not describe this package"):
        verify_export(folder)


def test_verify_catches_a_changed_chunk(tiny_exports, tmp_path):
    from exporter.verify.check import verify_export

    _, split = tiny_exports
    folder = tmp_path / "changed"
    shutil.copytree(split.folder, folder)
    weights = folder / split.manifest["chunks"][1]["package"] / split.manifest["chunks"][1]["weights_file"]
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="sha256 does not match"):
        verify_export(folder)


def test_streamed_references_verify_like_held_ones(tiny_exports, monkeypatch):
    """elm-verify streams both references from disk for models too big to hold (1.1B, 3B): same report."""
    from exporter.verify import check, reference

    _, split = tiny_exports
    held = check.verify_export(split.folder, tokens=40, steps=6)
    monkeypatch.setattr(reference, "HOLD_LIMIT_BYTES", 0)
    streamed = check.verify_export(split.folder, tokens=40, steps=6)
    assert streamed.passed == held.passed and streamed.continuation == held.continuation
    for field in ("reference", "dequantized_reference"):
        a, b = getattr(held, field), getattr(streamed, field)
        assert abs(a.mean_kl - b.mean_kl) < 1e-6 and a.top1_agreement == b.top1_agreement, field


def test_executor_keeping_float16_weights_computes_the_same(tiny_exports, monkeypatch):
    """Big models keep weight-sized float16 constants as float16 in the executor: identical results."""
    from exporter.manifest.check import check_integrity
    from exporter.verify import executor as executor_module
    from exporter.verify.drive import ChunkChain, package_run

    single, _ = tiny_exports
    monkeypatch.setattr(executor_module, "LARGE_CONSTANT_ELEMENTS", 1000)  # the tiny model's weights count
    packages = check_integrity(single.folder, single.manifest)
    runs = []
    for keep in (False, True):
        executors = [executor_module.ProgramExecutor(p, keep_large_float16=keep) for p in packages]
        chain = ChunkChain(executors, single.manifest["chunks"])
        runs.append(package_run(chain, single.manifest, list(range(1, 40)), 35)[0])
    kept = executors[0]._plans["decode"]
    assert any(getattr(value, "dtype", None) == np.float16 for step in kept.steps
               for kind, value in step.args.values() if kind == "const")
    np.testing.assert_array_equal(runs[0], runs[1])
