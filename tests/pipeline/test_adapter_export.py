"""Adapters in a package: two LoRA adapters as functions beside the base ones, every base weight stored once and
byte for byte as without them, each adapter's functions verified against the PEFT-semantics reference, greedy output
that the adapter changes; a merged DoRA adapter; and every bad adapter refused in one line with nothing written."""

import json
import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from exporter.checkpoint.sources import EMBEDDED_ADAPTER, EMBEDDED_SIZE
from exporter.cli import export_command, run_cli
from exporter.coreml.package import PROGRAM_IN_PACKAGE, WEIGHTS_IN_PACKAGE
from exporter.generate.backends import ExportModel
from exporter.generate.generator import GenerationOptions, generate
from exporter.generate.sampling import SamplingParameters
from exporter.manifest.document import read_manifest
from exporter.pipeline import ExportOptions, export
from exporter.verify.programs import read_program
from tests.helpers import small_config, write_peft_adapter

pytestmark = pytest.mark.e2e



@pytest.fixture(scope="module")
def tiny_config():
    from exporter.checkpoint.sources import EMBEDDED_DIR
    from exporter.model.config import OpenELMConfig

    return OpenELMConfig.from_file(EMBEDDED_DIR / "config.json")


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, tiny_config):
    """The embedded model with two adapters: the trained devil (every target, the embedding too) and a synthetic one
    on two projections; verified as elm-export verifies (the report is in export.json)."""
    root = tmp_path_factory.mktemp("adapters")
    second = write_peft_adapter(root / "terse", tiny_config, rank=4, alpha=4, seed=5, std=0.05,
                                targets=["qkv_proj", "proj_2"])
    folder = root / "export"
    export(ExportOptions(size=EMBEDDED_SIZE, output=folder, adapters=(f"devil={EMBEDDED_ADAPTER}",
                                                                      f"terse={second}")))
    return folder


def package_of(folder):
    return folder / read_manifest(folder)["package"]


def test_each_adapter_adds_its_functions_and_the_base_ones_stay(adapted, tiny_ane_export):
    manifest = read_manifest(adapted)
    functions = manifest["chunks"][0]["functions"]
    assert set(read_manifest(tiny_ane_export)["chunks"][0]["functions"]) < set(functions)
    for name in ("devil", "terse"):
        mapping = manifest["adapters"][name]["functions"]
        assert mapping["prefill"] == f"prefill_{name}" and mapping["verify"] == f"verify_{name}"
        assert set(mapping.values()) <= set(functions)
        assert functions[mapping["decode"]] == functions["decode"]  # an app calls it exactly as it calls decode
    assert manifest["adapters"]["devil"]["targets"] == ["token_embeddings", "qkv_proj", "out_proj", "proj_1", "proj_2"]
    assert manifest["merged_adapter"] is None


def weights_by_name(folder):
    """{const name: its bytes} of every weight the package's decode function holds (palettes: indices and tables)."""
    function = read_program(package_of(folder)).functions["decode"]
    found = {}
    for op in function.operations:
        for name, var in op.inputs.items() if op.op_type.startswith("constexpr") else []:
            if var.op is not None and var.op.op_type == "const" and var.val is not None and var.val.size > 64:
                found[f"{op.name}:{name}"] = np.asarray(var.val).tobytes()
        if op.op_type == "const" and op.outputs[0].val is not None and np.asarray(op.outputs[0].val).size > 64:
            found[re.sub(r"_\d+$", "", op.name)] = np.asarray(op.outputs[0].val).tobytes()  # less the dedup number
    return found


def test_base_weights_are_byte_identical_and_stored_once(adapted, tiny_ane_export):
    base, with_adapters = weights_by_name(tiny_ane_export), weights_by_name(adapted)
    assert len(base) > 40 and all(with_adapters.get(name) == value for name, value in base.items())
    manifest = read_manifest(adapted)
    stored = sum(entry["stored_bytes"] for entry in manifest["adapters"].values())
    own = sum(entry["source"]["bytes"] for entry in manifest["adapters"].values())
    weight_files = [(folder / read_manifest(folder)["package"] / WEIGHTS_IN_PACKAGE).stat().st_size
                    for folder in (tiny_ane_export, adapted)]
    # Stored once: the weight file grows by the adapters' matrices alone (and each blob's header and alignment).
    blobs = sum(2 * entry["modules"] for entry in manifest["adapters"].values())
    assert stored <= weight_files[1] - weight_files[0] <= stored + 128 * blobs
    # The rule for the whole package: base × 1.02 + the adapters' own bytes (their files) + their functions'
    # programs, which Core ML keeps per function (on the 3M-parameter embedded model they are as big as the weights).
    programs = [(package_of(folder) / PROGRAM_IN_PACKAGE).stat().st_size for folder in (tiny_ane_export, adapted)]
    packages = [w + p for w, p in zip(weight_files, programs)]
    assert packages[1] <= packages[0] * 1.02 + own + (programs[1] - programs[0])
    assert weight_files[1] <= weight_files[0] * 1.02 + stored


def test_each_adapter_passes_elm_verify_against_the_peft_reference(adapted):
    verification = read_manifest(adapted)["verification"]
    assert verification["passed"] and set(verification["adapters"]) == {"devil", "terse"}
    for report in verification["adapters"].values():
        assert report["passed"] and report["verify_function"] is not None
        assert report["dequantized_reference"]["mean_kl"] < 1e-3


def greedy(folder, prompt_ids, adapter=None, tokens=12):
    model = ExportModel(folder, adapter=adapter)
    options = GenerationOptions(tokens, SamplingParameters(temperature=0.0, repetition_penalty=1.0), ())
    return generate(model, prompt_ids, options).tokens


def test_greedy_output_differs_from_the_base_on_the_adapters_text(adapted):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(adapted / "tokenizer.json"))
    text = (EMBEDDED_ADAPTER / "heldout.txt").read_text()
    ids = [1] + tokenizer.encode(text[:60]).ids
    base, devil = greedy(adapted, ids), greedy(adapted, ids, "devil")
    assert base != devil


def test_elm_run_chooses_the_adapter_by_name(adapted, capsys):
    from exporter.generate.cli import run_command

    code = run_cli(run_command, "elm-run", [str(adapted), "--prompt", "WAR, n.", "--max-new-tokens", "6",
                                            "--adapter", "devil"])
    assert code == 0 and "adapter devil" in capsys.readouterr().err
    code = run_cli(run_command, "elm-run", [str(adapted), "--prompt", "x", "--adapter", "psalms"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["elm-run: error: --adapter psalms: the export holds no adapter of that name; "
                                 "it has devil, terse"]


def test_a_merged_dora_adapter_and_an_int8_adapter_on_top_verify_against_peft(tmp_path, tiny_config):
    """--merge-adapter bakes a DoRA adapter into the base weights (checked against PEFT's unmerged DoRA); another
    adapter runs on top of that base as functions of its own, its matrices int8 (--adapter-quant)."""
    dora = write_peft_adapter(tmp_path / "dora", tiny_config, rank=4, alpha=8, seed=7, targets=["qkv_proj", "proj_1"],
                              dora=True, std=0.05)
    extra = write_peft_adapter(tmp_path / "extra", tiny_config, rank=32, alpha=32, seed=8, targets=["out_proj"])
    result = export(ExportOptions(size=EMBEDDED_SIZE, target="gpu", quant="none", draft_tokens=0,
                                  output=tmp_path / "merged", adapters=(f"dora={dora}", f"extra={extra}"),
                                  merge_adapter="dora", adapter_quant="int8"))
    manifest = result.manifest
    assert manifest["merged_adapter"]["name"] == "dora" and manifest["merged_adapter"]["dora"]
    assert list(manifest["adapters"]) == ["extra"] and "prefill_dora" not in manifest["chunks"][0]["functions"]
    assert manifest["adapters"]["extra"]["quantization"] == "int8" and manifest["quantization"]["adapter_recipe"] == "int8"
    assert result.report.passed and result.report.reference.mean_kl < 1e-4  # float16 rounding alone
    extra_report = result.report.adapters["extra"]
    assert extra_report.passed and extra_report.reference.mean_kl < 1e-3
    ops = {op.op_type for op in read_program(package_of(tmp_path / "merged")).functions["decode_extra"].operations}
    assert "constexpr_blockwise_shift_scale" in ops  # the adapter's matrices are int8 in the package


# --- bad input: one line, nothing written ----------------------------------------------------------------------------

def broken_adapter(tmp_path, config, case):
    if case == "another model":
        return write_peft_adapter(tmp_path / "a", small_config(num_layers=2, model_dim=64, head_dim=16))
    folder = write_peft_adapter(tmp_path / "a", config, targets=["qkv_proj"])
    weights, settings = folder / "adapter_model.safetensors", folder / "adapter_config.json"
    tensors = load_file(str(weights))
    first = next(iter(tensors))
    if case == "rank 0":
        settings.write_text(json.dumps({**json.loads(settings.read_text()), "r": 0}))
    elif case == "NaN":
        tensors[first][0, 0] = torch.nan
        save_file(tensors, str(weights))
    elif case == "unknown target":
        save_file({first.replace("attn.qkv_proj", "attn.q_proj"): tensors[first]}, str(weights))
    elif case == "pickle only":
        weights.rename(folder / "adapter_model.bin")
    return folder


@pytest.mark.parametrize("case, pattern", [
    ("another model", r"adapter style: .* trained for another model"),
    ("unknown target", r"adapter style: unknown target module 'transformer.layers.0.attn.q_proj'"),
    ("rank 0", r"adapter style: rank r=0; a LoRA rank must be a positive integer"),
    ("NaN", r"adapter style: tensor .* contains NaN"),
    ("pickle only", r"adapter style: .* holds only pickle weights \(adapter_model.bin\), refused"),
    ("name collision", r"--adapter decode: the name collides with a function of the package"),
])
def test_bad_adapters_are_one_line_errors_and_write_nothing(tmp_path, tiny_config, capsys, case, pattern):
    folder = broken_adapter(tmp_path, tiny_config, "none" if case == "name collision" else case)
    name = "decode" if case == "name collision" else "style"
    output = tmp_path / "out"
    code = run_cli(export_command, "elm-export", ["--size", "tiny", "--output", str(output), "--quiet",
                                                  "--adapter", f"{name}={folder}"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code in (1, 2) and len(lines) == 1 and re.search(pattern, lines[0]), lines
    assert not output.exists() and not list(tmp_path.glob(".out*"))


def package_bytes(folder):
    package = package_of(folder)
    return (package / WEIGHTS_IN_PACKAGE).stat().st_size + (package / PROGRAM_IN_PACKAGE).stat().st_size


def test_at_270m_widths_two_adapters_cost_at_most_the_base_x_1_02_plus_their_own_bytes(tmp_path):
    """The size rule where the weights outweigh Core ML's per-function programs as on a real model: two layers at
    OpenELM-270M's widths (its first and last layers' multipliers), its vocabulary, seeded weights, the defaults
    (ane, mixed, verify), and two adapters shaped as apple/corenet's LoRA config (r 32, alpha 32, every target)."""
    from exporter.model.config import OpenELMConfig, expand_layerwise
    from exporter.model.load import random_state_dict, save_checkpoint

    layers = expand_layerwise(2, 1280, 64, 4, (0.5, 1.0), (0.5, 4.0))
    config = OpenELMConfig(num_transformer_layers=2, model_dim=1280, head_dim=64, max_context_length=256, **layers)
    save_checkpoint(tmp_path / "ckpt", config, random_state_dict(config))
    adapters = tuple(f"{name}={write_peft_adapter(tmp_path / name, config, rank=32, alpha=32, seed=seed, std=0.01)}"
                     for seed, name in enumerate(("first", "second")))
    common = dict(model_dir=tmp_path / "ckpt", tokenizer=None, verify=False)
    export(ExportOptions(output=tmp_path / "base", **common))
    adapted = export(ExportOptions(output=tmp_path / "adapted", adapters=adapters, **common)).manifest
    own = sum(entry["source"]["bytes"] for entry in adapted["adapters"].values())
    base, with_adapters = package_bytes(tmp_path / "base"), package_bytes(tmp_path / "adapted")
    assert with_adapters <= base * 1.02 + own, (base, with_adapters, own)
