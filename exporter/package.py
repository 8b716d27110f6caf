"""Write the output folder: one multifunction .mlpackage, tokenizer files and export.json, atomically.

The folder is built in a hidden staging folder beside the target and renamed into place at
the very end, so a failed, interrupted or killed export never leaves a half-written result.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from exporter.errors import ExportError, read_json_object

MANIFEST_NAME = "export.json"
MANIFEST_FORMAT = "elm-export/1"
WEIGHTS_IN_PACKAGE = Path("Data/com.apple.CoreML/weights/weight.bin")


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_functions(programs: dict, destination: Path, default_function: str) -> None:
    """Write in-memory MIL programs as one multifunction package, storing identical weights once.

    The same steps as coremltools' `save_multifunction`, minus writing and re-reading a package
    per function: the programs are merged, their identical consts share one blob, and the merged
    program is serialized once.
    """
    import coremltools as ct
    from coremltools.converters.mil.mil import Program
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY

    from exporter.lean_convert import identity_aware_deduplication

    merged = Program()
    for name, program in programs.items():
        merged.add_function(name, program.functions["main"])
    merged.default_function_name = default_function
    merged.export_as_multifunction = True
    with identity_aware_deduplication():  # same answer; shared weight arrays are not compared value by value
        PASS_REGISTRY["common::const_deduplication"]._deduplicate_const_across_functions(merged)
    model = ct.convert(merged, convert_to="mlprogram", pass_pipeline=ct.PassPipeline.EMPTY,
                       minimum_deployment_target=ct.target.iOS18, compute_units=ct.ComputeUnit.CPU_AND_NE,
                       skip_model_load=True)
    model.save(str(destination))


def _feature(feature) -> dict:
    from coremltools.proto.FeatureTypes_pb2 import ArrayFeatureType

    kind = feature.type.WhichOneof("Type")
    array = feature.type.stateType.arrayType if kind == "stateType" else feature.type.multiArrayType
    return {
        "name": feature.name,
        "shape": [int(d) for d in array.shape],
        "dtype": ArrayFeatureType.ArrayDataType.Name(array.dataType).lower(),
    }


def read_signatures(mlpackage: Path) -> tuple[dict, list]:
    """Each function's inputs and outputs, and the states, as the saved package declares them."""
    import coremltools as ct

    spec = ct.models.MLModel(str(mlpackage), skip_model_load=True).get_spec()
    functions, states = {}, {}
    for function in spec.description.functions:
        functions[function.name] = {
            "inputs": [_feature(f) for f in function.input],
            "outputs": [_feature(f) for f in function.output],
        }
        for state in function.state:
            states.setdefault(state.name, _feature(state))
    return functions, list(states.values())


def write_manifest(folder: Path, manifest: dict) -> None:
    (Path(folder) / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST_NAME
    manifest = read_json_object(path, "point at a folder written by elm-export (it holds export.json)",
                                "re-export the model")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ExportError(f"{path}: not an {MANIFEST_FORMAT} manifest; re-export with this version of elm-export")
    return manifest


def inside(folder: Path, relative: str) -> Path:
    """`folder / relative`, refusing paths that would escape `folder` (manifests are untrusted input)."""
    folder = Path(folder).resolve()
    path = (folder / relative).resolve()
    if not isinstance(relative, str) or Path(relative).is_absolute() or not path.is_relative_to(folder):
        raise ExportError(f"export.json names {relative!r}, which is outside {folder}; the manifest is not trustworthy")
    return path


def refuse_existing(target: Path, force: bool) -> None:
    if Path(target).exists() and not force:
        raise ExportError(f"{target} already exists; pass --force to overwrite it or choose another --output")


@contextmanager
def atomic_output(target: Path, force: bool):
    """Yield a staging folder; on success it replaces `target`, on any failure it is removed."""
    target = Path(target).absolute()
    refuse_existing(target, force)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=parent))
    except OSError as e:
        raise ExportError(f"cannot write to {parent} ({e.strerror or e}); choose a writable --output") from None
    try:
        yield staging
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=parent))
            os.replace(target, retired / target.name)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportError(
            f"writing {target} failed ({e.strerror or e}); nothing was written: free some space or choose "
            "another --output"
        ) from e
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
