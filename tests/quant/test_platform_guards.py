"""Options a platform is known to refuse are refused at export time (README: Known platform issues).

coremltools PR 2688: a palettized weight with `--per-channel-scale` is written as a constexpr_blockwise_shift_scale
after the constexpr_lut_to_dense, which fails Neural Engine loading on macOS 26; the scale is per input column while
a palette serves all columns of a group of output channels, so it cannot be folded into the palettes exactly.
"""

import re
from types import SimpleNamespace

import numpy as np
import pytest

from exporter.cli import export_command, run_cli
from exporter.errors import UsageError
from quant.coreml import Compression, op_config
from quant.recipes import COMPUTE_TARGETS, DEFAULT_COMPUTE_TARGET, get_recipe

CONFIG = SimpleNamespace(model_dim=192, vocab_size=4096, ffn_dims=[512])
PR_2688 = r"--per-channel-scale makes coremltools 9\.0 emit a constexpr_blockwise_shift_scale .*PR 2688"
PALETTIZING = [("lut4", None), ("lut8", None), ("mixed", None), ("int4", "embedding=lut6"), ("none", "ffn=lut2")]


def test_the_default_compute_target_is_the_neural_engine():
    assert DEFAULT_COMPUTE_TARGET == "neural-engine" and COMPUTE_TARGETS == ("neural-engine", "gpu")
    assert Compression(get_recipe("lut4")).compute_target == "neural-engine"


@pytest.mark.parametrize("quant, quant_map", PALETTIZING)
def test_per_channel_scale_is_refused_for_the_neural_engine(quant, quant_map):
    compression = Compression(get_recipe(quant), quant_map, per_channel_scale=True)
    for check in (compression.check_compute_target, lambda: compression.validate(CONFIG)):
        with pytest.raises(UsageError, match=PR_2688) as caught:
            check()
        message = str(caught.value)
        assert "\n" not in message
        assert "--compute-target gpu" in message and "cannot be folded" in message


@pytest.mark.parametrize("quant, quant_map", PALETTIZING)
def test_per_channel_scale_is_kept_for_the_gpu(quant, quant_map):
    compression = Compression(get_recipe(quant), quant_map, per_channel_scale=True, compute_target="gpu")
    compression.validate(CONFIG)
    assert compression.to_dict()["compute_target"] == "gpu" and compression.to_dict()["per_channel_scale"]


@pytest.mark.parametrize("target", COMPUTE_TARGETS)
@pytest.mark.parametrize("quant, quant_map", [*PALETTIZING, ("int8", None), ("int4", None)])
def test_other_options_do_not_depend_on_the_compute_target(quant, quant_map, target):
    compression = Compression(get_recipe(quant), quant_map, compute_target=target)
    compression.validate(CONFIG)
    record, default = compression.to_dict(), Compression(get_recipe(quant), quant_map).to_dict()
    assert record.pop("compute_target") == target and default.pop("compute_target") == "neural-engine"
    assert record == default  # the target changes nothing else (and the package not at all)


def test_per_channel_scale_without_palettes_keeps_its_own_error():
    # int4 palettizes nothing: the older, more precise message wins whatever the target.
    for target in COMPUTE_TARGETS:
        compression = Compression(get_recipe("int4"), per_channel_scale=True, compute_target=target)
        compression.check_compute_target()  # not this check's business
        with pytest.raises(UsageError, match="--per-channel-scale applies to palettized weights only"):
            compression.validate(CONFIG)


def test_an_unknown_compute_target_is_refused():
    with pytest.raises(UsageError, match="--compute-target 'ane' is not one of neural-engine, gpu"):
        Compression(get_recipe("lut4"), compute_target="ane").validate(CONFIG)


def test_coremltools_writes_the_per_column_scale_after_the_per_group_palette():
    """The layout the guard is about (coremltools 9.0, the pass our exporter runs): a [groups, 1, 2^bits, 1] palette
    shared by every column, then a [1, columns] scale. If coremltools stops writing this, revisit the guard."""
    import coremltools as ct
    import coremltools.optimize.coreml as cto
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types
    from coremltools.optimize.coreml._quantization_passes import palettize_weights

    weight = (np.random.default_rng(0).standard_normal((64, 128)) * 0.02).astype(np.float16)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 128), dtype=types.fp16)], opset_version=ct.target.iOS18)
    def program(x):
        return mb.linear(x=x, weight=weight, name="y")

    (name,) = [op.outputs[0].name for op in program.functions["main"].operations if op.op_type == "const"
               and np.shape(op.outputs[0].val) == weight.shape]
    config = op_config(get_recipe("lut4"), group_size=16, per_channel_scale=True)
    palettize_weights(config=cto.OptimizationConfig(op_name_configs={name: config}))(program)
    operations = program.functions["main"].operations
    (scaled,) = [op for op in operations if op.op_type == "constexpr_blockwise_shift_scale"]
    lut = scaled.data.op
    assert lut.op_type == "constexpr_lut_to_dense"
    assert lut.lut.val.shape == (4, 1, 16, 1)  # one 16-entry palette per 16 output channels, for all 128 columns
    assert scaled.scale.val.shape == (1, 128)  # one scale per column (input channel)
    # The scales differ across the columns one palette entry serves: no single table value reproduces them.
    assert len(np.unique(scaled.scale.val)) > 1


# --- the command line ----------------------------------------------------------------------------------------------

def run_export(args, capsys):
    code = run_cli(export_command, "elm-export", [str(a) for a in args])
    return code, capsys.readouterr().err


def assert_one_line(err, code, pattern):
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("extra", [[], ["--compute-target", "neural-engine"], ["--quant-map", "attention=lut6"]])
def test_cli_refuses_per_channel_scale_for_the_neural_engine(checkpoint_dir, tmp_path, capsys, extra):
    args = ["--model-dir", checkpoint_dir, "--output", tmp_path / "out", "--quant", "lut4", "--per-channel-scale",
            "--no-tokenizer", "--no-verify", "--prefill-length", "8", "--quiet", *extra]
    code, err = run_export(args, capsys)
    assert_one_line(err, code, r"^elm-export: error: " + PR_2688)
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no staging folder either


def test_cli_refuses_before_resolving_the_checkpoint(tmp_path, capsys):
    # A missing --model-dir would be the error if the checkpoint were resolved (for --size: downloaded) first.
    args = ["--model-dir", tmp_path / "missing", "--output", tmp_path / "out", "--quant", "mixed",
            "--per-channel-scale", "--no-tokenizer", "--quiet"]
    code, err = run_export(args, capsys)
    assert_one_line(err, code, PR_2688)
    assert not (tmp_path / "out").exists()


def test_cli_refuses_an_unknown_compute_target(checkpoint_dir, tmp_path, capsys):
    args = ["--model-dir", checkpoint_dir, "--output", tmp_path / "out", "--compute-target", "ane", "--quiet"]
    code, err = run_export(args, capsys)
    assert_one_line(err, code, r"--compute-target.*'ane' is not one of 'neural-engine', 'gpu'")
    assert not (tmp_path / "out").exists()


def test_cli_help_names_the_compute_target(capsys):
    assert run_cli(export_command, "elm-export", ["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--compute-target [neural-engine|gpu]" in text and "PR 2688" in text
