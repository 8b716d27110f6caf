"""Checking an export folder against its export.json before anything runs: files, hashes, signatures.

An app drives the packages by what export.json says (context, prefill length, vocabulary, states), so a
manifest that disagrees with the program it names would have it overrun the cache or misread the logits:
every file is hashed, and every field the manifest states about a package is compared with what the
saved package itself declares (`read_signatures`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from exporter.coreai.package import read_signatures as coreai_signatures
from exporter.coreml.package import read_signatures
from exporter.errors import ExportError
from exporter.files import folder_files, sha256_file
from exporter.graph.contract import body_functions, logit_functions, target_of, verify_length_of
from exporter.graph.signature import (
    ANE,
    EMBED_FUNCTIONS,
    EMBED_VERIFY,
    HIDDEN_IN,
    HIDDEN_OUT,
    INPUT_IDS,
    LOGITS,
    VERIFY,
)
from exporter.manifest.document import MANIFEST_NAME, inside

CHANGED = "the package changed after export (re-export it)"
NOT_THIS = "the manifest does not describe this package (re-export it)"
MISSING = object()  # a field the manifest (or the package) lacks


FORMATS = ("coreml", "coreai")


def formats_of(manifest: dict) -> list[str]:
    """The formats the folder holds (export.json `formats`; before Core AI, every export was Core ML)."""
    formats = manifest.get("formats", ["coreml"])
    if not (isinstance(formats, list) and formats and all(f in FORMATS for f in formats)):
        raise ExportError(f"{MANIFEST_NAME}: formats is {show(formats)}, not a list of {', '.join(FORMATS)}; "
                          f"{NOT_THIS}")
    if "coreai" in formats and not isinstance(manifest.get("coreai"), dict):
        raise ExportError(f"{MANIFEST_NAME}: formats lists coreai but there is no coreai section; {NOT_THIS}")
    return formats


def chunks_of(manifest: dict, backend: str) -> tuple[list, str]:
    """(the chunks of one format, the field that holds them)."""
    chunks, field = (manifest["coreai"].get("chunks"), "coreai.chunks") if backend == "coreai" else (
        manifest.get("chunks"), "chunks")
    if not isinstance(chunks, list) or not chunks:
        raise ExportError(f"{MANIFEST_NAME}: {field} lists no models though formats names {backend}; {NOT_THIS}")
    return chunks, field


def check_integrity(folder: Path, manifest: dict, backend: str = "coreml") -> list[Path]:
    """The paths of one format's packages (or .aimodels), after checking each holds exactly the files the
    manifest lists, with their sha256."""
    if backend not in formats_of(manifest):
        raise ExportError(f"{folder} holds no {backend} export (export.json formats: "
                          f"{', '.join(formats_of(manifest))})")
    chunks, field = chunks_of(manifest, backend)
    packages = []
    for index, chunk in enumerate(chunks):
        package = inside(folder, chunk.get("package") or "")
        if not package.is_dir():
            raise ExportError(f"{package}: the model named in export.json is missing; re-export the model")
        hashes = check_files(package, chunk.get("files"), f"{field}[{index}].files")
        if backend == "coreai":
            packages.append(package)
            continue
        weights = inside(package, chunk.get("weights_file") or "")
        if not weights.is_file():
            raise ExportError(f"{weights}: weight file missing from the package; re-export the model")
        if (hashes.get(weights) or sha256_file(weights)) != chunk.get("weights_sha256"):
            raise ExportError(f"{weights}: sha256 does not match export.json; {CHANGED}")
        packages.append(package)
    return packages


FINDER_METADATA = {".DS_Store"}


def check_files(package: Path, listed, field: str) -> dict[Path, str]:
    """{file: sha256} of the package, after checking it holds exactly the files `listed`, unchanged."""
    if not isinstance(listed, dict) or not listed:
        raise ExportError(f"{MANIFEST_NAME}: {field} does not list the package's files; "
                          "re-export with this version of elm-export")
    expected = {}
    for relative, digest in listed.items():  # untrusted paths: each must stay inside the package
        path = inside(package, relative)
        if not path.is_file():
            raise ExportError(f"{path}: listed in export.json but missing from the package; {CHANGED}")
        expected[path] = digest
    for path in folder_files(package):
        if path.name in FINDER_METADATA:
            continue  # macOS Finder writes these when a user opens the package's contents: not part of it
        if path.resolve() not in expected:
            raise ExportError(f"{path}: in the package but not listed in export.json; {CHANGED}")
    hashes = {}
    for path, digest in expected.items():
        hashes[path] = sha256_file(path)
        if hashes[path] != digest:
            raise ExportError(f"{path}: sha256 does not match export.json; {CHANGED}")
    return hashes


@dataclass
class Declared:
    """What one saved package declares: its functions' inputs and outputs, and its states."""

    owner: str  # "the package", or the package's name in a split export
    functions: dict
    states: list

    def feature(self, function: str, kind: str, name: str) -> dict:
        """The input or output (`kind`: inputs, outputs) `name` of `function`."""
        if function not in self.functions:
            raise ExportError(f"{MANIFEST_NAME}: {self.owner} has no {function} function (it has "
                              f"{', '.join(self.functions) or 'none'}); {NOT_THIS}")
        for entry in self.functions[function][kind]:
            if entry["name"] == name:
                return entry
        raise ExportError(f"{MANIFEST_NAME}: {self.owner}'s {function} function has no {kind[:-1]} {name}; "
                          f"{NOT_THIS}")


def check_manifest(folder: Path, manifest: dict) -> None:
    """Every field export.json states about the package(s) is what the saved package(s) declare: each function's
    inputs and outputs, the states, context_length, prefill_length, the vocabulary and the KV-cache shape;
    for each format the folder holds."""
    for backend in formats_of(manifest):
        check_models(folder, manifest, backend)


def check_models(folder: Path, manifest: dict, backend: str) -> None:
    chunks, field = chunks_of(manifest, backend)
    reader = coreai_signatures if backend == "coreai" else read_signatures
    paths = [inside(folder, chunk.get("package") or "") for chunk in chunks]
    declared = [Declared("the package" if len(chunks) == 1 else path.name, *reader(path)) for path in paths]
    target = target_of(manifest)
    functions = body_functions(manifest)
    for index, (chunk, package) in enumerate(zip(chunks, declared)):
        check_roles(chunk, package, index, len(chunks), target, functions)
    check_context(manifest, declared, target)
    check_prefill(manifest, chunks, declared, target)
    check_vocabulary(manifest, declared[-1], target)
    for index, (chunk, package) in enumerate(zip(chunks, declared)):
        same(f"{field}[{index}].functions", chunk.get("functions", MISSING), package.functions, package.owner)
        same(f"{field}[{index}].states", chunk.get("states", MISSING), package.states, package.owner)
        check_cache_shape(f"{field}[{index}].kv_cache", chunk.get("kv_cache"), package)
    check_adapter_functions(manifest, declared)
    if backend == "coreml":
        check_top_level(manifest, declared)


def check_adapter_functions(manifest: dict, declared: list[Declared]) -> None:
    """Each adapter's functions (export.json `adapters`) are in every package the base functions are in, and each
    takes and gives exactly what the base function it stands for does: an app calls one instead of the other."""
    for name, entry in (manifest.get("adapters") or {}).items():
        mapping = entry.get("functions") if isinstance(entry, dict) else None
        if not isinstance(mapping, dict) or not mapping:
            raise ExportError(f"{MANIFEST_NAME}: adapters.{name}.functions is {show(mapping)}, not a map of base "
                              f"function to the adapter's; {NOT_THIS}")
        for package in declared:
            for base, adapted in mapping.items():
                if base not in package.functions:
                    continue  # the ane embed functions live in the first package only
                if package.functions.get(adapted) is None:
                    raise ExportError(f"{MANIFEST_NAME}: adapter {name}'s {adapted} is not in {package.owner} (it "
                                      f"has {', '.join(package.functions)}); {NOT_THIS}")
                if canonical(package.functions[adapted]) != canonical(package.functions[base]):
                    raise ExportError(f"{MANIFEST_NAME}: {package.owner}'s {adapted} does not take and give what "
                                      f"{base} does; {NOT_THIS}")


def check_roles(chunk: dict, package: Declared, index: int, count: int, target: str,
                functions: tuple[str, ...]) -> None:
    """The first chunk takes input_ids (ane: its embed functions do, and every body takes hidden_in) and the last
    gives logits (ane: from decode only), hidden states between."""
    first, last = index == 0, index == count - 1
    ane = target == ANE
    takes = (INPUT_IDS, "the first chunk takes") if first and not ane else (
        HIDDEN_IN, "the Neural Engine graph's body takes" if ane else "chunks after the first take")
    roles = {"input": takes,
             "output": (LOGITS, "the last chunk gives") if last else (HIDDEN_OUT, "chunks before the last give")}
    for role, (name, rule) in roles.items():
        if chunk.get(role, MISSING) != name:
            raise ExportError(f"{MANIFEST_NAME}: chunks[{index}].{role} is {show(chunk.get(role, MISSING))} but "
                              f"{rule} {name}; {NOT_THIS}")
        for function in functions:
            package.feature(function, f"{role}s", output_of(chunk, function, target) if role == "output" else name)
    embeds = EMBED_FUNCTIONS + ((EMBED_VERIFY,) if VERIFY in functions else ())
    for function in embeds if ane and first else ():
        package.feature(function, "inputs", INPUT_IDS)
        package.feature(function, "outputs", HIDDEN_OUT)


def output_of(chunk: dict, function: str, target: str) -> str:
    """What a body function gives: the chunk's output, but hidden_out from the ane target's prefill (no logits)."""
    return chunk["output"] if function in logit_functions(target) else HIDDEN_OUT


def check_context(manifest: dict, declared: list[Declared], target: str) -> None:
    """context_length is the sequence axis of every state [1, heads, context, head_dim] (the ane target's
    value_cache: [1, heads, head_dim, context]); state_names their names."""
    claimed = manifest.get("context_length", MISSING)
    for package in declared:
        names = [state["name"] for state in package.states]
        if manifest.get("state_names", MISSING) != names:
            raise ExportError(f"{MANIFEST_NAME}: state_names is {show(manifest.get('state_names', MISSING))} but "
                              f"{package.owner} declares the states {show(names)}; {NOT_THIS}")
        for state in package.states:
            shape = state["shape"]
            if len(shape) != 4:
                raise ExportError(f"{MANIFEST_NAME}: {package.owner}'s {state['name']} is {shape}, not "
                                  f"[1, heads, context, head_dim]; {NOT_THIS}")
            positions = shape[3] if target == ANE and state["name"] == "value_cache" else shape[2]
            if not (is_int(claimed) and claimed == positions):
                raise ExportError(f"{MANIFEST_NAME}: context_length is {show(claimed)} but {package.owner}'s "
                                  f"{state['name']} holds {positions} positions; {NOT_THIS}")


def check_prefill(manifest: dict, chunks: list[dict], declared: list[Declared], target: str) -> None:
    """prefill_length is the prefill function's T (tokens per call), decode's is 1, in every chunk, in and out."""
    claimed = manifest.get("prefill_length", MISSING)
    verify_length = verify_length_of(manifest)
    for chunk, package in zip(chunks, declared):
        for function in body_functions(manifest):
            taken = package.feature(function, "inputs", chunk["input"])
            given = package.feature(function, "outputs", output_of(chunk, function, target))
            tokens = taken["shape"][1] if len(taken["shape"]) >= 2 else None
            if function == "prefill" and not (is_int(claimed) and claimed == tokens):
                raise ExportError(f"{MANIFEST_NAME}: prefill_length is {show(claimed)} but {package.owner}'s prefill "
                                  f"takes {tokens} tokens per call ({taken['name']} {taken['shape']}); {NOT_THIS}")
            if function == "verify" and tokens != verify_length:
                raise ExportError(f"{MANIFEST_NAME}: verify_length is {verify_length} but {package.owner}'s verify "
                                  f"takes {tokens} tokens per call ({taken['name']} {taken['shape']}); {NOT_THIS}")
            if function == "decode" and tokens != 1:
                raise ExportError(f"{MANIFEST_NAME}: {package.owner}'s decode takes {tokens} tokens per call "
                                  f"({taken['name']} {taken['shape']}), not 1; {NOT_THIS}")
            if given["shape"][1:2] != [tokens]:
                raise ExportError(f"{MANIFEST_NAME}: {package.owner}'s {function} gives {given['name']} "
                                  f"{given['shape']} for {tokens} tokens; {NOT_THIS}")


def check_vocabulary(manifest: dict, last: Declared, target: str) -> None:
    """vocab_size fits the logits [1, T, pieces, piece_size] (only the last piece padded), as logits_layout says."""
    shapes = [last.feature(function, "outputs", LOGITS)["shape"] for function in logit_functions(target)
              if function in body_functions(manifest)]
    if any(len(shape) != 4 or shape[2:] != shapes[0][2:] for shape in shapes):
        raise ExportError(f"{MANIFEST_NAME}: {last.owner}'s logits are {' and '.join(map(str, shapes))}, not "
                          f"[1, T, pieces, piece_size] in every function; {NOT_THIS}")
    shape = shapes[0]
    pieces, piece_size = shape[2], shape[3]
    vocab = manifest.get("vocab_size", MISSING)
    low, high = (pieces - 1) * piece_size + 1, pieces * piece_size
    if not (is_int(vocab) and low <= vocab <= high):
        raise ExportError(f"{MANIFEST_NAME}: vocab_size is {show(vocab)} but {last.owner}'s logits {shape} hold "
                          f"{pieces} × {piece_size} entries (a vocabulary of {low} to {high}); {NOT_THIS}")
    model = manifest.get("model")
    if isinstance(model, dict) and model.get("vocab_size", MISSING) != vocab:
        raise ExportError(f"{MANIFEST_NAME}: vocab_size is {vocab} but model.vocab_size is "
                          f"{show(model.get('vocab_size', MISSING))}; {NOT_THIS}")
    same("logits_layout", manifest.get("logits_layout", MISSING), {"pieces": pieces, "piece_size": piece_size},
         f"{last.owner}'s logits {shape}")
    for key in ("bos_token_id", "eos_token_id"):
        token = manifest.get(key, MISSING)
        if not (is_int(token) and 0 <= token < vocab):
            raise ExportError(f"{MANIFEST_NAME}: {key} is {show(token)}, outside the vocabulary of {vocab} tokens; "
                              f"{NOT_THIS}")


def check_cache_shape(field: str, kv_cache, package: Declared) -> None:
    for state in package.states:
        key = "value_shape" if state["name"] == "value_cache" and "value_shape" in (kv_cache or {}) else "shape"
        shape = kv_cache.get(key, MISSING) if isinstance(kv_cache, dict) else MISSING
        if canonical(shape) != canonical(state["shape"]):
            raise ExportError(f"{MANIFEST_NAME}: {field}.{key} is {show(shape)} but {package.owner}'s "
                              f"{state['name']} is {state['shape']}; {NOT_THIS}")


def check_top_level(manifest: dict, declared: list[Declared]) -> None:
    """One package: the top level describes it as its chunk does. Several: each chunk describes its own."""
    chunks = manifest["chunks"]
    if len(chunks) > 1:
        for key in ("package", "functions", "states", "kv_cache", "weights_sha256"):
            if manifest.get(key) is not None:
                raise ExportError(f"{MANIFEST_NAME}: {key} describes one package but the export is split into "
                                  f"{len(chunks)} (each entry of chunks describes its own); {NOT_THIS}")
        return
    package, chunk = declared[0], chunks[0]
    for key in ("package", "weights_sha256"):
        if manifest.get(key, MISSING) != chunk.get(key):
            raise ExportError(f"{MANIFEST_NAME}: {key} is {show(manifest.get(key, MISSING))} but chunks[0].{key} is "
                              f"{show(chunk.get(key))}; {NOT_THIS}")
    same("functions", manifest.get("functions", MISSING), package.functions, package.owner)
    same("states", manifest.get("states", MISSING), package.states, package.owner)
    check_cache_shape("kv_cache", manifest.get("kv_cache"), package)


def same(field: str, claimed, actual, owner: str) -> None:
    """Raise, naming the first place inside `field` where the manifest's `claimed` differs from `actual`."""
    if canonical(claimed) == canonical(actual):
        return
    if isinstance(claimed, dict) and isinstance(actual, dict):
        for key in [*actual, *(key for key in claimed if key not in actual)]:
            same(f"{field}.{key}", claimed.get(key, MISSING), actual.get(key, MISSING), owner)
    elif isinstance(claimed, list) and isinstance(actual, list) and len(claimed) == len(actual):
        for index, (mine, theirs) in enumerate(zip(claimed, actual)):
            label = theirs["name"] if isinstance(theirs, dict) and isinstance(theirs.get("name"), str) else index
            same(f"{field}[{label}]", mine, theirs, owner)
    declares = "has none" if actual is MISSING else f"declares {show(actual)}"
    raise ExportError(f"{MANIFEST_NAME}: {field} is {show(claimed)} but {owner} {declares}; {NOT_THIS}")


def canonical(value) -> str | None:
    """A strict comparison key: 1, 1.0 and true differ; dict key order does not matter."""
    return None if value is MISSING else json.dumps(value, sort_keys=True)


def show(value, limit: int = 100) -> str:
    text = "missing" if value is MISSING else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
