"""An export folder as a LanguageModel (exporter.generate.generator), on whatever runs it on this machine.

Core AI models run in Apple's Core AI runtime (coreai-core: Linux and macOS); Core ML packages run in Core ML
on macOS and in elm-export's float16 executor elsewhere. Either way the calls are export.json's contract
(exporter.verify.calls), so what runs here is what an app runs.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from exporter.errors import ExportError, UsageError
from exporter.graph.contract import target_of
from exporter.graph.signature import ANE
from exporter.manifest.check import check_integrity, chunks_of, formats_of
from exporter.manifest.document import read_manifest
from exporter.verify.calls import ExportCalls
from exporter.verify.check import export_folder
from exporter.verify.drive import ChunkChain


def chunk_executor(path: Path, chunk: dict, backend: str):
    """What runs one package here: Core AI's runtime, Core ML (macOS) or the float16 executor."""
    if backend == "coreai":
        from exporter.coreai.runtime import CoreAIExecutor

        return CoreAIExecutor(path, chunk)
    if platform.system() == "Darwin":
        from exporter.verify.drive import CoreMLExecutor

        return CoreMLExecutor(path)
    from exporter.verify.executor import ProgramExecutor

    return ProgramExecutor(path)


def runner_name(backend: str) -> str:
    if backend == "coreai":
        return "Apple's Core AI runtime"
    return "Core ML" if platform.system() == "Darwin" else "elm-export's float16 executor (Core ML runs on macOS only)"


def check_adapter_name(manifest: dict, adapter: str | None) -> str | None:
    """`adapter` when the export holds it (export.json `adapters`), else a one-line error listing what it holds."""
    held = list(manifest.get("adapters") or {})
    if adapter is None or adapter in held:
        return adapter
    has = f"it has {', '.join(held)}" if held else "it has none (export with --adapter NAME=DIR)"
    raise UsageError(f"--adapter {adapter}: the export holds no adapter of that name; {has}")


class ExportModel:
    """An export folder (its packages checked against export.json first) driven as an app drives it."""

    def __init__(self, folder: Path, backend: str | None = None, adapter: str | None = None):
        self.folder = export_folder(folder)
        self.manifest = manifest = read_manifest(self.folder)
        formats = formats_of(manifest)
        self.backend = backend or formats[0]
        if self.backend not in formats:
            raise UsageError(f"{self.folder} holds no {self.backend} model (it has {', '.join(formats)}); "
                             f"pass --format {formats[0]}")
        self.adapter = check_adapter_name(manifest, adapter)
        paths = check_integrity(self.folder, manifest, self.backend)
        chunks = chunks_of(manifest, self.backend)[0]
        self.chain = ChunkChain([chunk_executor(p, c, self.backend) for p, c in zip(paths, chunks)], chunks)
        self.calls = ExportCalls(self.chain, manifest, self.adapter)  # an adapter: its functions instead
        self.context_length = manifest["context_length"]
        self.prefill_length = manifest["prefill_length"]
        self.vocab_size = manifest["vocab_size"]
        self.prefill_gives_logits = target_of(manifest) != ANE
        self.verify_length = self.calls.verify_length
        self.runner = runner_name(self.backend)

    def reset(self) -> None:
        self.calls.reset()

    def prefill(self, tokens: list[int], position: int) -> np.ndarray:
        rows = self.calls.prefill(tokens, position)
        return np.zeros((0, self.vocab_size), np.float32) if rows is None else rows

    def decode(self, token: int, position: int) -> np.ndarray:
        return self.calls.decode(token, position)

    def verify(self, tokens: list[int], position: int) -> np.ndarray:
        if not self.verify_length:
            raise ExportError(f"{self.folder} has no verify function; re-export it with --draft-tokens 4")
        return self.calls.verify(tokens, position)

    def close(self) -> None:
        for executor in self.chain.executors:
            if hasattr(executor, "close"):
                executor.close()
