"""The export, stage by stage: checkpoint → reference model → export module → convert → quantize → package."""

from __future__ import annotations

import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from exporter.checkpoint import CONFIG_NAME, RandomTensors, TensorReader, whole_model
from exporter.config import OpenELMConfig
from exporter.chunking import DEFAULT_MAX_CHUNK_BYTES, chunk_package_name, plan_chunks
from exporter.convert import HIDDEN_IN, HIDDEN_OUT, INPUT_IDS, LOGITS, POSITION, STATE_NAMES, convert_module
from exporter.calibration import calibration_ids
from exporter.ceiling import decode_ceiling
from exporter.errors import ExportError, UsageError
from exporter.export_module import CacheLayout, Chunk, StatefulOpenELM, vocab_split
from exporter.hub import (
    DEFAULT_TOKENIZER,
    EMBEDDED_DIR,
    EMBEDDED_SIZE,
    Source,
    check_tokenizer,
    resolve_checkpoint,
    resolve_tokenizer,
)
from exporter.package import (
    MANIFEST_FORMAT,
    WEIGHTS_IN_PACKAGE,
    atomic_output,
    folder_bytes,
    read_signatures,
    refuse_existing,
    save_functions,
    sha256_file,
    write_manifest,
)
from exporter.memory import collect, pin_mmap_threshold
from exporter.preflight import measure
from exporter.presets import get_preset
from exporter.progress import Progress
from exporter.weights import WeightPlan, fill_weights, materialized, placeholders_of, skeleton_model
from quant.calibrate import calibrate, calibration_plan, calibration_tokens, tokens_needed
from quant.recipes import DEFAULT_GROUP_SIZE, Compression, get_recipe
from quant.theory import theoretical_sizes

FUNCTIONS = ("prefill", "decode")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
DEFAULT_PREFILL_LENGTH = 64
PREFLIGHT_TOKENS = 256  # enough text to see each layer's typical peaks, cheap even for 3B


@dataclass
class ExportOptions:
    size: str | None = None
    instruct: bool = False
    model_dir: Path | None = None
    revision: str | None = None
    tokenizer: str | None = DEFAULT_TOKENIZER  # None: export without tokenizer files
    quant: str = "int4"
    quant_map: str | None = None  # per-weight overrides, e.g. "embedding=lut6,layers.0-3=int8"
    group_size: int = DEFAULT_GROUP_SIZE  # palettization: output channels per look-up table
    per_channel_scale: bool = False  # palettization: a float16 scale per output channel
    context_length: int | None = None  # None: the model's own maximum
    prefill_length: int = DEFAULT_PREFILL_LENGTH
    output: Path | None = None
    force: bool = False
    verify: bool = True  # run elm-verify's parity check on the result and store it in export.json
    allow_overflow: bool = False  # export even when the preflight sees float16 overflow
    random_weights: int | None = None  # seed: real shapes of --size, random weights (benchmarks, no Hub)
    calibrate: str | None = None  # calibration text file, or "builtin" for the built-in held-out text
    max_chunk_bytes: int | None = DEFAULT_MAX_CHUNK_BYTES  # split into packages of at most this; None: one


@dataclass
class ExportResult:
    folder: Path
    manifest: dict
    report: object = None  # exporter.verify.parity.ParityReport when verified


def check_lengths(context_length: int, prefill_length: int, model_max: int) -> None:
    if prefill_length < 1:
        raise UsageError(f"--prefill-length {prefill_length} must be at least 1")
    if context_length > model_max:
        raise UsageError(f"--context-length {context_length} exceeds the model's maximum {model_max}; use ≤ {model_max}")
    if prefill_length > context_length:
        raise UsageError(f"--prefill-length {prefill_length} exceeds --context-length {context_length}; lower it")
    if context_length % prefill_length:
        raise UsageError(
            f"--context-length {context_length} is not a multiple of --prefill-length {prefill_length}; prefill "
            "chunks must tile the context (try a power of two for both)"
        )
    if context_length % 32:
        raise UsageError(
            f"--context-length {context_length} is not a multiple of 32, which the Neural Engine needs for "
            "state dimensions; round it to a multiple of 32"
        )


def default_name(options: ExportOptions, source: Source) -> str:
    if options.model_dir is not None:
        base = Path(options.model_dir).resolve().name
    elif source.embedded:
        base = "OpenELM-tiny"
    elif source.random_seed is not None:
        base = f"{source.hub_id.split('/')[-1]}-random{source.random_seed}"
    else:
        base = source.hub_id.split("/")[-1]
    return f"{base}-{options.quant}"


def source_config(source: Source) -> OpenELMConfig:
    if source.random_seed is not None:
        return get_preset(source.size).config()
    return OpenELMConfig.from_file(source.folder / CONFIG_NAME)


def source_tensors(source: Source, config: OpenELMConfig):
    """The checkpoint's tensors, read one at a time: from its safetensors, or seeded at the preset's shapes."""
    if source.random_seed is not None:
        return RandomTensors(config, source.random_seed)
    return TensorReader(source.folder, config)


def export(options: ExportOptions, progress: Progress | None = None) -> ExportResult:
    progress = progress or Progress(quiet=True)
    pin_mmap_threshold()  # freed weight arrays leave RSS at once (exporter.memory)
    compression = Compression(get_recipe(options.quant), options.quant_map, options.group_size,
                              options.per_channel_scale)
    if options.size is not None and options.size.strip().lower() != EMBEDDED_SIZE:
        get_preset(options.size)  # an unknown size is a usage error before any download
    with progress.step("resolve checkpoint"):
        source = resolve_checkpoint(options.size, options.instruct, options.model_dir, options.revision,
                                    options.random_weights)
    name = default_name(options, source)
    target = Path(options.output) if options.output else Path.cwd() / name
    refuse_existing(target, options.force)  # before the slow steps; atomic_output checks again at the end
    config = source_config(source)
    context_length = options.context_length or config.max_context_length
    check_lengths(context_length, options.prefill_length, config.max_context_length)
    compression.validate(config)
    if options.calibrate is not None:
        calibration_plan(config, compression)  # --quant none: a usage error before any loading
    tokenizer_spec = options.tokenizer
    if source.embedded and tokenizer_spec == DEFAULT_TOKENIZER:
        tokenizer_spec = str(EMBEDDED_DIR)  # the embedded model has its own tokenizer, next to its weights
    tokenizer_dir = None
    if tokenizer_spec is not None:
        with progress.step("resolve tokenizer"):
            tokenizer_dir = resolve_tokenizer(tokenizer_spec)
            check_tokenizer(tokenizer_dir)
    calibration_text = None
    if options.calibrate is not None:
        with progress.step("read calibration text"):
            calibration_text = calibration_tokens(None if options.calibrate == "builtin" else Path(options.calibrate),
                                                  tokenizer_dir, config.vocab_size, config.bos_token_id,
                                                  tokens_needed(config))
    with progress.step("open checkpoint"):
        tensors = source_tensors(source, config)
    calibration, plan = None, None
    if calibration_text is not None:  # before the preflight, so it measures the weights that get exported
        with progress.step("load (whole model, for calibration)"):
            model = whole_model(config, tensors)  # calibration needs the whole float32 model
        calibration = calibrate(model, compression, calibration_text, progress)
        calibration["text"] = options.calibrate
        ranges = preflight(model, tokenizer_dir, context_length, options.allow_overflow, progress)
    else:
        # Matrices stay on disk until the converted program needs them (exporter.weights).
        plan = WeightPlan()
        model = skeleton_model(config, tensors, plan)
        with materialized(model, tensors) as reference:
            ranges = preflight(reference, tokenizer_dir, context_length, options.allow_overflow, progress)

    chunks = plan_chunks(config, compression, options.max_chunk_bytes)
    with atomic_output(target, options.force) as staging:
        packages = []
        for index, chunk in enumerate(chunks):
            label = "" if len(chunks) == 1 else f" [chunk {index + 1}/{len(chunks)}: layers {chunk.start}-{chunk.stop - 1}]"
            programs, sizes = convert_functions(model, plan, tensors, context_length, options.prefill_length,
                                                compression, progress, chunk, label)
            package_name = chunk_package_name(name, chunk, len(chunks), index)
            with progress.step(f"save multifunction package{label}"):
                save_functions(programs, staging / package_name, default_function="decode")
            del programs
            compression.lut_cache.clear()  # the next chunk has other weights
            collect()
            packages.append((chunk, package_name, sizes))
        del model
        collect()
        if tokenizer_dir is not None:
            for file in TOKENIZER_FILES:
                if (tokenizer_dir / file).is_file():
                    shutil.copyfile(tokenizer_dir / file, staging / file)

        manifest = build_manifest(name, packages, staging, source, config, context_length, options, compression,
                                  tokenizer_dir, tokenizer_spec)
        if calibration is not None:
            manifest["quantization"]["calibration"] = calibration
        manifest["activation_range"] = ranges.to_dict()
        manifest["ceiling"] = decode_ceiling(manifest["size"]["weight_file_bytes"],
                                             [state["shape"] for c in manifest["chunks"] for state in c["states"]])
        write_manifest(staging, manifest)
        report = None
        if options.verify:
            from exporter.verify.check import verify_export

            with progress.step("verify (reference vs package, float16 executor)"):
                report = verify_export(staging, model_dir=source.folder)
            manifest["verification"] = report.to_dict()
        manifest["timings"] = {stage: round(seconds, 2) for stage, seconds in progress.timings.items()}
        write_manifest(staging, manifest)
    return ExportResult(folder=target, manifest=manifest, report=report)


def preflight(model, tokenizer_dir, context_length: int, allow_overflow: bool, progress: Progress):
    """Activation ranges over calibration text; float16 overflow stops the export unless allowed."""
    config = model.config
    with progress.step("activation-range preflight"):
        ranges = measure(model, calibration_ids(tokenizer_dir, config.vocab_size, config.bos_token_id,
                                                min(PREFLIGHT_TOKENS, context_length)))
    progress.say(ranges.summary())
    if ranges.status == "overflow" and not allow_overflow:
        raise ExportError(f"{ranges.summary()}: the float16 package would produce inf/NaN on device; "
                          "pass --allow-overflow to export anyway")
    return ranges


def convert_functions(model, plan: WeightPlan | None, tensors, context_length: int, prefill_length: int,
                      compression: Compression, progress: Progress, chunk: Chunk | None = None,
                      label: str = "") -> tuple[dict, dict]:
    """Convert, fill and compress prefill and decode into in-memory MIL programs.

    `model` is a skeleton whose matrices `plan` fills from `tensors` after conversion, or (plan None)
    a model holding its real weights. A skeleton's two programs are converted first (placeholders
    cost nothing), then each matrix is read once into both and compressed a batch at a time, once
    for both. Returns the programs and the theoretical sizes, read before compression.
    """
    if plan is None:
        return convert_whole_functions(model, context_length, prefill_length, compression, progress, chunk, label)
    programs, expected = {}, None
    for function, tokens in zip(FUNCTIONS, (prefill_length, 1)):
        programs[function], module = convert_function(model, context_length, tokens, chunk, progress,
                                                      function, label)
        expected = placeholders_of(module)
        del module
    sizes = theoretical_sizes(programs[FUNCTIONS[0]], compression,
                              {plan.matrices[i].name: plan.matrices[i].shape for i in expected})

    def compress(names: list[str]) -> None:
        compression.apply_to_programs(list(programs.values()), names)

    step = "fill weights" + (f" + quantize ({compression.recipe.name})" if compression.compresses else "")
    with progress.step(f"{step}{label}"):
        fill_weights(list(programs.values()), plan, tensors, expected,
                     after_batch=compress if compression.compresses else None,
                     shared=not compression.writes_into_weights)
    return programs, sizes


def convert_function(model, context_length: int, tokens: int, chunk: Chunk | None, progress: Progress,
                     function: str, label: str):
    """One function's in-memory MIL program, and the export module it was traced from."""
    module = StatefulOpenELM(model, context_length, tokens, chunk=chunk)
    with progress.step(f"trace + convert {function} ({tokens} token{'s' if tokens > 1 else ''}){label}"):
        return convert_module(module, to_program=True), module


def convert_whole_functions(model, context_length: int, prefill_length: int, compression: Compression,
                            progress: Progress, chunk: Chunk | None, label: str) -> tuple[dict, dict]:
    """A model holding its real (e.g. calibrated) weights: each function converted and compressed in turn."""
    programs, sizes = {}, None
    for function, tokens in zip(FUNCTIONS, (prefill_length, 1)):
        program, _ = convert_function(model, context_length, tokens, chunk, progress, function, label)
        sizes = sizes or theoretical_sizes(program, compression)
        if compression.compresses:
            with progress.step(f"quantize {function} ({compression.recipe.name}){label}"):
                compression.apply_to_programs([program])
        programs[function] = program
        collect()  # the float16 weights of this function are gone once compressed
    return programs, sizes


def size_report(package: Path, package_bytes: int, sizes: dict) -> dict:
    """Bytes on disk against theory; the program text (model.mlmodel) is a fixed cost apart from the weights."""
    weight_file = (package / WEIGHTS_IN_PACKAGE).stat().st_size
    return {
        **sizes,
        "weight_file_bytes": weight_file,
        "program_bytes": package_bytes - weight_file,
        "package_bytes": package_bytes,
        "weights_to_theory": round(weight_file / sizes["theoretical_bytes"], 4),
        "package_to_theory": round(package_bytes / sizes["theoretical_bytes"], 4),
    }


def chunk_entry(staging: Path, chunk: Chunk, package_name: str, sizes: dict, config: OpenELMConfig,
                context_length: int) -> dict:
    """One package of the export: its layers, signature, states and cache layout, bytes and checksum."""
    package = staging / package_name
    functions, states = read_signatures(package)
    package_bytes = folder_bytes(package)
    kv_heads = tuple(config.num_kv_heads[chunk.start:chunk.stop])
    return {
        "package": package_name,
        "layers": [chunk.start, chunk.stop],
        "input": INPUT_IDS if chunk.takes_ids else HIDDEN_IN,
        "output": LOGITS if chunk.gives_logits else HIDDEN_OUT,
        "functions": functions,
        "states": states,
        "kv_cache": CacheLayout(kv_heads, context_length, config.head_dim).to_dict(),
        "package_bytes": package_bytes,
        "weights_file": str(WEIGHTS_IN_PACKAGE),
        "weights_sha256": sha256_file(package / WEIGHTS_IN_PACKAGE),
        "size": size_report(package, package_bytes, sizes),
    }


def total_size(chunks: list[dict]) -> dict:
    """The chunks' size reports added up (one chunk: its own report)."""
    if len(chunks) == 1:
        return chunks[0]["size"]
    keys = ("theoretical_bytes", "weight_matrix_bytes", "other_constant_bytes", "weight_file_bytes",
            "program_bytes", "package_bytes")
    total = {key: sum(c["size"][key] for c in chunks) for key in keys}
    total["weights_to_theory"] = round(total["weight_file_bytes"] / total["theoretical_bytes"], 4)
    total["package_to_theory"] = round(total["package_bytes"] / total["theoretical_bytes"], 4)
    return total


def build_manifest(name, packages, staging, source, config, context_length, options, compression,
                   tokenizer_dir, tokenizer_spec):
    """export.json: everything an app needs to drive the package(s), and everything needed to reproduce them."""
    import coremltools as ct

    chunks = [chunk_entry(staging, chunk, package_name, sizes, config, context_length)
              for chunk, package_name, sizes in packages]
    single = chunks[0] if len(chunks) == 1 else None
    pieces, piece_size = vocab_split(config.vocab_size)
    return {
        "format": MANIFEST_FORMAT,
        "name": name,
        # One package: described here directly. Several: `chunks`, run in order, each with its own states.
        "package": single and single["package"],
        "chunks": chunks,
        "source": source.to_dict(),
        "model": config.to_dict(),
        "context_length": context_length,
        "prefill_length": options.prefill_length,
        "vocab_size": config.vocab_size,
        "bos_token_id": config.bos_token_id,
        "eos_token_id": config.eos_token_id,
        "tokenizer": None
        if tokenizer_dir is None
        else {
            "source": str(tokenizer_spec),
            "files": [f for f in TOKENIZER_FILES if (staging / f).is_file()],
            "add_bos": True,
        },
        "functions": single and single["functions"],
        "default_function": "decode",
        "inputs": {INPUT_IDS: "token ids, int32 [1, T]", POSITION: "index of the first token in the sequence",
                   HIDDEN_IN: "chunks after the first: the previous chunk's hidden_out, float16 [1, T, model_dim]"},
        "outputs": {LOGITS: "float16 [1, T, pieces, piece_size]; flatten the last two axes, keep vocab_size",
                    HIDDEN_OUT: "chunks before the last: float16 [1, T, model_dim], the next chunk's hidden_in"},
        "states": single and single["states"],
        "state_names": list(STATE_NAMES),
        "kv_cache": single and single["kv_cache"],
        "logits_layout": {"pieces": pieces, "piece_size": piece_size},
        "driving": (
            "split the prompt ids (BOS first) into chunks of prefill_length, pad the last chunk, call prefill "
            "with position = chunk start; take the logits row of the last real token; then call decode with "
            "each new token at position = its index; stop before position reaches context_length. With several "
            "chunks, every call runs them in order (same function, same position), each with its own state, "
            "feeding hidden_out to the next chunk's hidden_in"
        ),
        "quantization": compression.to_dict(),
        "max_chunk_bytes": options.max_chunk_bytes,
        "package_bytes": sum(c["package_bytes"] for c in chunks),
        "weights_file": str(WEIGHTS_IN_PACKAGE),
        "weights_sha256": single and single["weights_sha256"],
        "size": total_size(chunks),
        "versions": {
            "coremltools": ct.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "elm-export": _own_version(),
        },
        "deployment_target": "iOS18",
        "compute_precision": "float16",
        "verification": None,
    }


def _own_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("elm-export")
    except PackageNotFoundError:
        return "unknown"
