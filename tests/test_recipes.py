"""Every recipe exports the embedded model, passes elm-verify, stores its weights once, and matches theory."""

import pytest

from exporter.errors import UsageError
from exporter.pipeline import ExportOptions, export
from quant.recipes import RECIPES, Compression, assign, get_recipe, parse_quant_map

WEIGHTS = [
    "vocab_pieces_0_to_fp16",
    "layers_0_attn_qkv_proj_weight_to_fp16",
    "layers_0_ffn_proj_1_weight_to_fp16",
    "layers_1_attn_out_proj_weight_to_fp16",
    "layers_1_ffn_proj_2_weight_to_fp16",
    "layers_12_ffn_proj_2_weight_to_fp16",
]


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_every_recipe_exports_and_verifies_the_embedded_model(recipe, tmp_path):
    result = export(ExportOptions(size="tiny", quant=recipe, context_length=128, prefill_length=32,
                                  output=tmp_path / recipe))
    report, size = result.report, result.manifest["size"]
    assert report.passed, (recipe, report.reference, report.dequantized_reference)
    assert report.prefill_calls >= 2 and report.decode_steps == 16
    # Within 3% of Σ weights × bits + scales/tables: a weight file holding both functions' copies would be ~2×.
    assert 0.97 <= size["weights_to_theory"] <= 1.03, size
    if recipe != "none":
        assert report.dequantized_reference is not None


def test_quant_map_keys():
    rules = parse_quant_map("embedding=lut8, layers.0-1=int8, layers.12.ffn=lut2, layers_*_attn_out*=none")
    chosen = assign(WEIGHTS, get_recipe("int4"), "embedding=lut8,layers.0-1=int8,layers.12.ffn=lut2,"
                                                 "layers_*_attn_out*=none")
    assert len(rules) == 4
    assert chosen["vocab_pieces_0_to_fp16"].name == "lut8"
    assert chosen["layers_0_attn_qkv_proj_weight_to_fp16"].name == "int8"
    assert chosen["layers_1_attn_out_proj_weight_to_fp16"].name == "none"  # later entry wins
    assert chosen["layers_1_ffn_proj_2_weight_to_fp16"].name == "int8"
    assert chosen["layers_12_ffn_proj_2_weight_to_fp16"].name == "lut2"


def test_mixed_recipe_default_map():
    chosen = assign(WEIGHTS, get_recipe("mixed"), None)
    assert chosen["vocab_pieces_0_to_fp16"].name == "lut6"
    assert {chosen[n].name for n in WEIGHTS[1:]} == {"lut4"}
    overridden = assign(WEIGHTS, get_recipe("mixed"), "attention=int8")
    assert overridden["layers_0_attn_qkv_proj_weight_to_fp16"].name == "int8"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("embedding", "is not KEY=RECIPE"),
        ("=int4", "is not KEY=RECIPE"),
        ("decoder=int8", "is not one of embedding, attention, ffn"),
        ("layers.3-1=int8", "the layer range is backwards"),
        ("embedding=int5", "unknown --quant recipe 'int5'; choose one of: none, int8, int4, lut2"),
        ("embedding=mixed", "single recipes"),
    ],
)
def test_bad_quant_maps(spec, message):
    with pytest.raises(UsageError, match=message):
        parse_quant_map(spec)


def test_theoretical_bits():
    rows, cols = 64, 256
    n = rows * cols
    assert get_recipe("none").weight_bits(rows, cols, 16, False) == 16 * n
    assert get_recipe("int8").weight_bits(rows, cols, 16, False) == 8 * n + 16 * rows
    assert get_recipe("int4").weight_bits(rows, cols, 16, False) == 4 * n + 16 * n // 32
    assert get_recipe("lut4").weight_bits(rows, cols, 16, False) == 4 * n + (rows // 16) * 16 * 16
    assert get_recipe("lut2").weight_bits(rows, cols, 8, True) == 2 * n + (rows // 8) * 4 * 16 + 16 * rows
    compression = Compression(get_recipe("int4"), quant_map="embedding=int8")
    shapes = {"vocab_pieces_0_to_fp16": (rows, cols), "layers_0_ffn_proj_1_weight_to_fp16": (rows, cols)}
    assert compression.theoretical_weight_bytes(shapes) == (8 * n + 16 * rows + 4 * n + n // 2) // 8
