"""elm-verify is not a rubber stamp: a clean package passes, every tampered one fails with exit 1."""

import json
import shutil
import struct

import numpy as np
import pytest

from exporter.cli import run_cli
from exporter.manifest.build import file_hashes
from exporter.model.load import random_state_dict, save_checkpoint
from exporter.pipeline import ExportOptions, export
from exporter.verify.check import verify_export
from exporter.verify.cli import verify_command
from tests.helpers import small_config

pytestmark = pytest.mark.e2e  # every test here runs a whole export

BLOB_HEADER = struct.Struct("<IIQQ")  # sentinel, dtype, size in bytes, data offset (Core ML weight-file metadata)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    config = small_config()
    root = tmp_path_factory.mktemp("verify")
    save_checkpoint(root / "ckpt", config, random_state_dict(config, seed=11))
    # The gpu graph: the tampering below edits its program (the ane graph is verified by tests/quant, tests/coreai).
    export(ExportOptions(draft_tokens=0,  # verify is tested in tests/pipeline/test_speculative_export
                         model_dir=root / "ckpt", tokenizer=None, quant="none", prefill_length=8, target="gpu",
                         output=root / "clean", verify=False))
    return root


@pytest.fixture
def package_copy(exported, tmp_path):
    folder = tmp_path / "pkg"
    shutil.copytree(exported / "clean", folder)
    return folder


def manifest_of(folder):
    return json.loads((folder / "export.json").read_text())


def spec_of(folder):
    import coremltools as ct

    manifest = manifest_of(folder)
    model = ct.models.MLModel(str(folder / manifest["package"]), skip_model_load=True)
    return model, model.get_spec()


def rehash(folder):
    """Record the package's files in export.json as if the exporter itself had written these bytes."""
    manifest = manifest_of(folder)
    files = file_hashes(folder / manifest["package"])
    manifest["chunks"][0]["files"] = files
    manifest["weights_sha256"] = manifest["chunks"][0]["weights_sha256"] = files[manifest["weights_file"]]
    (folder / "export.json").write_text(json.dumps(manifest))


def save_spec(folder, model, spec):
    """Write an edited program back into the package (same signature; export.json rehashed to match)."""
    import coremltools as ct

    manifest = manifest_of(folder)
    edited = ct.models.MLModel(spec, weights_dir=model.weights_dir, skip_model_load=True)
    tmp = folder / "edited.mlpackage"
    edited.save(str(tmp))
    shutil.rmtree(folder / manifest["package"])
    tmp.rename(folder / manifest["package"])
    rehash(folder)


def run_verify(folder, capsys, *extra):
    code = run_cli(verify_command, "elm-verify", [str(folder), "--tokens", "20", "--steps", "12", *extra])
    return code, capsys.readouterr()


def test_clean_float16_package_agrees_on_every_greedy_token(exported):
    report = verify_export(exported / "clean", tokens=20, steps=32)
    assert report.passed
    assert report.decode_steps == 32 and report.prefill_calls == 3
    assert report.reference.greedy_agree and report.reference.top1_agreement == 1.0
    assert report.reference.nonfinite == 0
    assert report.reference.max_abs_error < 0.02


def test_clean_package_cli_exit_0(exported, capsys):
    code, out = run_verify(exported / "clean", capsys)
    assert code == 0, out.err
    assert "PASS" in out.out and "not available on this OS" in out.out


def test_manifest_lists_and_describes_every_package_file(exported):
    from exporter.manifest.check import check_integrity, check_manifest

    folder = exported / "clean"
    manifest = manifest_of(folder)
    package = folder / manifest["package"]
    assert set(manifest["chunks"][0]["files"]) == {
        "Manifest.json", "Data/com.apple.CoreML/model.mlmodel", "Data/com.apple.CoreML/weights/weight.bin"}
    assert manifest["chunks"][0]["files"] == file_hashes(package)
    assert check_integrity(folder, manifest) == [package.resolve()]
    check_manifest(folder, manifest)


def test_changed_constant_fails(package_copy, capsys):
    model, spec = spec_of(package_copy)
    query_scale = np.float16(1 / np.sqrt(32)).tobytes()
    changed = 0
    for function in spec.mlProgram.functions.values():
        for op in function.block_specializations[function.opset].operations:
            value = op.attributes["val"].immediateValue.tensor.bytes if op.type == "const" else None
            if value is not None and value.values == query_scale:
                value.values = np.float16(0.125).tobytes()  # 1/√32 → 1/8: attention logits rescaled
                changed += 1
    assert changed >= 4
    save_spec(package_copy, model, spec)
    code, out = run_verify(package_copy, capsys)
    assert code == 1 and "FAIL" in out.out, out.out


def weight_blob(spec, program_name):
    function = spec.mlProgram.functions["decode"]
    for op in function.block_specializations[function.opset].operations:
        if op.type == "const" and op.outputs[0].name.startswith(program_name):
            value = op.attributes["val"]
            return value.blobFileValue.offset, tuple(d.constant.size for d in value.type.tensorType.dimensions)
    raise AssertionError(f"no const {program_name}")


def test_swapped_weight_rows_fail(package_copy, capsys):
    manifest = manifest_of(package_copy)
    _, spec = spec_of(package_copy)
    offset, shape = weight_blob(spec, "vocab_pieces_0")
    weights = package_copy / manifest["package"] / manifest["weights_file"]
    blob = bytearray(weights.read_bytes())
    _, _, size, data_offset = BLOB_HEADER.unpack_from(blob, offset)
    matrix = np.frombuffer(bytes(blob[data_offset : data_offset + size]), dtype=np.float16).reshape(shape).copy()
    matrix[[1, 5]] = matrix[[5, 1]]  # swap the rows of BOS and token 5
    blob[data_offset : data_offset + size] = matrix.tobytes()
    weights.write_bytes(bytes(blob))
    rehash(package_copy)
    code, out = run_verify(package_copy, capsys)
    assert code == 1 and "FAIL" in out.out, out.out


def test_removed_state_write_fails(package_copy, capsys):
    model, spec = spec_of(package_copy)
    for function in spec.mlProgram.functions.values():
        ops = function.block_specializations[function.opset].operations
        if not any(op.type == "write_state" for op in ops):
            continue  # the ane target's embed functions hold no state
        renames, keep = {}, []
        for i, op in enumerate(ops):
            if op.type == "write_state" and op.inputs["input"].arguments[0].name == "value_cache":
                reread = ops[i + 1]  # coreml_update_state = write_state + read_state of the written value
                renames[reread.outputs[0].name] = op.inputs["data"].arguments[0].name
            elif not (i > 0 and ops[i - 1].type == "write_state" and ops[i - 1].inputs["input"].arguments[0].name
                      == "value_cache" and op.type == "read_state"):
                keep.append(op)
        for op in keep:
            for argument in op.inputs.values():
                for binding in argument.arguments:
                    binding.name = renames.get(binding.name, binding.name)
        del ops[:]
        ops.extend(keep)
        assert renames
    save_spec(package_copy, model, spec)
    code, out = run_verify(package_copy, capsys)
    assert code == 1 and "FAIL" in out.out, out.out


def test_weights_changed_after_export_detected_before_running(package_copy, capsys, monkeypatch):
    manifest = manifest_of(package_copy)
    weights = package_copy / manifest["package"] / manifest["weights_file"]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    from exporter.verify import check

    monkeypatch.setattr(check, "source_model", lambda *a: pytest.fail("ran before checking integrity"))
    code, out = run_verify(package_copy, capsys)
    assert code == 1
    assert out.err.strip().splitlines() == [out.err.strip()]
    assert "sha256 does not match export.json" in out.err


def test_missing_manifest(tmp_path, capsys):
    code, out = run_verify(tmp_path, capsys)
    assert code == 1 and "export.json: not found" in out.err and len(out.err.strip().splitlines()) == 1


def test_package_from_another_model(package_copy, tmp_path, capsys):
    other = small_config(num_layers=3)
    save_checkpoint(tmp_path / "other", other, random_state_dict(other))
    code, out = run_verify(package_copy, capsys, "--model-dir", str(tmp_path / "other"))
    assert code == 1 and "exported from another model" in out.err


@pytest.mark.parametrize("layout", ["chunks", "single-package manifest without chunks"])
def test_manifest_paths_cannot_escape(package_copy, capsys, layout):
    manifest = manifest_of(package_copy)
    if layout == "chunks":
        manifest["chunks"][0]["package"] = "../../../etc"
    else:
        del manifest["chunks"]
        manifest["package"] = "../../../etc"
    (package_copy / "export.json").write_text(json.dumps(manifest))
    code, out = run_verify(package_copy, capsys)
    # a manifest without chunks is refused before any path in it is used
    expected = "outside" if layout == "chunks" else "'chunks' does not list the packages"
    assert code == 1 and expected in out.err and len(out.err.strip().splitlines()) == 1, out.err


def test_prompt_needs_a_tokenizer(package_copy, capsys):
    code, out = run_verify(package_copy, capsys, "--prompt", "hello")
    assert code == 2 and "give --prompt or --tokens, not both" in out.err
    code = run_cli(verify_command, "elm-verify", [str(package_copy), "--prompt", "hello"])
    err = capsys.readouterr().err
    assert code == 1 and "no tokenizer.json" in err


def test_random_weights_judge_the_graph_by_kl_alone():
    """Seeded random weights have near-tied logits whose top-1 swaps under float16 rounding alone (3B int4:
    97.3% at graph KL 2e-5); their graph is judged by KL, a trained model's by KL and top-1."""
    from exporter.verify.report import TOTAL_THRESHOLDS, Comparison, ParityReport

    def report(judge_total, graph_kl, graph_top1):
        far = (Comparison(1.0, 5e-3, 0.95, True, None, 0) if judge_total  # within int4's total thresholds
               else Comparison(5.7, 0.52, 0.03, False, 0, 0))
        graph = Comparison(0.03, graph_kl, graph_top1, False, 16, 0)
        return ParityReport("int4", 131, 16, 3, far, TOTAL_THRESHOLDS["int4"], graph, judge_total=judge_total)

    assert report(False, 2e-5, 0.973).passed
    assert not report(False, 2e-3, 0.973).passed  # a graph error shows in KL
    assert not report(True, 2e-5, 0.973).passed  # trained weights: top-1 is judged too
    assert report(True, 2e-5, 0.99).passed


def test_graph_top1_forgives_only_flips_within_the_observed_error():
    """A top-1 swap where the reference's own top-2 gap is within the run's typical |Δlogit| (float16 noise) is a
    near-tie, judged by KL; a swap across a wider gap still counts."""
    from exporter.verify.compare import compare

    rng = np.random.default_rng(0)
    reference = np.zeros((10, 5), np.float32)
    reference[:, 0] = 1.0
    reference[0, 1] = 0.995  # position 0: a near-tie
    noise = rng.uniform(-0.01, 0.01, reference.shape).astype(np.float32)  # every position's float16 noise
    package = reference + noise
    package[0, 1] = 1.01  # swapped across a gap of 0.005, inside the noise: forgiven
    tied = compare(reference, package, 1)
    assert tied.top1_agreement == 0.9 and tied.top1_beyond_ties == 1.0
    package = reference + noise
    package[3, 2] = 1.5  # swapped across a gap of 1.0: not a tie
    wide = compare(reference, package, 1)
    assert wide.top1_agreement == 0.9 and wide.top1_beyond_ties == 0.9
