"""Calibrated (data-aware) compression, `--calibrate`: GPTQ for int8/int4, sensitivity-weighted k-means for lutN.

The reference model's transformer `nn.Linear` layers are compressed in place, on CPU, with
`coremltools.optimize.torch`, which also registers compression metadata on every layer it
compresses (`_COREML_/weight/...` buffers: scales, look-up tables). `ct.convert` reads that
metadata and emits the compressed constexpr ops directly, so the package stores exactly the
calibrated weights; `Compression.apply` then only compresses what conversion left as float
consts (the embedding, and layers that a --quant-map keeps in another recipe). The export
module reuses these same Linear modules, so the metadata travels with them.

- int8 / int4 recipes: GPTQ (`LayerwiseCompressor`), symmetric, int8 per output channel or
  int4 per block of 32 input channels, the grids of the uncalibrated recipes.
- lutN recipes: SqueezeLLM's sensitivity-weighted k-means (`SKMPalettizer`), one table per
  `group_size` output channels, as the lut recipes (not with --per-channel-scale: see calibration_plan).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from exporter.checkpoint.text import sample_ids
from exporter.checkpoint.tokenizer import check_tokenizer
from exporter.errors import ExportError, UsageError
from exporter.model.metrics import kl_per_position
from exporter.model.names import program_name
from exporter.model.openelm import OpenELM, ReferenceContext
from exporter.progress import Progress
from quant.recipes import INT_BLOCK_SIZE, Recipe, assign

SEQUENCES = 8  # calibration sequences fed through the model
SEQUENCE_LENGTH = 128  # tokens per sequence, BOS first (capped at the model's context)
PROJECTIONS = ("attn.qkv_proj", "attn.out_proj", "ffn.proj_1", "ffn.proj_2")
METADATA = "_COREML_"  # prefix of coremltools' compression-metadata buffers


# --- calibration text ------------------------------------------------------------------------------


def sequence_length(config) -> int:
    return min(SEQUENCE_LENGTH, config.max_context_length)


def tokens_needed(config) -> int:
    """Text tokens for a full calibration set: each sequence is BOS plus `sequence_length - 1` text tokens."""
    return SEQUENCES * (sequence_length(config) - 1)


def calibration_tokens(path: str | Path | None, tokenizer_dir: Path | None, vocab_size: int, bos_id: int,
                       count: int) -> list[int]:
    """`count` token ids of calibration text: the file at `path`, or (None) the built-in held-out text."""
    if tokenizer_dir is None:  # without one the built-in text would become random ids: useless statistics
        raise UsageError("--calibrate needs a tokenizer to read the calibration text; drop --no-tokenizer")
    if path is None:  # one extra id: the tokenizer's own BOS, which the sequences add back themselves
        return [i for i in sample_ids(tokenizer_dir, vocab_size, bos_id, count + 1) if i != bos_id][:count]
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ExportError(f"calibration file {path} does not exist") from None
    except IsADirectoryError:
        raise ExportError(f"calibration file {path} is a directory; give a UTF-8 text file") from None
    except UnicodeDecodeError as e:
        raise ExportError(f"calibration file {path} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise ExportError(f"calibration file {path} cannot be read ({e.strerror})") from None
    if not text.strip():
        raise ExportError(f"calibration file {path} is empty; give it a few pages of text like the prompts")
    ids = [i for i in check_tokenizer(tokenizer_dir).encode(text).ids if i != bos_id]
    if len(ids) < count:
        raise ExportError(
            f"calibration file {path} has {len(ids)} tokens, fewer than the {count} calibration needs "
            f"({SEQUENCES} sequences); give it more text"
        )
    return ids[:count]


def split_sequences(token_ids: list[int], bos_id: int, length: int, limit: int = SEQUENCES) -> list[torch.Tensor]:
    """Up to `limit` sequences [1, length], each BOS + consecutive text tokens, as the model sees prompts."""
    text = [i for i in token_ids if i != bos_id]  # tokenizers that add BOS would put it mid-sequence
    step = length - 1
    count = min(limit, len(text) // step)
    if count == 0:
        raise ExportError(f"calibration needs at least {step} tokens of text, got {len(text)}")
    return [torch.tensor([[bos_id] + text[k * step : (k + 1) * step]]) for k in range(count)]


# --- which layer gets which recipe -----------------------------------------------------------------


def module_names(config) -> list[str]:
    return [f"transformer.layers.{i}.{p}" for i in range(config.num_transformer_layers) for p in PROJECTIONS]


def const_name(module_name: str) -> str:
    """The converted program's name for a layer's weight (`--quant-map` globs match it):
    transformer.layers.3.ffn.proj_2 → layers_3_ffn_proj_2_weight."""
    return program_name(module_name + ".weight")


def calibration_plan(config, compression) -> dict[str, Recipe]:
    """Torch module name → recipe, for the transformer layers whose recipe compresses (what --quant-map says)."""
    names = module_names(config)
    chosen = assign([const_name(n) for n in names], compression.recipe, compression.quant_map)
    plan = {n: chosen[const_name(n)] for n in names if chosen[const_name(n)].kind in ("linear", "lut")}
    if not plan:
        raise UsageError("--calibrate has nothing to calibrate: the recipe leaves every transformer weight float16")
    if compression.per_channel_scale and any(r.kind == "lut" for r in plan.values()):
        # Measured with coremltools 9.0: converting its sensitive k-means with per-channel scales stores a full
        # table per output channel (the group's table repeated, then scaled), 1.19x theory at lut4 on the embedded
        # model and more than float16 at lut8, as a constexpr chain our verification cannot expand.
        raise UsageError("--per-channel-scale cannot be combined with --calibrate for lutN weights (coremltools 9.0 "
                         "stores a table per output channel then); drop one of the two")
    return plan


# --- GPTQ (int8 / int4) ----------------------------------------------------------------------------


class _FixedContextLayer(nn.Module):
    """A decoder layer as `x -> layer(x)`: coremltools feeds each layer one tensor, and every
    calibration sequence has the same length, so rotary tables and causal mask are fixed."""

    def __init__(self, layer: nn.Module, context: ReferenceContext):
        super().__init__()
        self.layer = layer
        self.context = context  # a plain object: its tables are not buffers, so not part of any state dict

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x, self.context)


def _layer_stack(model: OpenELM, length: int) -> nn.Module:
    context = ReferenceContext.causal(model.config, 0, length)
    stack = nn.Module()
    stack.layers = nn.ModuleList(_FixedContextLayer(layer, context) for layer in model.transformer.layers)
    return stack


def _stack_name(module_name: str) -> str:
    """transformer.layers.3.ffn.proj_2 → layers.3.layer.ffn.proj_2, its name inside `_layer_stack`."""
    return re.sub(r"^transformer\.layers\.(\d+)\.", r"layers.\1.layer.", module_name)


def _model_name(stack_name: str) -> str:
    return re.sub(r"^layers\.(\d+)\.layer\.", r"transformer.layers.\1.", stack_name)


def gptq_config(recipe: Recipe):
    from coremltools.optimize.torch.layerwise_compression import ModuleGPTQConfig

    # GPTQ only offers unsigned dtypes; symmetric puts the zero point mid-range (8 / 128), which
    # `_drop_zero_point` removes again so the package stores signed data without offsets.
    # (Activation order changed the tiny model's package KL by noise only, so the defaults stay.)
    if recipe.bits == 8:
        return ModuleGPTQConfig(weight_dtype="uint8", granularity="per_channel", quantization_scheme="symmetric")
    return ModuleGPTQConfig(weight_dtype=f"uint{recipe.bits}", granularity="per_block", block_size=INT_BLOCK_SIZE,
                            quantization_scheme="symmetric")


def run_gptq(model: OpenELM, plan: dict[str, Recipe], sequences: list[torch.Tensor]) -> dict[str, float]:
    """GPTQ on the `plan`'s layers, one decoder layer after the other; returns weight RMSE per layer."""
    from coremltools.optimize.torch.layerwise_compression import LayerwiseCompressor, LayerwiseCompressorConfig

    stack = _layer_stack(model, sequences[0].shape[1])
    config = LayerwiseCompressorConfig(
        layers=[r"layers\.\d+"],
        module_name_configs={re.escape(_stack_name(n)): gptq_config(r) for n, r in plan.items()},
        input_cacher="default",  # the inputs of layer 0: the embedded sequences
        calibration_nsamples=len(sequences),
    )
    with torch.no_grad():
        embedded = [model.transformer.token_embeddings(ids) for ids in sequences]
    compressor = LayerwiseCompressor(stack, config)
    compressor.compress(embedded, device="cpu", inplace=True)
    errors = _rmse_by_module(compressor.report(), plan, _model_name)
    for name in plan:
        _drop_zero_point(model.get_submodule(name))
    return errors


def _drop_zero_point(layer: nn.Module) -> None:
    """Symmetric GPTQ stores q + zero (zero = 2^(bits-1)) as unsigned data; without the zero point
    ct.convert stores q itself as signed data, the layout of the uncalibrated int recipes."""
    name = f"{METADATA}/weight/zero_point"
    if name in layer._buffers:
        zero = layer._buffers.pop(name)
        bits = int(layer.get_buffer(f"{METADATA}/weight/quantization_n_bits"))
        if not bool((zero == 2 ** (bits - 1)).all()):
            raise AssertionError(f"GPTQ zero point {zero.flatten()[:4].tolist()} is not symmetric")


# --- sensitivity-weighted k-means (lutN) -----------------------------------------------------------


def skm_config(recipe: Recipe, compression):
    from coremltools.optimize.torch.palettization import ModuleSKMPalettizerConfig

    return ModuleSKMPalettizerConfig(
        n_bits=recipe.bits, granularity="per_grouped_channel", group_size=compression.group_size,
        channel_axis=0, enable_per_channel_scale=compression.per_channel_scale,
    )


def next_token_loss(model: OpenELM, ids: torch.Tensor) -> torch.Tensor:
    logits = model(ids)
    return F.cross_entropy(logits[0, :-1], ids[0, 1:])


def run_skm(model: OpenELM, plan: dict[str, Recipe], sequences: list[torch.Tensor],
            compression) -> dict[str, float]:
    """Sensitivity (Fisher: squared gradients of the next-token loss) weighted k-means on the `plan`'s layers."""
    from coremltools.optimize.torch.palettization import SKMPalettizer, SKMPalettizerConfig

    config = SKMPalettizerConfig(
        module_name_configs={re.escape(n): skm_config(r, compression) for n, r in plan.items()},
        calibration_nsamples=len(sequences),
    )
    palettizer = SKMPalettizer(model, config)
    palettizer.compress(dataloader=sequences, loss_fn=next_token_loss, inplace=True)
    model.zero_grad(set_to_none=True)  # the sensitivity pass leaves gradients behind
    return _rmse_by_module(palettizer.report(), plan, lambda key: key)


# --- both ------------------------------------------------------------------------------------------


def _rmse_by_module(report, plan: dict[str, Recipe], rename) -> dict[str, float]:
    """RMSE between calibrated and original weights, from the library's report, for this step's layers only
    (a later step's report also lists the layers an earlier step compressed, at zero error)."""
    errors = {rename(key.removesuffix(".weight")): float(entry["error"]) for key, entry in report.items()
              if key.endswith(".weight") and "error" in entry}
    return {name: error for name, error in errors.items() if name in plan}


def compressed_by_calibration(layer: nn.Module) -> bool:
    return f"{METADATA}/weight/compression_type" in layer._buffers


@contextlib.contextmanager
def _quiet_coremltools():
    """coremltools.optimize logs a line per layer at INFO; the export's own progress lines suffice."""
    import coremltools.optimize.torch  # noqa: F401 - its import sets the logger's level, so import it first

    logger = logging.getLogger("coremltools.optimize.torch")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def calibrate(model: OpenELM, compression, token_ids: list[int], progress=None) -> dict:
    """Compress `model`'s transformer layers in place with calibration data; returns export.json's record.

    Conversion afterwards (exporter.coreml.convert) emits these layers already compressed, so
    `Compression.apply` leaves them alone. The tied embedding is not calibrated: apply compresses it.
    """
    progress = progress or Progress(quiet=True)
    plan = calibration_plan(model.config, compression)
    sequences = split_sequences(token_ids, model.config.bos_token_id, sequence_length(model.config))
    gptq = {n: r for n, r in plan.items() if r.kind == "linear"}
    skm = {n: r for n, r in plan.items() if r.kind == "lut"}
    started = time.perf_counter()
    errors = {}
    model.eval()
    with _quiet_coremltools():
        if gptq:
            with progress.step(f"calibrate: GPTQ on {len(gptq)} layers, {len(sequences)} sequences"):
                errors.update(run_gptq(model, gptq, sequences))
        if skm:
            with progress.step(f"calibrate: sensitive k-means on {len(skm)} layers, {len(sequences)} sequences"):
                errors.update(run_skm(model, skm, sequences, compression))
    model._buffers.pop(f"{METADATA}/metadata_version", None)  # the library's root marker; conversion ignores it
    missed = [n for n in plan if not compressed_by_calibration(model.get_submodule(n))]
    if missed:
        raise ExportError(f"calibration left {len(missed)} layers uncompressed ({missed[0]}, ...); "
                          "export without --calibrate")
    methods = {"gptq": gptq, "sensitive-kmeans": skm}
    return {
        "method": "+".join(m for m, layers in methods.items() if layers),
        "samples": len(sequences),
        "sequence_length": int(sequences[0].shape[1]),
        "tokens": sum(int(s.numel()) for s in sequences),
        "seconds": round(time.perf_counter() - started, 1),
        "layers": {
            name: {"recipe": recipe.name, "method": "gptq" if recipe.kind == "linear" else "sensitive-kmeans",
                   "weight_rmse": errors.get(name)}
            for name, recipe in plan.items()
        },
    }


# --- measuring it ----------------------------------------------------------------------------------


@torch.no_grad()
def kl_divergence(reference: OpenELM, candidate: OpenELM, token_ids: list[int], window: int) -> float:
    """Mean KL(reference ‖ candidate) over next-token distributions, in BOS-first windows of `window` tokens."""
    sequences = split_sequences(token_ids, reference.config.bos_token_id, window, limit=len(token_ids))
    total, count = 0.0, 0
    for ids in sequences:
        total += float(kl_per_position(reference(ids)[0].double().numpy(), candidate(ids)[0].double().numpy()).sum())
        count += ids.shape[1]
    return total / count
