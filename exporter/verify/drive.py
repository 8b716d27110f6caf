"""Driving a package as an app does: chunked prefill, then one decode call per token, states kept between calls.

A split export runs as a chain of packages; the executors are our float16 executor (any OS) or
Core ML itself (macOS).
"""

from __future__ import annotations

import platform

import numpy as np

from exporter.errors import ExportError
from exporter.graph.signature import FUNCTIONS


def package_run(executor, manifest: dict, tokens: list[int], prompt_length: int) -> tuple[np.ndarray, int]:
    """Drive the package like an app: chunked prefill of the prompt, then decode calls on `tokens`."""
    prefill_length = manifest["prefill_length"]
    vocab = manifest["vocab_size"]
    state = executor.new_state()
    rows, calls = [], 0
    for start in range(0, prompt_length, prefill_length):
        chunk = tokens[start : min(start + prefill_length, prompt_length)]
        padded = np.zeros((1, prefill_length), dtype=np.int32)
        padded[0, : len(chunk)] = chunk
        out = executor.run("prefill", {"input_ids": padded, "position": np.array([start], np.int32)}, state)
        rows.append(out["logits"].reshape(prefill_length, -1)[: len(chunk), :vocab])
        calls += 1
    for position in range(prompt_length, len(tokens)):
        ids = np.array([[tokens[position]]], dtype=np.int32)
        out = executor.run("decode", {"input_ids": ids, "position": np.array([position], np.int32)}, state)
        rows.append(out["logits"].reshape(1, -1)[:, :vocab])
    return np.concatenate(rows).astype(np.float32), calls


def chunk_output(chunk: dict, outputs: dict):
    if chunk["output"] not in outputs:
        raise ExportError(f"{chunk['package']} has no output {chunk['output']!r} (it gives "
                          f"{', '.join(outputs)}); export.json and the packages do not match: re-export")
    return outputs[chunk["output"]]


class ChunkChain:
    """The packages of an export run as one model, as an app runs them: every call goes through
    each chunk in order (same function, same position, its own state), hidden states passed on."""

    def __init__(self, executors: list, chunks: list[dict]):
        self.executors, self.chunks = executors, chunks

    def new_state(self):
        return [executor.new_state() for executor in self.executors]

    def run(self, function: str, inputs: dict, state: list) -> dict:
        value = inputs["input_ids"]
        for executor, chunk, chunk_state in zip(self.executors, self.chunks, state):
            outputs = executor.run(function, {chunk["input"]: value, "position": inputs["position"]}, chunk_state)
            value = chunk_output(chunk, outputs)
        return {"logits": value}


class RecordedChunk:
    """One chunk run over every call of a drive on its own, its inputs the previous chunk's recorded
    outputs: verifying chunk by chunk keeps one chunk's program in memory at a time, and gives what
    running the chunks in turn for each call gives (the calls do not depend on the package's outputs)."""

    def __init__(self, executor, chunk: dict, inputs: list | None):
        self.executor, self.chunk, self.inputs, self.outputs = executor, chunk, inputs, []

    def new_state(self):
        return self.executor.new_state()

    def run(self, function: str, inputs: dict, state) -> dict:
        value = inputs["input_ids"] if self.inputs is None else self.inputs[len(self.outputs)]
        outputs = self.executor.run(function, {self.chunk["input"]: value, "position": inputs["position"]}, state)
        self.outputs.append(chunk_output(self.chunk, outputs))
        return {"logits": self.outputs[-1]}


def run_chunk_by_chunk(packages: list, manifest: dict, tokens: list[int], prompt_length: int,
                       keep_large_float16: bool = False):
    """package_run of a (possibly split) export with the float16 executor, one chunk at a time."""
    from exporter.verify.executor import ProgramExecutor

    return run_chunks(packages, manifest["chunks"], manifest, tokens, prompt_length,
                      lambda package, chunk: ProgramExecutor(package, keep_large_float16))


def run_chunks(paths: list, chunks: list[dict], manifest: dict, tokens: list[int], prompt_length: int,
               executor_for) -> tuple[np.ndarray, int]:
    """package_run of a (possibly split) export, one chunk at a time; executor_for(path, chunk) loads one."""
    recorded = None
    for path, chunk in zip(paths, chunks):
        executor = executor_for(path, chunk)
        stage = RecordedChunk(executor, chunk, recorded)
        result = package_run(stage, manifest, tokens, prompt_length)
        recorded = stage.outputs
        if hasattr(executor, "close"):
            executor.close()
        del stage, executor  # its weights go before the next chunk's load
    return result


def coreai_run(paths: list, manifest: dict, tokens: list[int], prompt_length: int) -> tuple[np.ndarray, int]:
    """package_run of a Core AI export in Apple's runtime (coreai-core), one chunk at a time."""
    from exporter.coreai.runtime import CoreAIExecutor

    return run_chunks(paths, manifest["coreai"]["chunks"], manifest, tokens, prompt_length, CoreAIExecutor)


class CoreMLExecutor:
    """One package through the real Core ML runtime (macOS only)."""

    def __init__(self, package_path):
        import coremltools as ct

        self.models = {name: ct.models.MLModel(str(package_path), function_name=name) for name in FUNCTIONS}

    def new_state(self):
        return self.models["prefill"].make_state()

    def run(self, function, inputs, state):
        return self.models[function].predict(inputs, state=state)


def coreml_runtime_run(packages: list, manifest: dict, tokens: list[int], prompt_length: int) -> np.ndarray | None:
    """The real Core ML runtime, where this OS has it (macOS); None elsewhere."""
    if platform.system() != "Darwin":
        return None
    chain = ChunkChain([CoreMLExecutor(p) for p in packages], manifest["chunks"])
    logits, _ = package_run(chain, manifest, tokens, prompt_length)
    return logits
