"""Core ML packages: write in-memory programs as one multifunction .mlpackage, and read one back."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from exporter.errors import ExportError

PACKAGE_SUFFIX = ".mlpackage"
WEIGHTS_IN_PACKAGE = Path("Data/com.apple.CoreML/weights/weight.bin")
PROGRAM_IN_PACKAGE = Path("Data/com.apple.CoreML/model.mlmodel")


def package_name(name: str, count: int, index: int) -> str:
    """The package file of chunk `index` of `count` (one chunk: just the model's name)."""
    return f"{name}{PACKAGE_SUFFIX}" if count == 1 else f"{name}-{index + 1}of{count}{PACKAGE_SUFFIX}"


def save_functions(programs: dict, destination: Path, default_function: str) -> None:
    """Write in-memory MIL programs as one multifunction package, storing identical weights once.

    The same steps as coremltools' `save_multifunction`, minus writing and re-reading a package
    per function: the programs are merged, their identical consts share one blob, and the merged
    program is serialized once.
    """
    import coremltools as ct
    from coremltools.converters.mil.mil import Program
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY

    from exporter.coreml.lean import identity_aware_deduplication

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
    make_reproducible(destination)


def make_reproducible(package: Path) -> None:
    """The same export gives the same bytes: coremltools' save orders the program's metadata map differently
    from one process to the next and names the package's items with random UUIDs. The program is
    re-serialized in protobuf's deterministic order, and each item named by a UUID derived from its path."""
    from coremltools.proto import Model_pb2

    spec_path = package / PROGRAM_IN_PACKAGE
    spec = Model_pb2.Model()
    spec.ParseFromString(spec_path.read_bytes())
    spec_path.write_bytes(spec.SerializeToString(deterministic=True))
    manifest_path = package / "Manifest.json"
    manifest = json.loads(manifest_path.read_text())
    renamed = {old: str(uuid.uuid5(uuid.NAMESPACE_URL, f"elm-export:{item['path']}"))
               for old, item in manifest["itemInfoEntries"].items()}
    manifest["itemInfoEntries"] = {renamed[old]: item for old, item in manifest["itemInfoEntries"].items()}
    manifest["rootModelIdentifier"] = renamed[manifest["rootModelIdentifier"]]
    manifest_path.write_text(json.dumps(manifest, indent=4, sort_keys=True))


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


def load_program(mlpackage_path):
    """The pymil program of a saved package (all functions), read without Core ML."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load

    path = Path(mlpackage_path)
    if not path.exists():
        raise ExportError(f"no Core ML package at {path}")
    model = ct.models.MLModel(str(path), skip_model_load=True)
    spec = model.get_spec()
    if spec.WhichOneof("Type") != "mlProgram":
        raise ExportError(f"{path} is not an ML program (found {spec.WhichOneof('Type')})")
    return load(spec, specification_version=spec.specificationVersion, file_weights_dir=model.weights_dir)
