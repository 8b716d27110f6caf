"""Command-line entry points `elm-export` and `elm-verify`.

Every failure a user can fix ends as one line on stderr (`elm-export: error: ...`), exit code 2
for usage errors and 1 for everything else, and no traceback unless --debug.
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # coremltools' per-pass progress bars; tqdm reads this on import

import logging  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import click  # noqa: E402

from exporter.checkpoint.tokenizer import DEFAULT_TOKENIZER
from exporter.errors import ExportError
from exporter.graph.signature import DEFAULT_TARGET, TARGETS
from exporter.model.presets import SIZE_CHOICES
from quant.recipes import COMPUTE_TARGETS, DEFAULT_GROUP_SIZE, RECIPES, TARGET_RECIPES


def _quiet_libraries() -> None:
    """coremltools and torch print version and Linux-runtime warnings on import; they are noise here."""
    warnings.filterwarnings("ignore")
    import torch  # noqa: F401 - first: importing torch resets the level of its loggers

    # torchao (coreai-opt's dependency, which coremltools imports too) logs a torch deprecation warning.
    for name in ("coremltools", "root", "huggingface_hub", "torch", "coreai_torch", "coreai_opt", "torchao"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_cli(command: click.Command, prog: str, args=None) -> int:
    """Run a click command; turn every expected failure into one line and an exit code."""
    args = list(sys.argv[1:] if args is None else args)
    debug = "--debug" in args
    if not debug:
        _quiet_libraries()
    try:
        command.main(args=args, prog_name=prog, standalone_mode=False)
        return 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:  # bad option, missing value, bad type: usage errors
        if debug:
            raise
        print(f"{prog}: error: {e.format_message()} (see {prog} --help)", file=sys.stderr)
        return 2
    except ExportError as e:
        if debug:
            raise
        print(f"{prog}: error: {e}", file=sys.stderr)
        return e.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        print(f"{prog}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - a bug of ours: still one line, with a way to the traceback
        if debug:
            raise
        message = str(e).splitlines()[0] if str(e) else ""
        print(f"{prog}: internal error: {type(e).__name__}: {message} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


RECIPE_HELP = (
    "Weight compression: none (float16); int8; int4 (per-block, GPU); lut2, lut3, lut4, lut6, lut8 (palettized, "
    "Neural Engine); mixed (embedding lut6, attention/FFN lut4). See the README's recipe table. Valid: "
    + ", ".join(RECIPES)
)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--size", metavar="|".join(SIZE_CHOICES), help="OpenELM size to fetch from the Hugging Face Hub.")
@click.option("--instruct", is_flag=True, help="Use the -Instruct variant of --size.")
@click.option("--model-dir", type=click.Path(path_type=Path), help="Local checkpoint folder instead of --size.")
@click.option("--revision", help="Hub revision (branch, tag or commit) of --size.")
@click.option("--tokenizer", default=DEFAULT_TOKENIZER, show_default=True,
              help="Hub id or local folder with tokenizer.json (OpenELM uses LLaMA-2's, which is gated).")
@click.option("--no-tokenizer", is_flag=True, help="Export without tokenizer files.")
@click.option("--target", type=click.Choice(TARGETS), default=DEFAULT_TARGET, show_default=True,
              help="ane: the graph built to Apple's Neural Engine rules (BC1S, 1x1 convs, per-head attention, RoPE and "
                   "mask as inputs, the embedding its own function, prefill without logits); gpu: the plain layout "
                   "(token ids in, logits from prefill too), which suits the GPU and int4 per-block.")
@click.option("--quant", default=None, metavar="RECIPE",
              help=RECIPE_HELP + f" [default: {TARGET_RECIPES['ane']} for --target ane, {TARGET_RECIPES['gpu']} for gpu]")
@click.option("--quant-map", metavar="KEY=RECIPE,...",
              help="Per-weight recipes over --quant, later entries win. Keys: embedding, attention, ffn, "
                   "layers.N[-M][.attention|.ffn], or a glob over weight names. E.g. embedding=lut8,layers.0-1=int8.")
@click.option("--group-size", type=int, default=DEFAULT_GROUP_SIZE, show_default=True,
              help="Palettized recipes: output channels sharing one look-up table.")
@click.option("--per-channel-scale", is_flag=True,
              help="Palettized recipes: a float16 scale per input channel (coremltools' layout: each weight "
                   "column is divided by its largest |w| before clustering). Not with --calibrate; only with "
                   "--compute-target gpu (it fails Neural Engine loading on macOS 26, coremltools PR 2688).")
@click.option("--compute-target", type=click.Choice(COMPUTE_TARGETS), default=None,
              help="Where the app runs the package: neural-engine (Core ML compute units all or cpuAndNeuralEngine) "
                   "or gpu (cpuAndGPU or cpuOnly). Options that fail there are refused; recorded in export.json. "
                   "[default: neural-engine for --target ane, gpu for --target gpu]")
@click.option("--calibrate", is_flag=False, flag_value="builtin", default=None, metavar="[FILE]",
              help="Data-aware compression (GPTQ for int8/int4, sensitivity-aware k-means for lutN) calibrated "
                   "on FILE's text, or on the built-in held-out text when no FILE is given.")
@click.option("--context-length", type=int, help="KV-cache length in tokens [default: the model's maximum].")
@click.option("--prefill-length", type=int, default=64, show_default=True,
              help="Tokens per prefill call; longer prompts take several calls.")
@click.option("--draft-tokens", type=int, default=4, show_default=True,
              help="Speculative decoding: the package gets a verify function taking the newest token and this many "
                   "drafted ones (logits for every row), sharing every weight; 0 leaves it out.")
@click.option("--chat-template", type=click.Path(path_type=Path), metavar="FILE",
              help="A Jinja chat template for export.json and tokenizer_config.json [default: OpenELM-Instruct's own "
                   "for Instruct models, none for base models].")
@click.option("--adapter", "adapters", multiple=True, metavar="NAME=DIR",
              help="A LoRA adapter (PEFT folder, or corenet checkpoint as safetensors + its YAML) as functions "
                   "prefill_NAME, decode_NAME ... that share every base weight; repeatable.")
@click.option("--merge-adapter", metavar="NAME",
              help="Bake the --adapter NAME into the base weights instead (the only form for DoRA).")
@click.option("--adapter-quant", metavar="RECIPE",
              help="Recipe for the adapters' own matrices (none, int8, int4, lutN) [default: none, float16].")
@click.option("--max-chunk-bytes", default="1GB", show_default=True, metavar="SIZE",
              help="Split models whose weights exceed SIZE into packages of consecutive layers run in sequence "
                   "(iPhones load ~1 GB packages reliably); e.g. 800MB, 2GB, or none for one package.")
@click.option("--format", "export_format", type=click.Choice(["coreml", "coreai", "both"]), default="coreml",
              show_default=True,
              help="coreml: a Core ML package (iOS 18+ / macOS 15+); coreai: a Core AI model (iOS 27+ / macOS 27+), "
                   "verified in Apple's Core AI runtime; both: the two in one folder under one export.json.")
@click.option("--output", type=click.Path(path_type=Path), help="Output folder [default: ./<model>-<recipe>].")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
@click.option("--no-verify", is_flag=True, help="Skip the parity check against the reference at the end.")
@click.option("--random-weights", type=int, metavar="SEED",
              help="Seeded random weights at the real shapes of --size (benchmarks; no download).")
@click.option("--allow-overflow", is_flag=True,
              help="Export even when the activation-range preflight sees values beyond float16's range.")
@click.option("--quiet", is_flag=True, help="Print only the result.")
@click.option("--debug", is_flag=True, help="Show tracebacks and library warnings.")
def export_command(size, instruct, model_dir, revision, tokenizer, no_tokenizer, target, quant, quant_map, group_size,
                   per_channel_scale, compute_target, calibrate, context_length,
                   prefill_length, draft_tokens, chat_template, adapters, merge_adapter, adapter_quant, max_chunk_bytes,
                   export_format, output, force, no_verify, random_weights, allow_overflow, quiet, debug):
    """Export an OpenELM model to a stateful Core ML package for the Neural Engine."""
    from exporter.graph.chunks import parse_bytes
    from exporter.pipeline import ExportOptions, export
    from exporter.progress import Progress

    options = ExportOptions(
        size=size, instruct=instruct, model_dir=model_dir, revision=revision,
        tokenizer=None if no_tokenizer else tokenizer, quant=quant, quant_map=quant_map, group_size=group_size,
        per_channel_scale=per_channel_scale, compute_target=compute_target, calibrate=calibrate,
        context_length=context_length, prefill_length=prefill_length, draft_tokens=draft_tokens,
        chat_template=chat_template, adapters=adapters, merge_adapter=merge_adapter, adapter_quant=adapter_quant,
        max_chunk_bytes=parse_bytes(max_chunk_bytes),
        format=export_format, target=target,
        output=output, force=force, verify=not no_verify,
        allow_overflow=allow_overflow, random_weights=random_weights,
    )
    result = export(options, Progress(quiet=quiet))
    manifest = result.manifest
    click.echo(f"wrote {result.folder.resolve()}")
    coreai = (manifest.get("coreai") or {}).get("chunks", [])
    for chunk in manifest["chunks"] + coreai:
        layers = "" if len(manifest["chunks"] or coreai) == 1 else f" (layers {chunk['layers'][0]}-{chunk['layers'][1] - 1})"
        theory = chunk["size"].get("weights_to_theory", chunk["size"]["package_to_theory"])
        click.echo(
            f"  {chunk['package']}{layers}: {chunk['package_bytes'] / 1e6:.1f} MB ({theory:.3f}× theory), recipe "
            f"{manifest['quantization']['recipe']}, context {manifest['context_length']}, "
            f"prefill {manifest['prefill_length']}"
        )
    for line in rules_summary(manifest):
        click.echo(line)
    ceiling = manifest["ceiling"]
    speeds = ", ".join(f"{device} ≤ {tps:g} tok/s" for device, tps in ceiling["max_decode_tokens_per_s"].items())
    click.echo(f"  decode ceiling (upper bound, {ceiling['bytes_per_decode_token'] / 1e6:.1f} MB read per token): "
               f"{speeds}")
    if result.reports:
        from exporter.verify.cli import VerificationFailed
        from exporter.verify.report import format_report

        for report in result.reports.values():
            click.echo(format_report(report, manifest["name"]))
        if not all(report.passed for report in result.reports.values()):
            raise VerificationFailed(f"{result.folder} was written but fails parity; see the report above")


def rules_summary(manifest: dict) -> list[str]:
    """One line per format: the Neural Engine rules report of its body functions (export.json has every function)."""
    lines = []
    formats = [("Core ML", manifest["chunks"]), ("Core AI", (manifest.get("coreai") or {}).get("chunks", []))]
    for label, chunks in formats:
        counts = [c for chunk in chunks for f, c in (chunk.get("neural_engine_rules") or {}).items()
                  if f in ("prefill", "decode")]
        if not counts:
            continue
        total = {key: sum(c[key] for c in counts) for key in ("linear", "conv", "multi_head_matmuls", "table_gathers",
                                                              "fp32_ops", "int32_ops")}
        lines.append(f"  Neural Engine rules ({label}, --target {(manifest.get('graph') or {}).get('target', 'gpu')}, "
                     f"prefill + decode): {total['conv']} conv / {total['linear']} linear projections, "
                     f"{total['multi_head_matmuls']} multi-head matmuls, {total['table_gathers']} table gathers, "
                     f"{total['fp32_ops']} fp32 ops, {total['int32_ops']} int32 ops, max rank "
                     f"{max(c['max_rank'] for c in counts)}")
    return lines


def export_main() -> None:
    sys.exit(run_cli(export_command, "elm-export"))


def verify_main() -> None:
    from exporter.verify.cli import verify_command

    sys.exit(run_cli(verify_command, "elm-verify"))
