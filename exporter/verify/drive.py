"""Driving a package as an app does: chunked prefill, then one decode call per token, states kept between calls.

A split export runs as a chain of packages; the executors are our float16 executor (any OS) or
Core ML itself (macOS).
"""

from __future__ import annotations

import platform

import numpy as np

from exporter.errors import ExportError
from exporter.graph.contract import target_of, verify_length_of
from exporter.graph.signature import ANE, HIDDEN_OUT, INPUT_IDS, LOGITS
from exporter.memory import collect
from exporter.verify.calls import ExportCalls


def graph_settings(manifest: dict, context_length: int | None = None, layers: list[int] | None = None):
    """The graph an export was built with (exporter.graph.functions), to build it again (cross-check, twin);
    `layers`: the export's layers that become layers 0, 1, ... of a twin."""
    from exporter.graph.functions import GraphSettings
    from exporter.graph.norm_forms import forms_of

    forms = forms_of((manifest.get("graph") or {}).get("norms"))
    if layers is not None:
        renamed = {f"layers.{i}.": f"layers.{new}." for new, i in enumerate(layers)}
        forms = {next((name.replace(old, new, 1) for old, new in renamed.items() if name.startswith(old)), name): form
                 for name, form in forms.items() if not name.startswith("layers.") or
                 any(name.startswith(old) for old in renamed)}
    return GraphSettings(target_of(manifest), context_length or manifest["context_length"], forms,
                         verify_length_of(manifest))


def package_run(executor, manifest: dict, tokens: list[int], prompt_length: int,
                adapter: str | None = None) -> tuple[np.ndarray, int, int]:
    """Drive the package like an app on `tokens` (the first `prompt_length` the prompt): (logits rows, prefill
    calls, position of the first row). gpu: chunked prefill gives the prompt's rows. ane (exporter.graph.contract):
    prefill gives none and stops before the prompt's last token, which decode takes, so the rows start there;
    the rotary rows and the mask are computed as an app computes them (exporter.verify.calls)."""
    ane = target_of(manifest) == ANE
    prefill_length = manifest["prefill_length"]
    prefilled = prompt_length - 1 if ane else prompt_length  # tokens prefill takes; decode takes the rest
    calls = ExportCalls(executor, manifest, adapter)  # adapter: its own functions (exporter.graph.adapters)
    rows, prefills = [], 0
    for start in range(0, prefilled, prefill_length):
        given = calls.prefill(tokens[start : min(start + prefill_length, prefilled)], start)
        if not ane:
            rows.append(given)
        prefills += 1
    rows += [calls.decode(tokens[position], position)[None] for position in range(prefilled, len(tokens))]
    return np.concatenate(rows).astype(np.float32), prefills, prefilled if ane else 0


def chunk_output(chunk: dict, outputs: dict):
    if chunk["output"] not in outputs:
        raise ExportError(f"{chunk['package']} has no output {chunk['output']!r} (it gives "
                          f"{', '.join(outputs)}); export.json and the packages do not match: re-export")
    return outputs[chunk["output"]]


def chunk_call(executor, chunk: dict, function: str, value, inputs: dict, state):
    """One chunk's part of a call: the ane target's first chunk looks the ids up with its embed function first;
    the value it passes on (None for the last chunk's ane prefill, which returns nothing to read)."""
    if value is None:  # the first chunk: token ids in
        value = inputs[INPUT_IDS]
        if f"embed_{function}" in chunk["functions"]:
            value = executor.run(f"embed_{function}", {INPUT_IDS: value}, {})[HIDDEN_OUT]
    body = {key: item for key, item in inputs.items() if key != INPUT_IDS}
    outputs = executor.run(function, {chunk["input"]: value, **body}, state)
    if chunk["output"] == LOGITS and LOGITS not in outputs and HIDDEN_OUT in outputs:
        return None  # the ane prefill (prompt_opt): its logits were never computed
    return chunk_output(chunk, outputs)


class ChunkChain:
    """The packages of an export run as one model, as an app runs them: every call goes through
    each chunk in order (same function, same position, its own state), hidden states passed on."""

    def __init__(self, executors: list, chunks: list[dict]):
        self.executors, self.chunks = executors, chunks

    def new_state(self):
        return [executor.new_state() for executor in self.executors]

    def run(self, function: str, inputs: dict, state: list) -> dict:
        value = None
        for executor, chunk, chunk_state in zip(self.executors, self.chunks, state):
            value = chunk_call(executor, chunk, function, value, inputs, chunk_state)
        return {LOGITS: value}


class RecordedChunk:
    """One chunk run over every call of a drive on its own, its inputs the previous chunk's recorded
    outputs: verifying chunk by chunk keeps one chunk's program in memory at a time, and gives what
    running the chunks in turn for each call gives (the calls do not depend on the package's outputs)."""

    def __init__(self, executor, chunk: dict, inputs: list | None):
        self.executor, self.chunk, self.inputs, self.outputs = executor, chunk, inputs, []

    def new_state(self):
        return self.executor.new_state()

    def run(self, function: str, inputs: dict, state) -> dict:
        value = None if self.inputs is None else self.inputs[len(self.outputs)]
        self.outputs.append(chunk_call(self.executor, self.chunk, function, value, inputs, state))
        return {LOGITS: self.outputs[-1]}


def run_chunk_by_chunk(packages: list, manifest: dict, tokens: list[int], prompt_length: int,
                       float32_limit_bytes: int | None = None, programs=None, drive=None):
    """package_run of a (possibly split) export with the float16 executor, one chunk at a time.

    float32_limit_bytes: a chunk whose weights take more than this widened to float32 keeps them float16
    (the same results, slower: every op widens them again). programs: a ProgramShelf to load the packages
    with, which keeps them for the de-quantized reference; without one each is dropped after its run.
    drive(executor): other calls than package_run's (exporter.verify.speculative), its last chunk's result returned."""
    from exporter.verify.executor import ProgramExecutor, widened_weight_bytes
    from exporter.verify.programs import read_program

    def executor_for(package, chunk):
        program = programs.load(package) if programs is not None else read_program(package)
        too_big = float32_limit_bytes is not None and widened_weight_bytes(program) > float32_limit_bytes
        return ProgramExecutor.from_program(program, keep_large_float16=too_big)

    return run_chunks(packages, manifest["chunks"], manifest, tokens, prompt_length, executor_for, drive)


def run_chunks(paths: list, chunks: list[dict], manifest: dict, tokens: list[int], prompt_length: int,
               executor_for, drive=None):
    """package_run (or `drive`) of a (possibly split) export, one chunk at a time; executor_for(path, chunk) loads
    one. The calls may not depend on the outputs: each chunk replays them on the previous chunk's outputs."""
    drive = drive or (lambda stage: package_run(stage, manifest, tokens, prompt_length))
    recorded = None
    for path, chunk in zip(paths, chunks):
        executor = executor_for(path, chunk)
        stage = RecordedChunk(executor, chunk, recorded)
        result = drive(stage)
        recorded = stage.outputs
        if hasattr(executor, "close"):
            executor.close()
        del stage, executor
        collect()  # its weights go before the next chunk's load (reference cycles keep them otherwise)
    return result


def coreai_run(paths: list, manifest: dict, tokens: list[int], prompt_length: int, drive=None):
    """package_run (or `drive`) of a Core AI export in Apple's runtime (coreai-core), one chunk at a time."""
    from exporter.coreai.runtime import CoreAIExecutor

    return run_chunks(paths, manifest["coreai"]["chunks"], manifest, tokens, prompt_length, CoreAIExecutor, drive)


class CoreMLExecutor:
    """One package through the real Core ML runtime (macOS only)."""

    def __init__(self, package_path):
        import coremltools as ct

        functions = [f.name for f in ct.models.MLModel(str(package_path), skip_model_load=True).get_spec()
                     .description.functions]
        self.models = {name: ct.models.MLModel(str(package_path), function_name=name) for name in functions}

    def new_state(self):
        return self.models["prefill"].make_state()

    def run(self, function, inputs, state):
        return self.models[function].predict(inputs, state=state or None)


def coreml_runtime_run(packages: list, manifest: dict, tokens: list[int], prompt_length: int, adapter=None):
    """(logits, first row's position) from the real Core ML runtime, where this OS has it (macOS); None elsewhere."""
    if platform.system() != "Darwin":
        return None
    chain = ChunkChain([CoreMLExecutor(p) for p in packages], manifest["chunks"])
    logits, _, first = package_run(chain, manifest, tokens, prompt_length, adapter)
    return logits, first
