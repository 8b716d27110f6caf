"""Every recipe coreai-opt can apply: `elm-export --size tiny --format coreai`, then elm-verify in Apple's runtime
passes within the Core ML thresholds; the recipe it cannot apply is a one-line usage error."""

import pytest

from exporter.cli import run_cli
from exporter.pipeline import ExportOptions, export

pytestmark = pytest.mark.e2e  # whole exports, verified in Apple's runtime

MAP = "embedding=lut6,layers.0-1=int8"
WIDE = {"group_size": 64}  # coreai-opt's k-means costs ~37 ms per palette group here: fewer groups keep CI short
RECIPES = {  # id: (recipe, other options); each ~45 s in Apple's runtime, so every recipe runs in as few cases as
    # covers it: int8 and int4 inside int4+map, lut4 and lut6 inside mixed (alone they passed here, run by hand;
    # lut8's k-means alone takes 1-2 min); none: float16 weights, as the cross-check's Core AI copy holds them
    **{name: (name, WIDE) for name in ("lut2", "mixed")},
    "int4+map": ("int4", {"quant_map": MAP}),  # (--calibrate passed too, run by hand: kept out of CI for time)
    "lut4+per-channel-scale": ("lut4", {"per_channel_scale": True, "compute_target": "gpu", **WIDE}),
}


@pytest.mark.parametrize("case", RECIPES)
def test_export_then_verify_in_apples_runtime(tmp_path, case):
    recipe, options = RECIPES[case]
    quant_map = options.get("quant_map")
    result = export(ExportOptions(draft_tokens=0,  # verify is tested in tests/pipeline/test_speculative_export
                                  size="tiny", quant=recipe, format="coreai", context_length=64, prefill_length=16,
                                  output=tmp_path / "out", **options))
    report = result.reports["coreai"]
    assert report.passed, report
    assert result.manifest["formats"] == ["coreai"] and result.manifest["coreai"]["verification"]["passed"]
    weights = result.manifest["coreai"]["chunks"][0]["weights"]
    if recipe == "mixed":
        assert weights["vocab_pieces_0"]["recipe"] == "lut6" and weights["layers_0_ffn_proj_1_weight"]["recipe"] == "lut4"
    elif quant_map:
        assert weights["layers_1_attn_qkv_proj_weight"]["recipe"] == "int8"
        assert weights["layers_2_attn_qkv_proj_weight"]["recipe"] == "int4"
    else:
        assert {entry["recipe"] for entry in weights.values()} == {recipe}
    if recipe != "none":
        assert report.dequantized_reference is not None


def test_a_recipe_coreai_opt_cannot_apply_is_refused(tmp_path, capsys):
    from exporter.cli import export_command

    code = run_cli(export_command, "elm-export", ["--size", "tiny", "--format", "coreai", "--quant", "lut3",
                                                  "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == ("elm-export: error: coreai-opt cannot palettize to 3 bits; it can: lut2, lut4, lut6, "
                                 "lut8 (lut3 exists for --format coreml)")
    assert not (tmp_path / "out").exists()
