"""--target gpu writes the package elm-export wrote before the Neural Engine graph existed, bit for bit.

The sha256 of every file of the embedded model's package, as commit 927ca06 (the last without --target)
wrote it on this machine kind with the pinned coremltools/torch/numpy. A change to the gpu graph, its
conversion or its compression shows here first.
"""

import json
import subprocess
import sys

import pytest

from exporter.checkpoint.sources import EMBEDDED_SIZE
from exporter.pipeline import ExportOptions, export

pytestmark = pytest.mark.e2e

BEFORE_ANE = {
    "none": ("090bdcd5d5e939116e2d4c52d892226f6cd23810b7ad0dcfb30b25731349840b",
             "a20391036d1e8b3a73228a89669bd7416eceb2291428b6011e4da1d935b38ec2"),
    "int8": ("68d642d939aff7a4fc8ec279a52c032ebe1bb6e8ab27e2dae9155e5b829e4198",
             "9d3083a04c808f924678535090f095dc9f1586dee5c032664a4835c63b3c2a69"),
    "int4": ("3022f121244a941be68672ca2d829529418c039ce188938c00b650903c000afd",
             "b495660f300c601cd58772d7eb3a9fd4ad02d5ad36ab7060ec969016a741bfcb"),
}


@pytest.mark.parametrize("recipe", sorted(BEFORE_ANE))
def test_gpu_target_package_is_byte_identical_to_before(recipe, tmp_path):
    """In a fresh process, as `elm-export` runs (after other exports in the same process, int4's program bytes
    have differed: see the issue 17 note), without the verify function, which adds a function to the package
    (tests/pipeline/test_speculative_export: it shares these weights)."""
    out = tmp_path / recipe
    subprocess.run([sys.executable, "-m", "exporter", "--size", EMBEDDED_SIZE, "--quant", recipe, "--target", "gpu",
                    "--draft-tokens", "0",
                    "--output", str(out), "--no-verify", "--quiet"], check=True, capture_output=True)
    manifest = json.loads((out / "export.json").read_text())
    files = manifest["chunks"][0]["files"]
    program, weights = BEFORE_ANE[recipe]
    assert files["Data/com.apple.CoreML/model.mlmodel"] == program
    assert files["Data/com.apple.CoreML/weights/weight.bin"] == weights
    assert manifest["graph"]["target"] == "gpu" and manifest["graph"]["prefill_logits"]


def test_rules_report_counts_what_the_gpu_graph_breaks(tmp_path):
    """The rules report can fail: on the gpu graph it finds the linear projections, multi-head matmuls and table
    gathers (RoPE cos, sin, embedding) the ane graph removes (tests/coreai: the ane counts)."""
    result = export(ExportOptions(size=EMBEDDED_SIZE, quant="int4", target="gpu", output=tmp_path / "gpu",
                                  verify=False))
    layers = result.manifest["model"]["num_transformer_layers"]
    for function, counts in result.manifest["chunks"][0]["neural_engine_rules"].items():
        assert counts["linear"] == 4 * layers + 1 and counts["conv"] == 0, function
        assert counts["multi_head_matmuls"] == 2 * layers and counts["table_gathers"] == 3, function
        assert counts["fp32_ops"] == 0 and counts["int32_ops"] > 0, function
