"""Core AI models on disk: the `.aimodel` folder of each chunk, written once and read back for checks."""

from __future__ import annotations

import json
import re
from pathlib import Path

from exporter.coreai.runtime import require_coreai
from exporter.errors import ExportError

MODEL_SUFFIX = ".aimodel"
PROGRAM_IN_MODEL = "main.mlirb"  # the program bytecode (weights included); metadata.json and main.hash beside it
FIXED_CREATION_DATE = "20260101T000000Z"  # the same export gives the same bytes (Core AI stamps the save time)


def model_name(name: str, count: int, index: int) -> str:
    """The .aimodel folder of chunk `index` of `count` (one chunk: just the model's name)."""
    return f"{name}{MODEL_SUFFIX}" if count == 1 else f"{name}-{index + 1}of{count}{MODEL_SUFFIX}"


def save_model(program, destination: Path, strip_decode: bool = True) -> None:
    """Write a Core AI program as an .aimodel folder, its creation stamp fixed so equal exports are equal bytes.
    strip_decode: drop decode's locations (the gpu target); the ane target's decode holds weights prefill lacks,
    which verification finds by their locations. verify's are always dropped: it holds decode's weights."""
    for entrypoint in ("decode", "verify") if strip_decode else ("verify",):
        strip_locations(program, entrypoint)
    program.save_asset(Path(destination))
    metadata = Path(destination) / "metadata.json"
    document = json.loads(metadata.read_text())
    if "creationDate" in document:
        document["creationDate"] = FIXED_CREATION_DATE
        metadata.write_text(json.dumps(document, indent=2, sort_keys=True))


def strip_locations(program, entrypoint: str) -> None:
    """Drop one entrypoint's debug locations (source file, line, torch op of every op): decode's repeat prefill's,
    which verification reads weights back by, and cost ~110 KB (2% of the embedded model) in the file."""
    from coreai._compiler.passmanager import PassManager

    graph = program._get_graph(entrypoint)
    if graph is not None:
        with program._module._mlir_module.context:
            PassManager.parse("any(strip-debuginfo)").run(graph.operation)


def load_asset(path: Path):
    require_coreai("coreai.authoring")
    from coreai.authoring import AIModelAsset

    path = Path(path)
    if not path.is_dir():
        raise ExportError(f"no Core AI model at {path}")
    try:
        return AIModelAsset.load(str(path))
    except RuntimeError as e:
        raise ExportError(f"{path}: not a readable Core AI model ({str(e).splitlines()[0]}); re-export it") from None


def load_program(path: Path):
    """The in-memory program of a saved .aimodel (both functions), read without running it."""
    try:
        return load_asset(path).program
    except RuntimeError as e:
        raise ExportError(f"{path}: its program cannot be read ({str(e).splitlines()[0]}); re-export it") from None


_ARRAY = re.compile(r"NDArray \((\w+), ([^)]*)\)")


def _feature(name: str, description: str) -> dict:
    """('logits', 'NDArray (Float16, 1 × 1 × 1 × 4096)') as export.json writes a tensor."""
    match = _ARRAY.fullmatch(description.strip())
    if match is None:
        raise ExportError(f"{name}: unexpected Core AI tensor description {description!r}")
    shape = [int(d) for d in match[2].replace("×", " ").split()]
    return {"name": name, "shape": shape, "dtype": match[1].lower()}


def read_signatures(path: Path) -> tuple[dict, list]:
    """Each function's inputs and outputs, and the states, as the saved model declares them (the same form
    as exporter.coreml.package.read_signatures)."""
    try:
        summary = load_asset(path).summary(include_statistics=False)
    except RuntimeError as e:
        raise ExportError(f"{path}: its program cannot be read ({str(e).splitlines()[0]}); re-export it") from None
    if summary is None:
        raise ExportError(f"{path}: holds no program; re-export it")
    functions, states = {}, {}
    for function in summary.function_names:
        functions[function] = {
            "inputs": [_feature(*item) for item in summary.function_inputs(function)],
            "outputs": [_feature(*item) for item in summary.function_outputs(function)],
        }
        for item in summary.function_states(function):
            states.setdefault(item[0], _feature(*item))
    return functions, list(states.values())
