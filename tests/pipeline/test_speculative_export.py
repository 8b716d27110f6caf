"""The verify function (speculative decoding): in every export unless --draft-tokens 0, sharing every weight with
prefill and decode, and checked by elm-verify to give decode's logits, with rejected drafts' slots overwritten."""

import json

import numpy as np
import pytest

from exporter.checkpoint.sources import EMBEDDED_SIZE
from exporter.graph.signature import ANE, GPU
from exporter.manifest.document import read_manifest
from exporter.pipeline import ExportOptions, export
from exporter.verify import calls as calls_module
from exporter.verify.check import verify_export
from exporter.verify.drive import run_chunk_by_chunk
from exporter.verify.speculative import check_verify_function, verify_script

pytestmark = pytest.mark.e2e

WEIGHTS = "Data/com.apple.CoreML/weights/weight.bin"
GPU_INT4_WEIGHTS_WITHOUT_VERIFY = 1759616  # bytes; its sha256 is pinned in tests/pipeline/test_gpu_target_unchanged


@pytest.fixture(scope="module")
def exports(tmp_path_factory, tiny_ane_export):
    """{(target, draft tokens): folder} of the embedded model, int4 for gpu and the ane default (mixed); gpu int4
    without verify is pinned byte for byte by tests/pipeline/test_gpu_target_unchanged."""
    root = tmp_path_factory.mktemp("speculative")
    folders = {(ANE, 4): tiny_ane_export}  # the defaults (tests/pipeline/conftest.py)
    for target, quant, drafts in ((ANE, None, (0,)), (GPU, "int4", (4,))):
        for draft in drafts:
            folder = root / f"{target}-{draft}"
            export(ExportOptions(size=EMBEDDED_SIZE, target=target, quant=quant, draft_tokens=draft, output=folder,
                                 verify=False))
            folders[target, draft] = folder
    return folders


@pytest.mark.parametrize("target", [ANE, GPU])
def test_verify_function_is_listed(exports, target):
    speculative = read_manifest(exports[target, 4])
    functions = speculative["chunks"][0]["functions"]
    assert speculative["verify_length"] == 5 and speculative["graph"]["verify_length"] == 5
    assert "verify" in functions and "verify" in speculative["graph"]["functions"]
    assert ("embed_verify" in functions) == (target == ANE)
    assert functions["verify"]["outputs"][0]["shape"][:2] == [1, 5]  # logits for every row


def test_verify_function_shares_every_weight(exports, tmp_path):
    """Weights stored once: the weight file is byte-identical with and without verify (the ane graph takes its
    small tables as inputs); gpu's grows by the verify graph's few small constants (its row offsets) only."""
    plain, speculative = read_manifest(exports[ANE, 0]), read_manifest(exports[ANE, 4])
    assert "verify" not in plain["chunks"][0]["functions"] and plain["verify_length"] is None
    assert plain["chunks"][0]["weights_sha256"] == speculative["chunks"][0]["weights_sha256"]
    gpu = read_manifest(exports[GPU, 4])
    pinned = (exports[GPU, 4] / gpu["package"] / WEIGHTS).stat().st_size
    assert 0 < pinned - GPU_INT4_WEIGHTS_WITHOUT_VERIFY < 1024


@pytest.mark.parametrize("target", [ANE, GPU])
def test_elm_verify_checks_verify_against_decode(exports, target):
    report = verify_export(exports[target, 4])
    assert report.passed and report.verify_function is not None
    assert report.verify_function.top1_agreement == 1.0 and report.verify_function.mean_kl < 1e-5


def verify_against_decode(folder):
    manifest = read_manifest(folder)
    packages = [folder / chunk["package"] for chunk in manifest["chunks"]]
    tokens = list(range(3, 3 + manifest["prefill_length"] + 12))

    def run(drive):
        return run_chunk_by_chunk(packages, manifest, tokens, len(tokens), drive=drive)

    return check_verify_function(run, manifest, tokens), run, tokens, manifest


def test_a_mask_that_lets_verify_see_rejected_drafts_fails_the_check(exports, monkeypatch):
    """The check can fail: with every slot visible, verify's rows read the wrong drafts' keys and values."""
    honest, *_ = verify_against_decode(exports[ANE, 4])
    assert honest.passes({"mean_kl": 1e-3, "top1": 0.98})
    real = calls_module.call_inputs

    def leaky(position, tokens, manifest):
        inputs = real(position, tokens, manifest)
        if tokens > 1:  # prefill and verify see every slot, the wrong drafts' too
            inputs["mask"] = np.zeros_like(inputs["mask"])
        return inputs

    monkeypatch.setattr(calls_module, "call_inputs", leaky)
    broken, *_ = verify_against_decode(exports[ANE, 4])
    assert not broken.passes({"mean_kl": 1e-3, "top1": 0.98}), broken


def test_verify_rows_equal_decode_rows_row_by_row(exports):
    """verify's k+1 rows are decode's rows for the same tokens at the same positions (gpu: the mask is in-graph)."""
    _, run, tokens, manifest = verify_against_decode(exports[GPU, 4])
    verified, decoded = run(lambda executor: verify_script(calls_module.ExportCalls(executor, manifest), tokens))
    assert verified.shape == decoded.shape == (6, manifest["vocab_size"])
    assert np.abs(verified - decoded).max() < 0.05
    assert (verified.argmax(-1) == decoded.argmax(-1)).all()


def test_bad_draft_tokens_is_a_usage_error(tmp_path):
    from exporter.errors import UsageError

    with pytest.raises(UsageError, match="--draft-tokens"):
        export(ExportOptions(size=EMBEDDED_SIZE, draft_tokens=-1, output=tmp_path / "x", verify=False))
    assert not (tmp_path / "x").exists()


def test_manifest_generation_section(exports):
    manifest = json.loads((exports[GPU, 4] / "export.json").read_text())
    generation = manifest["generation"]
    assert generation["chat_template"] is None  # the embedded model is a base model
    assert generation["defaults"]["repetition_penalty"] == 1.2 and "generate_openelm" in \
        generation["sources"]["repetition_penalty"]
    assert generation["stop_token_ids"] == [manifest["eos_token_id"]]
    assert (generation["bos_token"], generation["eos_token"]) == ("<s>", "</s>")
