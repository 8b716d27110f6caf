"""export.json must describe the package it names: every field an app drives it by, and every file, is checked
against the saved package before anything runs (elm-verify exits 1 with one line naming what disagrees)."""

import json
import shutil

import pytest

from exporter.cli import run_cli
from exporter.verify.cli import verify_command

NOT_THIS = "the manifest does not describe this package (re-export it)"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from exporter.pipeline import ExportOptions, export

    folder = tmp_path_factory.mktemp("check") / "tiny"
    # The gpu graph: the field edits below are its contract's (input_ids in, logits from both functions).
    export(ExportOptions(draft_tokens=0, size="tiny", quant="none", target="gpu", output=folder, verify=False))
    return folder


@pytest.fixture
def folder(exported, tmp_path, monkeypatch):
    """A copy of the tiny export to tamper with; loading the checkpoint (the first step of running) fails the test."""
    from exporter.verify import check

    copy = tmp_path / "export"
    shutil.copytree(exported, copy)
    monkeypatch.setattr(check, "source_model", lambda *a, **k: pytest.fail("ran before checking the manifest"))
    return copy


def manifest_of(folder):
    return json.loads((folder / "export.json").read_text())


def edit_manifest(folder, edit):
    manifest = manifest_of(folder)
    edit(manifest)
    (folder / "export.json").write_text(json.dumps(manifest, indent=2))


def package_of(folder):
    return folder / manifest_of(folder)["package"]


def verify_error(folder, capsys, *args):
    """elm-verify's exit code and its single stderr line (asserted to be one line)."""
    code = run_cli(verify_command, "elm-verify", [str(folder), *args])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("elm-verify: error: "), err
    return code, err


def chunk(manifest):
    return manifest["chunks"][0]


def set_shape_axis(features, name, axis, value):
    next(f for f in features if f["name"] == name)["shape"][axis] = value


# (edit, the field the error names first); each is an export.json that no longer describes the package
FIELD_EDITS = {
    "chunk prefill input shape": (
        lambda m: set_shape_axis(chunk(m)["functions"]["prefill"]["inputs"], "input_ids", 1, 32),
        "export.json: chunks[0].functions.prefill.inputs[input_ids].shape[1] is 32 but the package declares 64"),
    "chunk decode input name": (
        lambda m: chunk(m)["functions"]["decode"]["inputs"][1].update(name="pos"),
        "export.json: chunks[0].functions.decode.inputs[position].name is \"pos\""),
    "chunk decode output dtype": (
        lambda m: chunk(m)["functions"]["decode"]["outputs"][0].update(dtype="float32"),
        "export.json: chunks[0].functions.decode.outputs[logits].dtype is \"float32\" but the package declares "
        "\"float16\""),
    "chunk function removed": (
        lambda m: chunk(m)["functions"].pop("prefill"),
        "export.json: chunks[0].functions.prefill is missing"),
    "chunk function added": (
        lambda m: chunk(m)["functions"].update(rewind=chunk(m)["functions"]["decode"]),
        "export.json: chunks[0].functions.rewind is"),
    "chunk state dtype": (
        lambda m: chunk(m)["states"][1].update(dtype="float32"),
        "export.json: chunks[0].states[value_cache].dtype is \"float32\""),
    "chunk state heads": (
        lambda m: set_shape_axis(chunk(m)["states"], "key_cache", 1, 64),
        "export.json: chunks[0].states[key_cache].shape[1] is 64 but the package declares 32"),
    "top-level functions": (
        lambda m: set_shape_axis(m["functions"]["decode"]["outputs"], "logits", 3, 2048),
        "export.json: functions.decode.outputs[logits].shape[3] is 2048 but the package declares 4096"),
    "top-level states": (
        lambda m: m["states"].pop(),
        "export.json: states is"),
    "state_names": (
        lambda m: m["state_names"].reverse(),
        "export.json: state_names is [\"value_cache\", \"key_cache\"]"),
    "context_length": (
        lambda m: m.update(context_length=256),
        "export.json: context_length is 256 but the package's key_cache holds 512 positions"),
    "context_length as text": (
        lambda m: m.update(context_length="512"),
        "export.json: context_length is \"512\" but the package's key_cache holds 512 positions"),
    "prefill_length": (
        lambda m: m.update(prefill_length=128),
        "export.json: prefill_length is 128 but the package's prefill takes 64 tokens per call"),
    "vocab_size too large": (
        lambda m: m.update(vocab_size=5000),
        "export.json: vocab_size is 5000 but the package's logits [1, 64, 1, 4096] hold 1 × 4096 entries"),
    "vocab_size unlike the model": (
        lambda m: m.update(vocab_size=4000),
        "export.json: vocab_size is 4000 but model.vocab_size is 4096"),
    "logits_layout": (
        lambda m: m.update(logits_layout={"pieces": 2, "piece_size": 2048}),
        "export.json: logits_layout.pieces is 2 but the package's logits [1, 64, 1, 4096] declares 1"),
    "bos_token_id": (
        lambda m: m.update(bos_token_id=4096),
        "export.json: bos_token_id is 4096, outside the vocabulary of 4096 tokens"),
    "chunk kv_cache.shape": (
        lambda m: chunk(m)["kv_cache"]["shape"].__setitem__(2, 1024),
        "export.json: chunks[0].kv_cache.shape is [1, 32, 1024, 16] but the package's key_cache is [1, 32, 512, 16]"),
    "top-level kv_cache.shape": (
        lambda m: m["kv_cache"].update(shape=[1, 16, 512, 16]),
        "export.json: kv_cache.shape is [1, 16, 512, 16] but the package's key_cache is [1, 32, 512, 16]"),
    "chunk input": (
        lambda m: chunk(m).update(input="hidden_in"),
        "export.json: chunks[0].input is \"hidden_in\" but the first chunk takes input_ids"),
    "top-level package": (
        lambda m: m.update(package="other.mlpackage"),
        "export.json: package is \"other.mlpackage\" but chunks[0].package is"),
}


@pytest.mark.e2e
@pytest.mark.parametrize("name", list(FIELD_EDITS))
def test_manifest_field_unlike_the_package_fails(folder, capsys, name):
    edit, expected = FIELD_EDITS[name]
    edit_manifest(folder, edit)
    code, err = verify_error(folder, capsys, "--steps", "1", "--tokens", "8")
    assert code == 1
    assert err.startswith(f"elm-verify: error: {expected}"), err
    assert err.endswith(NOT_THIS), err


@pytest.mark.e2e
def test_a_billion_token_context_is_refused(folder, capsys):
    edit_manifest(folder, lambda m: m.update(context_length=10**9))
    code, err = verify_error(folder, capsys)
    assert code == 1
    assert err == ("elm-verify: error: export.json: context_length is 1000000000 but the package's key_cache holds "
                   f"512 positions; {NOT_THIS}")


@pytest.mark.e2e
def test_a_billion_token_context_in_the_states_too_is_refused(folder, capsys):
    """A consistent lie: context_length, the states and the cache layout all claim 10^9 positions."""
    def claim_billion(manifest):
        manifest["context_length"] = 10**9
        for entry in (manifest, chunk(manifest)):
            for state in entry["states"]:
                state["shape"][2] = 10**9
            entry["kv_cache"]["shape"][2] = 10**9

    edit_manifest(folder, claim_billion)
    code, err = verify_error(folder, capsys)
    assert code == 1
    assert err.startswith("elm-verify: error: export.json: context_length is 1000000000 but the package's "
                          "key_cache holds 512 positions"), err
    edit_manifest(folder, lambda m: m.update(context_length=512))  # the states alone still disagree
    code, err = verify_error(folder, capsys)
    assert code == 1
    assert "chunks[0].states[key_cache].shape[2] is 1000000000 but the package declares 512" in err, err


@pytest.mark.e2e
def test_changed_program_file_fails(folder, capsys):
    program = package_of(folder) / "Data/com.apple.CoreML/model.mlmodel"
    data = bytearray(program.read_bytes())
    data[len(data) // 2] ^= 0x01
    program.write_bytes(bytes(data))
    code, err = verify_error(folder, capsys)
    assert code == 1 and "model.mlmodel: sha256 does not match export.json" in err, err


@pytest.mark.e2e
def test_file_added_to_the_package_fails(folder, capsys):
    (package_of(folder) / "Data/com.apple.CoreML/extra.bin").write_bytes(b"\0" * 16)
    code, err = verify_error(folder, capsys)
    assert code == 1 and "extra.bin: in the package but not listed in export.json" in err, err


@pytest.mark.e2e
def test_file_missing_from_the_package_fails(folder, capsys):
    (package_of(folder) / "Manifest.json").unlink()
    code, err = verify_error(folder, capsys)
    assert code == 1 and "Manifest.json: listed in export.json but missing from the package" in err, err


@pytest.mark.e2e
@pytest.mark.parametrize("listed, expected", [
    ("../../export.json", "names '../../export.json', which is outside"),
    ("/etc/passwd", "names '/etc/passwd', which is outside"),
])
def test_listed_files_cannot_escape_the_package(folder, capsys, listed, expected):
    edit_manifest(folder, lambda m: chunk(m)["files"].update({listed: "0" * 64}))
    code, err = verify_error(folder, capsys)
    assert code == 1 and expected in err, err


@pytest.mark.e2e
def test_manifest_without_file_list_fails(folder, capsys):
    edit_manifest(folder, lambda m: chunk(m).pop("files"))
    code, err = verify_error(folder, capsys)
    assert code == 1 and "export.json: chunks[0].files does not list the package's files" in err, err


@pytest.mark.e2e
@pytest.mark.parametrize("path", ["folder", "export.json", "package", "file in the package"])
def test_verify_accepts_the_folder_its_manifest_or_a_package(exported, capsys, path):
    target = {
        "folder": exported,
        "export.json": exported / "export.json",
        "package": package_of(exported),
        "file in the package": package_of(exported) / "Manifest.json",
    }[path]
    code = run_cli(verify_command, "elm-verify", [str(target), "--steps", "1", "--tokens", "8"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.startswith(f"{exported.name}: recipe none") and "PASS" in out.out, out.out


def test_missing_path_says_what_to_pass(tmp_path, capsys):
    code, err = verify_error(tmp_path / "nope", capsys)
    assert code == 1
    assert err.endswith("nope: no such file or folder; pass the folder elm-export wrote, its export.json, "
                        "or a .mlpackage or .aimodel inside it"), err


def test_package_outside_an_export_says_what_to_pass(tmp_path, capsys):
    (tmp_path / "loose.mlpackage").mkdir()
    code, err = verify_error(tmp_path / "loose.mlpackage", capsys)
    assert code == 1
    assert f"loose.mlpackage: a Core ML package, but {tmp_path.resolve()} has no export.json" in err, err


def test_package_the_manifest_does_not_list(tmp_path, capsys):
    (tmp_path / "a.mlpackage").mkdir()
    (tmp_path / "b.mlpackage").mkdir()
    manifest = {"format": "elm-export/1", "chunks": [{"package": "a.mlpackage"}]}
    (tmp_path / "export.json").write_text(json.dumps(manifest))
    code, err = verify_error(tmp_path / "b.mlpackage", capsys)
    assert code == 1 and "b.mlpackage: not one of the packages" in err and "(a.mlpackage)" in err, err


def test_an_ane_export_described_as_gpu_fails_before_running(tmp_path, capsys, monkeypatch):
    """The checks follow export.json's graph target: an ane package under a gpu description is refused."""
    from exporter.pipeline import ExportOptions, export
    from exporter.verify import check

    folder = tmp_path / "ane"
    export(ExportOptions(draft_tokens=0, size="tiny", quant="none", context_length=64, prefill_length=16, output=folder,
                         verify=False))
    monkeypatch.setattr(check, "source_model", lambda *a, **k: pytest.fail("ran before checking the manifest"))
    edit_manifest(folder, lambda m: m["graph"].update(target="gpu"))
    code = run_cli(verify_command, "elm-verify", [str(folder)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("elm-verify: error: export.json: chunks[0].input is \"hidden_in\" but the "
                                        "first chunk takes input_ids"), err
