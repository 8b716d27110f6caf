"""Size presets derive Apple's exact architectures, checked against every real checkpoint tensor."""

import json
from pathlib import Path

import pytest
import torch

from exporter.errors import UsageError
from exporter.model.config import make_divisible
from exporter.model.load import expected_shapes
from exporter.model.openelm import OpenELM
from exporter.model.presets import get_preset

# Every tensor name and shape of Apple's four checkpoints, read from their safetensors headers.
SHAPES = json.loads((Path(__file__).resolve().parents[1] / "data/openelm_state_dict_shapes.json").read_text())
PARAMS = {"270m": 271_527_168, "450m": 457_179_136, "1_1b": 1_079_891_456, "3b": 3_036_647_424}


@pytest.mark.parametrize("size", sorted(PARAMS))
def test_parameter_count_without_allocating(size):
    with torch.device("meta"):
        model = OpenELM(get_preset(size).config())
    assert all(p.is_meta for p in model.parameters())
    assert model.num_parameters() == PARAMS[size]


@pytest.mark.parametrize("size", sorted(PARAMS))
def test_every_tensor_name_and_shape_matches_apple(size):
    preset = get_preset(size)
    real = SHAPES[f"OpenELM-{preset.hub_name}"]
    config = preset.config()
    assert config.num_query_heads == real["num_query_heads"]
    assert config.num_kv_heads == real["num_kv_heads"]
    assert config.ffn_multipliers == real["ffn_multipliers"]
    ours = {name: list(shape) for name, shape in expected_shapes(config).items()}
    assert ours == real["shapes"]
    assert real["params"] == PARAMS[size]


def test_hub_ids_and_aliases():
    assert get_preset("450m").hub_id() == "apple/OpenELM-450M"
    assert get_preset("3B").hub_id(instruct=True) == "apple/OpenELM-3B-Instruct"
    assert get_preset("1.1b") is get_preset("1_1b")
    assert get_preset("1.1b").hub_id() == "apple/OpenELM-1_1B"


def test_unknown_size_lists_the_valid_ones():
    with pytest.raises(UsageError, match=r"unknown --size '7b'.*270m, 3b, 450m"):
        get_preset("7b")


def test_make_divisible_matches_apples_rule():
    assert make_divisible(640, 256) == 768  # 640 rounds to 768 (512 would lose > 10%)
    assert make_divisible(0.73 * 1280, 256) == 1024
    assert make_divisible(100, 256) == 256  # never below the divisor
    assert make_divisible(1536 * 0.5, 256) == 768
