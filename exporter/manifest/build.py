"""Writing export.json: everything an app needs to drive the package(s), and everything needed to reproduce them."""

from __future__ import annotations

import platform
from pathlib import Path

from exporter.coreai.package import read_signatures as coreai_signatures
from exporter.coreml.package import WEIGHTS_IN_PACKAGE, read_signatures
from exporter.files import folder_bytes, folder_files, sha256_file
from exporter.graph.cache import CacheLayout
from exporter.graph.chunks import Chunk
from exporter.graph.signature import (
    DEFAULT_FUNCTION,
    HIDDEN_IN,
    HIDDEN_OUT,
    INPUT_IDS,
    LOGITS,
    POSITION,
    ROTARY,
    STATE_NAMES,
)
from exporter.graph.vocab import vocab_split
from exporter.manifest.document import MANIFEST_FORMAT
from exporter.manifest.rules import coreai_rules, coreml_rules
from exporter.model.config import OpenELMConfig


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


def described(chunk: Chunk, name: str, functions: dict, states: list, config: OpenELMConfig,
              context_length: int) -> dict:
    """What any format's chunk says about itself: its file, layers, role in the chain, signature and cache."""
    kv_heads = tuple(config.num_kv_heads[chunk.start:chunk.stop])
    # The body's first input: token ids (gpu target, first chunk), else hidden states (ane: after embed_*).
    body_inputs = [feature["name"] for feature in functions.get("decode", {}).get("inputs", [])]
    neural_engine = any(name.startswith("embed_") for name in functions) or ROTARY in body_inputs
    return {
        "package": name,
        "layers": [chunk.start, chunk.stop],
        "input": INPUT_IDS if INPUT_IDS in body_inputs else HIDDEN_IN,
        "output": LOGITS if chunk.gives_logits else HIDDEN_OUT,
        "functions": functions,
        "states": states,
        "kv_cache": CacheLayout(kv_heads, context_length, config.head_dim, neural_engine).to_dict(),
    }


def chunk_entry(staging: Path, chunk: Chunk, package_name: str, sizes: dict, config: OpenELMConfig,
                context_length: int) -> dict:
    """One package of the export: its layers, signature, states, cache layout, bytes and every file's sha256."""
    package = staging / package_name
    # Read first: coremltools rewrites the package's Manifest.json the first time it opens the package.
    signatures = read_signatures(package)
    package_bytes = folder_bytes(package)
    files = file_hashes(package)
    return {
        **described(chunk, package_name, *signatures, config, context_length),
        "package_bytes": package_bytes,
        "weights_file": str(WEIGHTS_IN_PACKAGE),
        "weights_sha256": files[WEIGHTS_IN_PACKAGE.as_posix()],
        "files": files,
        "size": size_report(package, package_bytes, sizes),
        "neural_engine_rules": coreml_rules(package),
    }


def coreai_entry(staging: Path, chunk: Chunk, model_name: str, sizes: dict, weights: dict,
                 config: OpenELMConfig, context_length: int) -> dict:
    """One .aimodel of a Core AI export: the same fields as a Core ML chunk, and where each weight is in it."""
    model = staging / model_name
    model_bytes = folder_bytes(model)
    return {
        **described(chunk, model_name, *coreai_signatures(model), config, context_length),
        "package_bytes": model_bytes,
        "files": file_hashes(model),
        "size": {**sizes, "package_bytes": model_bytes,
                 "package_to_theory": round(model_bytes / sizes["theoretical_bytes"], 4)},
        "weights": weights,  # {name: torch nodes its constant is located at, recipe}: what elm-verify reads back
        "neural_engine_rules": coreai_rules(model),
    }


def coreai_section(staging: Path, models: list, config: OpenELMConfig, context_length: int) -> dict:
    """export.json's `coreai`: the .aimodel chunks (run exactly as the Core ML chunks are)."""
    from importlib.metadata import PackageNotFoundError, version

    chunks = [coreai_entry(staging, chunk, name, sizes, weights, config, context_length)
              for chunk, name, sizes, weights in models]
    versions = {}
    for package in ("coreai-core", "coreai-torch", "coreai-opt"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "unknown"
    theory = sum(c["size"]["theoretical_bytes"] for c in chunks)
    total = sum(c["package_bytes"] for c in chunks)
    return {
        "package": chunks[0]["package"] if len(chunks) == 1 else None,
        "chunks": chunks,
        "package_bytes": total,
        "size": {"theoretical_bytes": theory, "package_bytes": total, "package_to_theory": round(total / theory, 4)},
        "deployment_target": "iOS27",
        "runtime": "Core AI (iOS 27 / macOS 27); elm-verify runs it in coreai-core's runtime on Linux",
        "versions": versions,
        "verification": None,
    }


def file_hashes(package: Path) -> dict[str, str]:
    """{path inside the package (posix): sha256} for every file of the package, weights and program alike."""
    return {path.relative_to(package).as_posix(): sha256_file(path) for path in folder_files(package)}


def total_size(chunks: list[dict]) -> dict | None:
    """The chunks' size reports added up (one chunk: its own report; no Core ML chunks: None)."""
    if not chunks:
        return None
    if len(chunks) == 1:
        return chunks[0]["size"]
    keys = ("theoretical_bytes", "weight_matrix_bytes", "other_constant_bytes", "weight_file_bytes",
            "program_bytes", "package_bytes")
    total = {key: sum(c["size"][key] for c in chunks) for key in keys}
    total["weights_to_theory"] = round(total["weight_file_bytes"] / total["theoretical_bytes"], 4)
    total["package_to_theory"] = round(total["package_bytes"] / total["theoretical_bytes"], 4)
    return total


def build_manifest(name: str, packages: list, staging: Path, source: dict, config: OpenELMConfig,
                   context_length: int, prefill_length: int, max_chunk_bytes: int | None, quantization: dict,
                   tokenizer: dict | None, coreai_models: list | None = None) -> dict:
    """export.json for the saved `packages` [(chunk, package name, theoretical sizes)] in `staging`, and the
    Core AI models [(chunk, name, sizes, weights)] beside them (None: a Core ML export only).

    source, quantization, tokenizer: the records of where the weights came from, how they were
    compressed, and which tokenizer files the folder holds (None: none).
    """
    chunks = [chunk_entry(staging, chunk, package_name, sizes, config, context_length)
              for chunk, package_name, sizes in packages]
    single = chunks[0] if len(chunks) == 1 else None
    pieces, piece_size = vocab_split(config.vocab_size)
    formats = (["coreml"] if packages else []) + (["coreai"] if coreai_models else [])
    return {
        "format": MANIFEST_FORMAT,
        "name": name,
        "formats": formats,  # what the folder holds: a Core ML export (chunks) and/or a Core AI one (coreai)
        # One package: described here directly. Several: `chunks`, run in order, each with its own states.
        "package": single["package"] if single else None,
        "chunks": chunks,
        "source": source,
        "model": config.to_dict(),
        "context_length": context_length,
        "prefill_length": prefill_length,
        "vocab_size": config.vocab_size,
        "bos_token_id": config.bos_token_id,
        "eos_token_id": config.eos_token_id,
        "tokenizer": tokenizer,
        "functions": single["functions"] if single else None,
        "default_function": DEFAULT_FUNCTION,
        "inputs": {INPUT_IDS: "token ids, int32 [1, T]", POSITION: "index of the first token in the sequence",
                   HIDDEN_IN: "chunks after the first: the previous chunk's hidden_out, float16 [1, T, model_dim]"},
        "outputs": {LOGITS: "float16 [1, T, pieces, piece_size]; flatten the last two axes, keep vocab_size",
                    HIDDEN_OUT: "chunks before the last: float16 [1, T, model_dim], the next chunk's hidden_in"},
        "states": single["states"] if single else None,
        "state_names": list(STATE_NAMES),
        "kv_cache": single["kv_cache"] if single else None,
        "logits_layout": {"pieces": pieces, "piece_size": piece_size},
        "driving": (
            "split the prompt ids (BOS first) into chunks of prefill_length, pad the last chunk, call prefill "
            "with position = chunk start; take the logits row of the last real token; then call decode with "
            "each new token at position = its index; stop before position reaches context_length. With several "
            "chunks, every call runs them in order (same function, same position), each with its own state, "
            "feeding hidden_out to the next chunk's hidden_in"
        ),
        "quantization": quantization,
        "max_chunk_bytes": max_chunk_bytes,
        "package_bytes": sum(c["package_bytes"] for c in chunks),
        "weights_file": str(WEIGHTS_IN_PACKAGE),
        "weights_sha256": single["weights_sha256"] if single else None,
        "size": total_size(chunks),
        "versions": versions(),
        "deployment_target": "iOS18" if packages else None,
        "compute_precision": "float16",
        "verification": None,
        "coreai": coreai_section(staging, coreai_models, config, context_length) if coreai_models else None,
    }


def versions() -> dict:
    """The versions that wrote the export (a different coremltools can write a different package)."""
    import coremltools as ct
    import torch

    return {
        "coremltools": ct.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "elm-export": own_version(),
    }


def own_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("elm-export")
    except PackageNotFoundError:
        return "unknown"
