"""A residual stream at 3e4 survives float16 storage end to end; the naive RMSNorm does not (the test can fail)."""

import pytest
import torch

from exporter.errors import ExportError
from exporter.graph import norm_forms, stateful
from exporter.model.load import load_checkpoint, random_state_dict, save_checkpoint
from exporter.model.preflight import measure
from exporter.pipeline import ExportOptions, export
from exporter.verify.check import verify_export
from tests.helpers import small_config

pytestmark = pytest.mark.e2e  # every test here runs a whole export

MASSIVE = 3e4  # the residual-stream value the issue asks us to survive (float16 max is 65504)


def massive_activation_state(config, seed=0):
    """Weights whose residual stream carries one channel at ~3e4, like the massive activations of real LLMs.

    Channel 0 of every embedding is ~3e4; the layer norms zero that channel and scale the others
    back to unit size, and a random-sign final norm keeps the tied output projection from simply
    copying the input token, so the model makes real, position-dependent predictions.
    """
    state = random_state_dict(config, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    embedding = torch.randn(config.vocab_size, config.model_dim, generator=g)
    embedding[:, 0] = MASSIVE * (0.9 + 0.1 * torch.rand(config.vocab_size, generator=g))
    state["transformer.token_embeddings.weight"] = embedding
    rms = MASSIVE / config.model_dim**0.5
    for name in state:
        if name.endswith("norm.weight") and state[name].numel() == config.model_dim:
            weight = torch.full((config.model_dim,), rms) if "layers" in name else 20 * torch.randn(
                config.model_dim, generator=g)
            weight[0] = 0.0
            state[name] = weight
        elif "proj" in name:
            state[name] = state[name] * 2
    return state


@pytest.fixture(scope="module")
def massive_checkpoint(tmp_path_factory):
    config = small_config()
    folder = tmp_path_factory.mktemp("massive")
    save_checkpoint(folder, config, massive_activation_state(config))
    return folder


def export_and_verify(folder, out, target="ane"):
    result = export(ExportOptions(draft_tokens=0,  # verify is tested in tests/pipeline/test_speculative_export
                                  model_dir=folder, tokenizer=None, quant="none", prefill_length=8, output=out,
                                  verify=False, target=target))
    return verify_export(out, tokens=30, steps=32), result.manifest


def test_preflight_sees_the_massive_residual(massive_checkpoint):
    ranges = measure(load_checkpoint(massive_checkpoint), list(range(3, 60)))
    assert 2e4 <= ranges.layers[0].maxima["residual"] < 65504
    assert ranges.status == "warn"  # inside float16, but with less than 4× headroom


@pytest.mark.parametrize("target", ["ane", "gpu"])
def test_float16_package_keeps_a_3e4_residual_stream(massive_checkpoint, tmp_path, target):
    report, manifest = export_and_verify(massive_checkpoint, tmp_path / "safe", target)
    if target == "ane":  # the residual stream's norms are max-scaled: the preflight saw 3e4 at their inputs
        forms = {name: choice["form"] for name, choice in manifest["graph"]["norms"].items()}
        assert forms["layers.1.attn_norm"] == forms["final_norm"] == "max_scaled"
    assert report.activation_range["layers"][0]["residual"] >= 2e4
    assert report.reference.nonfinite == 0
    assert report.reference.greedy_agree and report.decode_steps == 32
    assert report.reference.top1_agreement == 1.0
    assert report.passed


def test_naive_rmsnorm_graph_fails_the_same_check(massive_checkpoint, tmp_path, monkeypatch):
    def naive_rms_norm(x, weight, eps):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight  # x² overflows float16 above 256

    monkeypatch.setattr(stateful, "rms_norm_fp16_safe", naive_rms_norm)
    report, _ = export_and_verify(massive_checkpoint, tmp_path / "naive", "gpu")
    assert not report.passed
    assert report.reference.top1_agreement < 0.5


def test_layer_norm_form_where_the_preflight_forbids_it_fails_the_same_check(massive_checkpoint, tmp_path,
                                                                            monkeypatch):
    """The ane graph's high-level norm squares in float16; chosen for every norm (the headroom rule broken), the
    executor's float16 layer_norm turns the 3e4 stream's norms to zeros and verification fails."""
    monkeypatch.setattr(norm_forms, "layer_norm_is_safe", lambda peak, width: True)
    report, manifest = export_and_verify(massive_checkpoint, tmp_path / "forced", "ane")
    assert {choice["form"] for choice in manifest["graph"]["norms"].values()} == {"layer_norm"}
    assert not report.passed


def test_export_refuses_a_model_that_overflows_float16(tmp_path):
    config = small_config()
    state = massive_activation_state(config)
    state["transformer.token_embeddings.weight"][:, 0] = 7e4  # beyond float16's 65504
    save_checkpoint(tmp_path / "ckpt", config, state)
    options = ExportOptions(draft_tokens=0, model_dir=tmp_path / "ckpt", tokenizer=None, quant="none", prefill_length=8,
                            output=tmp_path / "out", verify=False)
    with pytest.raises(ExportError, match=r"peak \|\w+\| = 7e\+04.*would produce inf/NaN.*--allow-overflow"):
        export(options)
    assert not (tmp_path / "out").exists()
