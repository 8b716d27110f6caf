"""Every wrong input to elm-export / elm-verify: one line on stderr, exit 2 (usage) or 1, no traceback, no output."""

import json
import os
import pickle
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from exporter import pipeline
from exporter.cli import export_command, run_cli
from exporter.coreml import functions
from exporter.model.load import random_state_dict, save_checkpoint
from exporter.verify.cli import verify_command
from tests.helpers import small_config

pytestmark = pytest.mark.e2e  # every test here runs a whole export

FAST = ["--no-tokenizer", "--no-verify", "--prefill-length", "8", "--quant", "none", "--quiet",
        "--draft-tokens", "0"]  # the verify function has its own tests (tests/pipeline/test_speculative_export)


def run_export(args, capsys):
    code = run_cli(export_command, "elm-export", [str(a) for a in args])
    return code, capsys.readouterr().err


def run_verify(args, capsys):
    code = run_cli(verify_command, "elm-verify", [str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.err


def assert_one_line(err, code, expected_code, pattern):
    import re

    lines = err.strip().splitlines()
    assert code == expected_code, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]


@pytest.fixture
def ckpt(tmp_path):
    config = small_config()
    folder = tmp_path / "ckpt"
    save_checkpoint(folder, config, random_state_dict(config))
    return folder


def rewrite_weights(folder, mutate):
    state = random_state_dict(small_config())
    mutate(state)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))


# --- options -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "args, code, pattern",
    [
        (["--size", "7b"], 2, r"unknown --size '7b'; choose one of: tiny, tiny-draft, 1_1b, 270m, 3b, 450m, 1\.1b"),
        (["--quant", "int3"], 2, r"unknown --quant recipe 'int3'; choose one of: none, int8, int4, lut2"),
        (["--context-length", "4096"], 2, r"--context-length 4096 exceeds the model's maximum 128"),
        (["--context-length", "96", "--prefill-length", "64"], 2, r"not a multiple of --prefill-length 64"),
        (["--context-length", "32", "--prefill-length", "64"], 2, r"--prefill-length 64 exceeds --context-length 32"),
        (["--context-length", "abc"], 2, r"'abc' is not a valid integer"),
        (["--size", "270m"], 2, r"--model-dir cannot be combined with --size"),
        (["--instruct"], 2, r"--model-dir cannot be combined with --size, --instruct"),
        (["--quant-map", "embedding"], 2, r"--quant-map entry 'embedding' is not KEY=RECIPE"),
        (["--quant-map", "decoder=int8"], 2, r"--quant-map key 'decoder' is not one of"),
        (["--quant-map", "embedding=int5"], 2, r"unknown --quant recipe 'int5'"),
        (["--quant", "lut4", "--group-size", "48"], 2, r"--group-size 48 does not divide"),
        (["--bogus"], 2, r"No such option '--bogus'"),
    ],
)
def test_bad_options(ckpt, tmp_path, capsys, args, code, pattern):
    base = ["--model-dir", ckpt, "--output", tmp_path / "out"] + [a for a in FAST if a not in ("--prefill-length", "8")]
    if "--prefill-length" not in args:
        base += ["--prefill-length", "8"]
    if "--quant" in args:
        i = base.index("--quant")
        del base[i : i + 2]
    got, err = run_export(base + args, capsys)
    assert_one_line(err, got, code, pattern)
    assert not (tmp_path / "out").exists()


def test_no_source_is_a_usage_error(tmp_path, capsys):
    got, err = run_export(["--output", tmp_path / "o"] + FAST, capsys)
    assert_one_line(err, got, 2, r"say which model to export: --size")


# --- checkpoints ---------------------------------------------------------------------------------------------------

def _missing_config(folder):
    (folder / "config.json").unlink()


def _bad_json(folder):
    (folder / "config.json").write_text("{oops")


def _llama(folder):
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))


def _pickle_only(folder):
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"x": 1}))


def _truncate(folder):
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])


def _missing_shard(folder):
    config = small_config()
    (folder / "model.safetensors").unlink()
    save_checkpoint(folder, config, random_state_dict(config), max_shard_bytes=400_000)
    sorted(folder.glob("model-00001-of-*.safetensors"))[0].unlink()


def _nan(folder):
    rewrite_weights(folder, lambda s: s["transformer.norm.weight"].fill_(float("inf")))


@pytest.mark.parametrize(
    "breaker, pattern",
    [
        (_missing_config, r"config.json: not found"),
        (_bad_json, r"config.json: cannot be read as JSON"),
        (_llama, r"model_type is 'llama', not 'openelm'"),
        (lambda f: rewrite_weights(f, lambda s: s.pop("transformer.norm.weight")), r"missing tensor 'transformer.norm.weight'"),
        (lambda f: rewrite_weights(f, lambda s: s.update(extra=torch.zeros(3))), r"unexpected tensor 'extra'"),
        (lambda f: rewrite_weights(f, lambda s: s.update({"transformer.norm.weight": torch.ones(7)})),
         r"'transformer.norm.weight' has shape \[7\], expected \[256\]"),
        (_nan, r"'transformer.norm.weight' contains NaN or Inf"),
        (_truncate, r"not a readable safetensors file .*truncated"),
        (_missing_shard, r"names shard 'model-00001-of-\d+.safetensors', which is missing"),
        (_pickle_only, r"refused because unpickling can run arbitrary code"),
    ],
)
def test_bad_checkpoints(ckpt, tmp_path, capsys, breaker, pattern):
    breaker(ckpt)
    got, err = run_export(["--model-dir", ckpt, "--output", tmp_path / "out"] + FAST, capsys)
    assert_one_line(err, got, 1, pattern)
    assert not (tmp_path / "out").exists()


def test_missing_model_dir(tmp_path, capsys):
    got, err = run_export(["--model-dir", tmp_path / "nope", "--output", tmp_path / "out"] + FAST, capsys)
    assert_one_line(err, got, 1, r"--model-dir .*nope: no such folder")


# --- tokenizer -----------------------------------------------------------------------------------------------------

def test_corrupt_tokenizer(ckpt, tmp_path, capsys):
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "tokenizer.json").write_text("{not a tokenizer")
    args = ["--model-dir", ckpt, "--output", tmp_path / "out", "--tokenizer", tok] + FAST[1:]
    got, err = run_export(args, capsys)
    assert_one_line(err, got, 1, r"tokenizer.json: not a valid tokenizer.json .*re-download")


def test_tokenizer_unavailable_offline_says_how_to_fix(ckpt, tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--model-dir", str(ckpt), "--output", str(tmp_path / "out")] + FAST[1:],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert_one_line(result.stderr, result.returncode, 1,
                    r"cannot get the tokenizer meta-llama/Llama-2-7b-hf.*hf auth login|cannot get the tokenizer.*--no-tokenizer")
    assert not (tmp_path / "out").exists()


# --- output --------------------------------------------------------------------------------------------------------

def test_existing_output_without_force(ckpt, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    got, err = run_export(["--model-dir", ckpt, "--output", tmp_path / "out"] + FAST, capsys)
    assert_one_line(err, got, 1, r"already exists; pass --force")


def test_unwritable_output_folder(ckpt, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    got, err = run_export(["--model-dir", ckpt, "--output", blocker / "out"] + FAST, capsys)
    assert_one_line(err, got, 1, r"cannot write to .*file")


@pytest.mark.parametrize("stage, failure, code, message", [
    ("write_manifest", OSError(28, "No space left on device"), 1, r"No space left on device\); nothing was written"),
    ("convert_module", KeyboardInterrupt(), 130, r"interrupted; nothing was written"),
], ids=["disk full mid-write", "ctrl-c during conversion"])
def test_a_failure_mid_export_leaves_nothing(ckpt, tmp_path, capsys, monkeypatch, stage, failure, code, message):
    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(pipeline if stage == "write_manifest" else functions, stage, fail)
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    got, err = run_export(["--model-dir", ckpt, "--output", out_dir / "out"] + FAST, capsys)
    assert_one_line(err, got, code, message)
    assert list(out_dir.iterdir()) == []


# --- security ------------------------------------------------------------------------------------------------------

def test_remote_code_in_checkpoint_never_runs(ckpt, tmp_path, capsys):
    marker = tmp_path / "pwned"
    for name in ("modeling_openelm.py", "configuration_openelm.py", "__init__.py"):
        (ckpt / name).write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    raw = json.loads((ckpt / "config.json").read_text())
    raw["auto_map"] = {"AutoConfig": "configuration_openelm.OpenELMConfig"}
    (ckpt / "config.json").write_text(json.dumps(raw))
    got, err = run_export(["--model-dir", ckpt, "--output", tmp_path / "out"] + FAST, capsys)
    assert got == 0, err
    assert not marker.exists()


def test_debug_shows_the_traceback(ckpt, tmp_path):
    (ckpt / "config.json").unlink()
    with pytest.raises(Exception, match="config.json: not found"):
        run_cli(export_command, "elm-export", ["--model-dir", str(ckpt), "--output", str(tmp_path / "o"), "--debug"]
                + FAST)


def test_per_channel_scale_needs_a_palettized_recipe(ckpt, tmp_path, capsys):
    args = ["--model-dir", ckpt, "--output", tmp_path / "out", "--quant", "int4", "--per-channel-scale",
            "--no-tokenizer", "--no-verify", "--prefill-length", "8", "--quiet"]
    got, err = run_export(args, capsys)
    assert_one_line(err, got, 2, r"--per-channel-scale applies to palettized weights only")
    assert not (tmp_path / "out").exists()


def test_per_channel_scale_is_refused_with_calibrated_palettes(ckpt, tmp_path, capsys):
    args = ["--model-dir", ckpt, "--output", tmp_path / "out", "--quant", "lut4", "--per-channel-scale",
            "--compute-target", "gpu", "--calibrate", "--no-tokenizer", "--no-verify", "--prefill-length", "8",
            "--quiet"]
    got, err = run_export(args, capsys)
    assert_one_line(err, got, 2, r"--per-channel-scale cannot be combined with --calibrate")
    assert not (tmp_path / "out").exists()


def test_unknown_target_is_a_usage_error(ckpt, tmp_path, capsys):
    code, err = run_export(["--model-dir", ckpt, "--output", tmp_path / "out", "--target", "npu", *FAST], capsys)
    assert_one_line(err, code, 2, r"--target.*'npu' is not one of 'ane', 'gpu'")
    assert not (tmp_path / "out").exists()


def test_int4_for_the_neural_engine_says_so_in_one_line(ckpt, tmp_path, capsys):
    args = ["--model-dir", ckpt, "--output", tmp_path / "out", "--no-tokenizer", "--no-verify", "--prefill-length", "8",
            "--quant", "int4", "--target", "ane"]
    code = run_cli(export_command, "elm-export", [str(a) for a in args])
    captured = capsys.readouterr()
    notes = [line for line in (captured.out + captured.err).splitlines() if "may not run on the Neural Engine" in line]
    assert code == 0 and len(notes) == 1 and "--quant mixed" in notes[0]
