"""The export, stage by stage: checkpoint → reference model → export graph → Core ML → quantize → manifest → verify."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from exporter.checkpoint.chat import chat_template_for, read_chat_template
from exporter.checkpoint.sources import EMBEDDED_MODELS, Source
from exporter.checkpoint.tensors import TensorSource
from exporter.checkpoint.text import sample_ids
from exporter.checkpoint.tokenizer import (
    DEFAULT_TOKENIZER,
    check_tokenizer,
    resolve_tokenizer,
    ship_tokenizer,
)
from exporter.checkpoint.tokenizer import (
    SHIPPED_FILES as TOKENIZER_FILES,
)
from exporter.coreml.functions import convert_functions
from exporter.coreml.package import package_name, save_functions
from exporter.errors import ExportError, UsageError
from exporter.graph.adapters import AdapterTensors, adapter_bytes
from exporter.graph.chunks import DEFAULT_MAX_CHUNK_BYTES, plan_chunks
from exporter.graph.functions import GraphSettings
from exporter.graph.norm_forms import choose_norm_forms, forms_of
from exporter.graph.signature import (
    ANE,
    DEFAULT_DRAFT_TOKENS,
    DEFAULT_FUNCTION,
    DEFAULT_PREFILL_LENGTH,
    DEFAULT_TARGET,
    TARGETS,
)
from exporter.graph.weights import WeightPlan
from exporter.manifest.build import build_manifest
from exporter.manifest.ceiling import decode_ceiling
from exporter.manifest.document import write_manifest
from exporter.manifest.generation import generation_section
from exporter.memory import collect, pin_mmap_threshold
from exporter.model.config import OpenELMConfig
from exporter.model.load import open_source, resolve_source, source_config, whole_model
from exporter.model.preflight import measure
from exporter.model.presets import get_preset
from exporter.model.streamed import materialized, skeleton_model
from exporter.output import atomic_output, refuse_existing
from exporter.pipeline_adapters import (
    AdapterPlan,
    adapters_section,
    merged_section,
    plan_adapter_options,
    read_adapters,
)
from exporter.progress import Progress
from quant.calibrate import calibrate, calibration_plan, calibration_tokens, tokens_needed
from quant.coreml import Compression
from quant.recipes import DEFAULT_GROUP_SIZE, NEURAL_ENGINE, TARGET_RECIPES, get_recipe
from quant.recipes import GPU as GPU_COMPUTE

FORMATS = {"coreml": ["coreml"], "coreai": ["coreai"], "both": ["coreml", "coreai"]}
PREFLIGHT_TOKENS = 256  # enough text to see each layer's typical peaks, cheap even for 3B


@dataclass
class ExportOptions:
    size: str | None = None
    instruct: bool = False
    model_dir: Path | None = None
    revision: str | None = None
    tokenizer: str | None = DEFAULT_TOKENIZER  # None: export without tokenizer files
    quant: str | None = None  # None: the target's default (TARGET_RECIPES)
    quant_map: str | None = None  # per-weight overrides, e.g. "embedding=lut6,layers.0-3=int8"
    group_size: int = DEFAULT_GROUP_SIZE  # palettization: output channels per look-up table
    per_channel_scale: bool = False  # palettization: a float16 scale per input channel (weight column)
    compute_target: str | None = None  # where the app runs it: "neural-engine" or "gpu"; None: as --target
    context_length: int | None = None  # None: the model's own maximum
    prefill_length: int = DEFAULT_PREFILL_LENGTH
    draft_tokens: int = DEFAULT_DRAFT_TOKENS  # speculative decoding: verify takes this many + 1 tokens; 0: no verify
    chat_template: Path | None = None  # a Jinja file replacing the model's own chat template
    output: Path | None = None
    force: bool = False
    verify: bool = True  # run elm-verify's parity check on the result and store it in export.json
    allow_overflow: bool = False  # export even when the preflight sees float16 overflow
    random_weights: int | None = None  # seed: real shapes of --size, random weights (benchmarks, no Hub)
    calibrate: str | None = None  # calibration text file, or "builtin" for the built-in held-out text
    max_chunk_bytes: int | None = DEFAULT_MAX_CHUNK_BYTES  # split into packages of at most this; None: one
    format: str = "coreml"  # coreml (iOS 18+), coreai (iOS 27+) or both, in one folder under one export.json
    target: str = DEFAULT_TARGET  # ane: the graph laid out to the Neural Engine rules (exporter.graph.ane); gpu
    adapters: tuple[str, ...] = ()  # NAME=DIR LoRA adapters, each its own functions sharing the base weights
    merge_adapter: str | None = None  # the one of them baked into the base weights instead
    adapter_quant: str | None = None  # the adapters' matrices' recipe; None: float16


@dataclass
class ExportResult:
    folder: Path
    manifest: dict
    report: object = None  # exporter.verify.report.ParityReport of the first format, when verified
    reports: dict = field(default_factory=dict)  # {format: ParityReport}


@dataclass
class Plan:
    """What the export will do, settled before anything slow runs: the usage errors come first."""

    options: ExportOptions
    compression: Compression
    source: Source
    name: str
    target: Path
    config: OpenELMConfig
    context_length: int
    tokenizer_spec: str | None
    tokenizer_dir: Path | None = None
    chat_template: tuple[str | None, str | None] = (None, None)  # (template, where it came from)
    calibration_text: list[int] | None = None
    calibration: dict | None = None  # export.json's record of a calibrated compression
    norms: dict | None = None  # ane: each RMSNorm's form, chosen from the preflight (exporter.graph.norm_forms)
    packages: list = field(default_factory=list)  # (chunk, package name, theoretical sizes)
    coreai_models: list = field(default_factory=list)  # (chunk, .aimodel name, theoretical sizes, weights)
    adapters: AdapterPlan = field(default_factory=AdapterPlan)
    weight_plan: WeightPlan | None = None

    @property
    def formats(self) -> list[str]:
        return FORMATS[self.options.format]

    @property
    def graph(self) -> GraphSettings:
        return GraphSettings(self.options.target, self.context_length, forms_of(self.norms), self.verify_length,
                             self.adapters.adapters)

    @property
    def verify_length(self) -> int:
        return self.options.draft_tokens + 1 if self.options.draft_tokens else 0


def check_lengths(context_length: int, prefill_length: int, model_max: int, draft_tokens: int = 0) -> None:
    if prefill_length < 1:
        raise UsageError(f"--prefill-length {prefill_length} must be at least 1")
    if not 0 <= draft_tokens < min(context_length, 64):
        raise UsageError(f"--draft-tokens {draft_tokens} must be 0 (no verify function) to "
                         f"{min(context_length, 64) - 1}; a few (4) is what speculative decoding gains most from")
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
        base = "OpenELM-" + source.folder.name.removeprefix("openelm-")
    elif source.random_seed is not None:
        base = f"{source.hub_id.split('/')[-1]}-random{source.random_seed}"
    else:
        base = source.hub_id.split("/")[-1]
    return f"{base}-{options.quant}"


def with_target_defaults(options: ExportOptions, progress: Progress) -> ExportOptions:
    """The recipe and compute target --target implies where they were not given."""
    if options.target not in TARGETS:
        raise UsageError(f"--target {options.target!r} is not one of {', '.join(TARGETS)}")
    quant = options.quant or TARGET_RECIPES[options.target]
    compute_target = options.compute_target or (NEURAL_ENGINE if options.target == ANE else GPU_COMPUTE)
    if options.target == ANE and get_recipe(quant).kind == "linear" and quant != "int8":
        progress.say(f"note: --quant {quant} is per-block integer quantization, a GPU feature that may not run on "
                     f"the Neural Engine; --quant {TARGET_RECIPES[ANE]} (the --target ane default) or lut4..lut8 will")
    return replace(options, quant=quant, compute_target=compute_target)


def plan_export(options: ExportOptions, progress: Progress) -> Plan:
    """Resolve the source, the names and the lengths, and check every option, before anything slow."""
    options = with_target_defaults(options, progress)
    adapters = plan_adapter_options(options.adapters, options.merge_adapter, options.adapter_quant, options.format,
                                    options.calibrate)
    compression = Compression(get_recipe(options.quant), options.quant_map, options.group_size,
                              options.per_channel_scale, options.compute_target, adapters.recipe)
    compression.check_compute_target()  # before a download: it needs no model
    if options.format not in FORMATS:
        raise UsageError(f"--format {options.format!r} is not one of {', '.join(FORMATS)}")
    if "coreai" in FORMATS[options.format]:
        check_coreai(compression)
    if options.size is not None and options.size.strip().lower() not in EMBEDDED_MODELS:
        get_preset(options.size)  # an unknown size is a usage error before any download
    with progress.step("resolve checkpoint"):
        source = resolve_source(options.size, options.instruct, options.model_dir, options.revision,
                                options.random_weights)
    name = default_name(options, source)
    target = Path(options.output) if options.output else Path.cwd() / name
    refuse_existing(target, options.force)  # before the slow steps; atomic_output checks again at the end
    config = source_config(source)
    context_length = options.context_length or config.max_context_length
    check_lengths(context_length, options.prefill_length, config.max_context_length, options.draft_tokens)
    compression.validate(config)
    read_adapters(adapters, config, options.group_size)
    if options.calibrate is not None:
        calibration_plan(config, compression)  # --quant none: a usage error before any loading
    tokenizer_spec = options.tokenizer
    if source.embedded and tokenizer_spec == DEFAULT_TOKENIZER:
        tokenizer_spec = str(source.folder)  # the embedded model has its own tokenizer, next to its weights
    override = None if options.chat_template is None else read_chat_template(options.chat_template)
    chat_template = chat_template_for(name, options.instruct, override)
    return Plan(options, compression, source, name, target, config, context_length, tokenizer_spec,
                chat_template=chat_template, adapters=adapters)


def check_coreai(compression: Compression) -> None:
    """Core AI needs its packages, and recipes coreai-opt can apply: one line each, before anything slow."""
    from exporter.coreai.runtime import require_coreai
    from quant.coreai import check_recipes
    from quant.recipes import parse_quant_map

    for module in ("coreai", "coreai_torch", "coreai_opt"):
        require_coreai(module)
    check_recipes({compression.recipe} | {recipe for _, recipe in parse_quant_map(compression.quant_map)})


def read_inputs(plan: Plan, progress: Progress) -> None:
    """The tokenizer and (with --calibrate) the calibration text."""
    if plan.tokenizer_spec is not None:
        with progress.step("resolve tokenizer"):
            plan.tokenizer_dir = resolve_tokenizer(plan.tokenizer_spec)
            check_tokenizer(plan.tokenizer_dir)
    if plan.options.calibrate is not None:
        calibrate_file = None if plan.options.calibrate == "builtin" else Path(plan.options.calibrate)
        with progress.step("read calibration text"):
            plan.calibration_text = calibration_tokens(calibrate_file, plan.tokenizer_dir, plan.config.vocab_size,
                                                       plan.config.bos_token_id, tokens_needed(plan.config))


def export(options: ExportOptions, progress: Progress | None = None) -> ExportResult:
    progress = progress or Progress(quiet=True)
    pin_mmap_threshold()  # freed weight arrays leave RSS at once (exporter.memory)
    plan = plan_export(options, progress)
    read_inputs(plan, progress)
    with progress.step("open checkpoint"):
        _, tensors = open_source(plan.source, plan.config)
    if plan.adapters.specs:  # the adapters' matrices beside the checkpoint's, the merged one's weights merged
        tensors = AdapterTensors(tensors, plan.adapters.adapters, plan.adapters.merged)
    model, weight_plan, ranges = reference_model(plan, tensors, progress)
    plan.weight_plan = weight_plan
    if options.target == ANE:
        plan.norms = choose_norm_forms(ranges, plan.config)
    with atomic_output(plan.target, options.force) as staging:
        if "coreml" in plan.formats:
            write_packages(plan, model, weight_plan, tensors, staging, progress)
        if "coreai" in plan.formats:
            write_coreai_models(plan, model, tensors, staging, progress)
        del model
        collect()
        copy_tokenizer(plan, staging)
        manifest = manifest_of(plan, staging, ranges)
        write_manifest(staging, manifest)
        reports = verify_formats(plan, staging, manifest, progress) if options.verify else {}
        manifest["timings"] = {stage: round(seconds, 2) for stage, seconds in progress.timings.items()}
        write_manifest(staging, manifest)
    return ExportResult(folder=plan.target, manifest=manifest, report=next(iter(reports.values()), None),
                        reports=reports)


def reference_model(plan: Plan, tensors: TensorSource, progress: Progress):
    """(model, weight plan, activation ranges): a skeleton whose matrices stay on disk until the converted
    program needs them, or, with --calibrate, the whole float32 model compressed in place."""
    if plan.calibration_text is not None:  # before the preflight, so it measures the weights that get exported
        with progress.step("load (whole model, for calibration)"):
            model = whole_model(plan.config, tensors)  # calibration needs the whole float32 model
        plan.calibration = calibrate(model, plan.compression, plan.calibration_text, progress)
        plan.calibration["text"] = plan.options.calibrate
        return model, None, preflight(model, plan, progress)
    weight_plan = WeightPlan()
    model = skeleton_model(plan.config, tensors, weight_plan.matrix_placeholder)
    with materialized(model, tensors) as reference:
        ranges = preflight(reference, plan, progress)
    return model, weight_plan, ranges


def preflight(model, plan: Plan, progress: Progress):
    """Activation ranges over calibration text; float16 overflow stops the export unless allowed."""
    config = model.config
    with progress.step("activation-range preflight"):
        ranges = measure(model, sample_ids(plan.tokenizer_dir, config.vocab_size, config.bos_token_id,
                                           min(PREFLIGHT_TOKENS, plan.context_length)))
    progress.say(ranges.summary())
    if ranges.status == "overflow" and not plan.options.allow_overflow:
        raise ExportError(f"{ranges.summary()}: the float16 package would produce inf/NaN on device; "
                          "pass --allow-overflow to export anyway")
    return ranges


def write_packages(plan: Plan, model, weight_plan: WeightPlan | None, tensors: TensorSource, staging: Path,
                   progress: Progress) -> None:
    """Each chunk of layers converted, filled, compressed and saved as one multifunction package."""
    chunks = plan_chunks(plan.config, plan.compression, plan.options.max_chunk_bytes)
    for index, chunk in enumerate(chunks):
        label = "" if len(chunks) == 1 else f" [chunk {index + 1}/{len(chunks)}: layers {chunk.start}-{chunk.stop - 1}]"
        programs, sizes = convert_functions(model, weight_plan, tensors, plan.graph,
                                            plan.options.prefill_length, plan.compression, progress, chunk, label)
        name = package_name(plan.name, len(chunks), index)
        with progress.step(f"save multifunction package{label}"):
            save_functions(programs, staging / name, default_function=DEFAULT_FUNCTION)
        del programs
        collect()
        plan.packages.append((chunk, name, sizes))


def write_coreai_models(plan: Plan, model, tensors: TensorSource, staging: Path, progress: Progress) -> None:
    """Each chunk of layers as one Core AI model (exporter.coreai), chunked as the Core ML packages are."""
    from exporter.coreai.write import write_models

    chunks = plan_chunks(plan.config, plan.compression, plan.options.max_chunk_bytes)
    plan.coreai_models = write_models(model, tensors, chunks, plan.graph, plan.options.prefill_length,
                                      plan.compression, plan.name, staging, progress)


def verify_formats(plan: Plan, staging: Path, manifest: dict, progress: Progress):
    """elm-verify's parity check of each format written, recorded in export.json; the first format's report."""
    from exporter.verify.check import verify_export

    reports = {}
    for backend in plan.formats:
        runner = "Apple's Core AI runtime" if backend == "coreai" else "float16 executor"
        with progress.step(f"verify {backend} (reference vs package, {runner})"):
            reports[backend] = verify_export(staging, model_dir=plan.source.folder, backend=backend)
    if "coreml" in reports:
        manifest["verification"] = reports["coreml"].to_dict()
    if "coreai" in reports:
        manifest["coreai"]["verification"] = reports["coreai"].to_dict()
    return reports


def copy_tokenizer(plan: Plan, staging: Path) -> None:
    if plan.tokenizer_dir is not None:
        ship_tokenizer(plan.tokenizer_dir, staging, plan.chat_template[0])


def graph_section(target: str, norms: dict | None, verify_length: int = 0) -> dict:
    from exporter.graph.contract import contract

    section = {"target": target, **contract(target, verify_length), "norms": norms}
    if target == ANE:
        section["coreai_norms"] = ("max_scaled everywhere: coreai-torch lowers layer_norm through torch's "
                                   "decomposition, which computes float16 statistics in float32")
    return section


def manifest_of(plan: Plan, staging: Path, ranges) -> dict:
    tokenizer = None if plan.tokenizer_dir is None else {
        "source": str(plan.tokenizer_spec),
        "files": [f for f in TOKENIZER_FILES if (staging / f).is_file()],
        "add_bos": True,
    }
    manifest = build_manifest(plan.name, plan.packages, staging, plan.source.to_dict(), plan.config,
                              plan.context_length, plan.options.prefill_length, plan.options.max_chunk_bytes,
                              plan.compression.to_dict(), tokenizer, plan.coreai_models)
    if plan.calibration is not None:
        manifest["quantization"]["calibration"] = plan.calibration
    manifest["activation_range"] = ranges.to_dict()
    manifest["graph"] = graph_section(plan.options.target, plan.norms, plan.verify_length)
    manifest["verify_length"] = plan.verify_length or None
    stored = adapter_bytes(plan.weight_plan, plan.compression, plan.adapters.adapters)
    manifest["adapters"] = adapters_section(plan.adapters, plan.options.target, plan.verify_length, stored)
    manifest["merged_adapter"] = merged_section(plan.adapters)
    manifest["generation"] = generation_section(*plan.chat_template, plan.tokenizer_dir, plan.config.bos_token_id,
                                                plan.config.eos_token_id)
    chunks = manifest["chunks"] or manifest["coreai"]["chunks"]
    weight_bytes = manifest["size"]["weight_file_bytes"] if manifest["size"] else manifest["coreai"]["package_bytes"]
    manifest["ceiling"] = decode_ceiling(weight_bytes, [state["shape"] for c in chunks for state in c["states"]])
    return manifest
