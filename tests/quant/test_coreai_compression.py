"""quant.coreai: which recipes coreai-opt can apply, and its passes narrowed to the weights a recipe was given."""

import types

import numpy as np
import pytest

from exporter.coreai.package import _feature
from exporter.errors import ExportError, UsageError
from quant.coreai import check_recipes, narrowed_pass
from quant.recipes import RECIPES


def test_lut3_is_refused_and_the_rest_allowed():
    check_recipes({RECIPES[name] for name in ("int8", "int4", "lut2", "lut4", "lut6", "lut8")})
    with pytest.raises(UsageError, match="coreai-opt cannot palettize to 3 bits; it can: lut2, lut4, lut6, lut8"):
        check_recipes({RECIPES["lut3"]})


def fake_pass_module(name="weight_palettization"):
    calls = []
    module = types.ModuleType(f"coreai_opt.coreai_utils.passes.{name}")
    module._should_compress_op = lambda op, threshold, ops: True
    module._blockwise_compress = lambda weight, **kwargs: calls.append(weight.copy()) or ("lut", weight.sum())
    return module, calls


def test_the_pass_sees_only_admitted_constants_and_compresses_equal_weights_once():
    module, calls = fake_pass_module()
    original_test, original_compute = module._should_compress_op, module._blockwise_compress
    weight = np.arange(6, dtype=np.float16).reshape(2, 3)
    with narrowed_pass(module, lambda op: op == "mine"):
        assert module._should_compress_op("mine", 0, ()) and not module._should_compress_op("rope_table", 0, ())
        first = module._blockwise_compress(weight, nbits=4)
        again = module._blockwise_compress(weight.copy(), nbits=4)  # decode's copy of prefill's weight
        other = module._blockwise_compress(weight, nbits=6)
    assert first is again and other is not first and len(calls) == 2
    assert module._should_compress_op is original_test and module._blockwise_compress is original_compute


def test_the_hooks_are_restored_when_the_pass_fails():
    module, _ = fake_pass_module()
    original = module._should_compress_op
    with pytest.raises(RuntimeError), narrowed_pass(module, lambda op: True):
        raise RuntimeError("k-means failed")
    assert module._should_compress_op is original


def test_core_ai_tensor_descriptions_read_as_export_json_writes_them():
    assert _feature("logits", "NDArray (Float16, 1 × 1 × 1 × 4096)") == {
        "name": "logits", "shape": [1, 1, 1, 4096], "dtype": "float16"}
    assert _feature("position", "NDArray (Int32, 1)") == {"name": "position", "shape": [1], "dtype": "int32"}
    with pytest.raises(ExportError, match="unexpected Core AI tensor description"):
        _feature("x", "Image (RGB)")
