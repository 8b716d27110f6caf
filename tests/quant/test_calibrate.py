"""--calibrate: GPTQ and sensitive k-means lower the held-out KL, the package holds the calibrated weights,
and bad calibration text is a one-line error.

Calibration uses the first half of the embedded model's held-out text, the KL is measured on the
second half. Run as a script (`python -m tests.test_calibrate int4 lut4 ...`) it prints the KL of
whole packages (embedding compressed too) for the recipes named.
"""

from __future__ import annotations

import copy
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from exporter.checkpoint.sources import EMBEDDED_DIR
from exporter.checkpoint.tokenizer import check_tokenizer
from exporter.coreml.convert import convert
from exporter.coreml.package import load_program
from exporter.errors import ExportError, UsageError
from exporter.model.load import load_checkpoint
from exporter.model.openelm import OpenELM
from exporter.verify.reference import dequantized_reference
from quant.calibrate import (
    calibrate,
    calibration_plan,
    calibration_tokens,
    const_name,
    kl_divergence,
    module_names,
)
from quant.coreml import Compression
from quant.recipes import get_recipe
from tests.helpers import small_config

KL_WINDOW = 128
CONVERT_CONTEXT = 32  # weights do not depend on the context length; a short one converts faster


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # Two torch threads on a shared 2-core machine oversubscribe it: GPTQ's Cholesky ran 100x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference() -> OpenELM:
    return load_checkpoint(EMBEDDED_DIR).eval()


def heldout_halves(bos_id: int) -> tuple[list[int], list[int]]:
    """(calibration, evaluation): the held-out text's tokens, first half and second half."""
    text = (EMBEDDED_DIR / "heldout.txt").read_text(encoding="utf-8")
    ids = [i for i in check_tokenizer(EMBEDDED_DIR).encode(text).ids if i != bos_id]
    return ids[: len(ids) // 2], ids[len(ids) // 2 :]


@pytest.fixture(scope="module")
def halves(reference):
    return heldout_halves(reference.config.bos_token_id)


@pytest.fixture(scope="module")
def calibrated(reference, halves):
    """recipe name → (calibrated copy of the reference, calibrate()'s record), computed once per recipe."""
    cache = {}

    def get(recipe: str):
        if recipe not in cache:
            model = copy.deepcopy(reference)
            cache[recipe] = model, calibrate(model, Compression(get_recipe(recipe)), halves[0])
        return cache[recipe]

    return get


# --- helpers -----------------------------------------------------------------------------------------


def recipe_weights(model: OpenELM, compression: Compression) -> dict[str, np.ndarray]:
    """The uncalibrated recipe's weights for the transformer layers: `Compression.apply` itself, run on a
    program of one `linear` per weight matrix (named as conversion names them), then de-quantized."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    weights = {const_name(n): model.get_submodule(n).weight.detach().numpy().astype(np.float16)
               for n in module_names(model.config)}
    widths = sorted({w.shape[1] for w in weights.values()})

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, widths[-1]), dtype=types.fp16)], opset_version=ct.target.iOS18)
    def program(x):
        inputs = {d: mb.slice_by_size(x=x, begin=[0, 0], size=[1, d]) for d in widths}
        return tuple(mb.linear(x=inputs[w.shape[1]], weight=mb.const(val=w, name=name))
                     for name, w in weights.items())

    mlmodel = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                         compute_precision=ct.precision.FLOAT16, skip_model_load=True)
    mlmodel = compression.apply(mlmodel)
    values = {}
    for op in mlmodel._mil_program.functions["main"].operations:
        if op.op_type == "linear":
            source = op.weight.op
            compressed = source.op_type.startswith("constexpr_")
            value = source.materialized_val_inference() if compressed else source.outputs[0].val
            values[source.name] = np.asarray(value, dtype=np.float32)
    by_module = {}
    for name in module_names(model.config):
        prefix = const_name(name)
        by_module[name] = next(v for k, v in values.items() if k == prefix or k.startswith(prefix + "_"))
    return by_module


def with_layer_weights(model: OpenELM, weights: dict[str, np.ndarray]) -> OpenELM:
    copy_ = copy.deepcopy(model)
    for name, value in weights.items():
        copy_.get_submodule(name).weight.data = torch.from_numpy(value)
    return copy_


def package_model(model: OpenELM, compression: Compression, folder: Path) -> tuple[OpenELM, object]:
    """Convert (decode shape), compress with the recipe, save: the package's weights as a float32 model."""
    package = folder / "model.mlpackage"
    compression.apply(convert(model, CONVERT_CONTEXT, 1)).save(str(package))
    fresh = load_checkpoint(EMBEDDED_DIR)  # dequantized_reference copies a model without metadata
    return dequantized_reference(package, fresh, function="main"), load_program(package).functions["main"]


# --- calibration lowers the error ----------------------------------------------------------------------

# Measured on the embedded model (calibration: first half of heldout.txt, 6 × 128 tokens; KL: second half,
# windows of 128; embedding left float so only what calibration changes is compared):
#   int4  RTN 0.00231  →  GPTQ 0.00097
#   lut4  k-means 0.00326  →  sensitive k-means 0.00257
@pytest.mark.parametrize("recipe, at_most", [("int4", 0.6), ("lut4", 0.9)])
def test_calibration_lowers_heldout_kl(reference, halves, calibrated, recipe, at_most):
    model, record = calibrated(recipe)
    uncalibrated = with_layer_weights(reference, recipe_weights(reference, Compression(get_recipe(recipe))))
    kl_uncalibrated = kl_divergence(reference, uncalibrated, halves[1], KL_WINDOW)
    kl_calibrated = kl_divergence(reference, model, halves[1], KL_WINDOW)
    print(f"{recipe}: held-out KL uncalibrated {kl_uncalibrated:.5f}, calibrated {kl_calibrated:.5f}")
    assert kl_calibrated < at_most * kl_uncalibrated

    assert record["method"] == ("gptq" if recipe == "int4" else "sensitive-kmeans")
    assert (record["samples"], record["sequence_length"], record["tokens"]) == (6, 128, 768)
    assert set(record["layers"]) == set(module_names(reference.config))
    assert all(0 < layer["weight_rmse"] < 0.05 and layer["recipe"] == recipe for layer in record["layers"].values())


@pytest.mark.parametrize("recipe", ["int4", "lut4"])
def test_package_holds_the_calibrated_weights(reference, calibrated, tmp_path, recipe):
    model, _ = calibrated(recipe)
    compression = Compression(get_recipe(recipe))
    packaged, function = package_model(model, compression, tmp_path)
    for name in module_names(reference.config):
        np.testing.assert_allclose(packaged.get_submodule(name).weight.detach().numpy(),
                                   model.get_submodule(name).weight.detach().numpy(),
                                   rtol=2**-9, atol=1e-7, err_msg=name)  # float16 scales and tables

    # The calibrated layers arrive compressed in the recipe's own layout; apply still compresses the embedding.
    ops = {op.name: op for op in function.operations if op.op_type.startswith("constexpr_")}
    layer_ops = [op for name, op in ops.items() if name.startswith("layers_")]
    assert len(layer_ops) == len(module_names(reference.config))
    for op in layer_ops:
        if recipe == "int4":
            assert op.op_type == "constexpr_blockwise_shift_scale" and op.offset is None
            assert op.data.val.dtype == np.int8 and op.scale.shape[1] == op.data.shape[1] // 32
        else:
            assert op.op_type == "constexpr_lut_to_dense"
            assert op.lut.shape[1:] == (1, 16, 1) and op.lut.shape[0] == op.indices.shape[0] // 16
    assert any(name.startswith("vocab_pieces_") for name in ops)
    assert not np.array_equal(packaged.transformer.token_embeddings.weight.detach().numpy(),
                              reference.transformer.token_embeddings.weight.detach().numpy())


# --- which layers, which method ------------------------------------------------------------------------


def test_plan_follows_the_quant_map():
    config = small_config(num_layers=2)
    plan = calibration_plan(config, Compression(get_recipe("int4"), "layers.1.ffn=lut4,layers.0.attention=none"))
    assert {n: r.name for n, r in plan.items()} == {
        "transformer.layers.0.ffn.proj_1": "int4",
        "transformer.layers.0.ffn.proj_2": "int4",
        "transformer.layers.1.attn.qkv_proj": "int4",
        "transformer.layers.1.attn.out_proj": "int4",
        "transformer.layers.1.ffn.proj_1": "lut4",
        "transformer.layers.1.ffn.proj_2": "lut4",
    }
    mixed = calibration_plan(config, Compression(get_recipe("mixed")))
    assert {r.name for r in mixed.values()} == {"lut4"}  # mixed's lut6 is the (uncalibrated) embedding
    with pytest.raises(UsageError, match="nothing to calibrate"):
        calibration_plan(config, Compression(get_recipe("none")))


def test_mixed_recipes_run_gptq_and_sensitive_kmeans():
    from exporter.model.load import random_model

    config = small_config(num_layers=2, model_dim=64, head_dim=16, vocab_size=128)
    model = random_model(config, seed=0)
    ids = torch.randint(3, config.vocab_size, (2 * 127,), generator=torch.Generator().manual_seed(0)).tolist()
    record = calibrate(model, Compression(get_recipe("int8"), "ffn=lut2"), ids)
    assert record["method"] == "gptq+sensitive-kmeans" and record["samples"] == 2
    qkv, proj_1 = model.transformer.layers[0].attn.qkv_proj, model.transformer.layers[0].ffn.proj_1
    scale = qkv.get_buffer("_COREML_/weight/quantization_scale")
    assert scale.shape == (qkv.weight.shape[0], 1)  # int8 per output channel, no zero point
    assert "_COREML_/weight/zero_point" not in qkv._buffers
    steps = qkv.weight.detach() / scale  # whole steps of the scale: the weights lie on the int8 grid
    assert float((steps - steps.round()).abs().max()) < 1e-3
    lut = proj_1.get_buffer("_COREML_/weight/lut")
    assert lut.shape == (proj_1.weight.shape[0] // 16, 1, 4, 1)
    assert all(p.grad is None for p in model.parameters())


# --- calibration text ----------------------------------------------------------------------------------


def test_calibration_tokens_from_a_file_and_built_in(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text((EMBEDDED_DIR / "heldout.txt").read_text(encoding="utf-8"), encoding="utf-8")
    ids = calibration_tokens(text, EMBEDDED_DIR, 4096, 1, 500)
    assert len(ids) == 500 and 1 not in ids
    built_in = calibration_tokens(None, EMBEDDED_DIR, 4096, 1, 500)
    assert len(built_in) == 500 and 1 not in built_in  # the sequences add BOS themselves


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b" \n\t\n", "is empty"),
        (b"caf\xe9 au lait\n", "not UTF-8"),
        (b"In the beginning God created the heaven and the earth.\n", "fewer than the 1016"),
        (None, "does not exist"),
    ],
)
def test_bad_calibration_file_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "calibration.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ExportError, match=message) as error:
        calibration_tokens(path, EMBEDDED_DIR, 4096, 1, 1016)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("file", ["calibration.txt", None])
def test_calibration_without_tokenizer_is_a_usage_error(tmp_path, file):
    path = tmp_path / "calibration.txt"
    path.write_text("some text\n", encoding="utf-8")
    with pytest.raises(UsageError, match="needs a tokenizer"):
        calibration_tokens(path if file else None, None, 4096, 1, 1016)


# --- measuring whole packages (python -m tests.test_calibrate int4 lut4 ...) ----------------------------


def measure_packages(recipes: list[str]) -> None:
    """Held-out KL, uncalibrated vs calibrated, for each `recipe[:quant-map]`: of the transformer layers
    alone (embedding float, as in the tests) and of whole packages (embedding compressed by the recipe)."""
    torch.set_num_threads(1)
    reference = load_checkpoint(EMBEDDED_DIR).eval()
    calibration, evaluation = heldout_halves(reference.config.bos_token_id)
    for spec in recipes:
        recipe, _, quant_map = spec.partition(":")
        compression = Compression(get_recipe(recipe), quant_map or None)
        model = copy.deepcopy(reference)
        record = calibrate(model, compression, calibration)
        layers = {"uncalibrated": with_layer_weights(reference, recipe_weights(reference, compression)),
                  "calibrated": model}
        kl = {label: kl_divergence(reference, m, evaluation, KL_WINDOW) for label, m in layers.items()}
        with tempfile.TemporaryDirectory() as folder:
            for label, candidate in (("uncalibrated", copy.deepcopy(reference)), ("calibrated", model)):
                packaged, _ = package_model(candidate, compression, Path(folder))
                kl["package " + label] = kl_divergence(reference, packaged, evaluation, KL_WINDOW)
        print(f"{spec:20s} layers KL {kl['uncalibrated']:.5f} -> {kl['calibrated']:.5f}   package KL "
              f"{kl['package uncalibrated']:.5f} -> {kl['package calibrated']:.5f}   "
              f"({record['method']}, {record['tokens']} tokens, {record['seconds']} s)", flush=True)


if __name__ == "__main__":
    measure_packages(sys.argv[1:] or ["int4", "lut4"])
