"""export.json: the one place that names, writes and reads an export's manifest."""

from __future__ import annotations

import json
from pathlib import Path

from exporter.errors import ExportError
from exporter.files import read_json_object

MANIFEST_NAME = "export.json"
MANIFEST_FORMAT = "elm-export/1"


def write_manifest(folder: Path, manifest: dict) -> None:
    (Path(folder) / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


def read_manifest(folder: Path) -> dict:
    """The manifest of an export folder, checked to be this format with its packages listed: Core ML's under
    `chunks`, Core AI's under `coreai.chunks` (a Core AI-only export has no Core ML chunks)."""
    path = Path(folder) / MANIFEST_NAME
    manifest = read_json_object(path, "point at a folder written by elm-export (it holds export.json)",
                                "re-export the model")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ExportError(f"{path}: not an {MANIFEST_FORMAT} manifest; re-export with this version of elm-export")
    coreml_chunks = manifest.get("chunks")
    coreai = manifest.get("coreai")
    coreai_chunks = coreai.get("chunks") if isinstance(coreai, dict) else None
    for field, chunks in (("chunks", coreml_chunks), ("coreai.chunks", coreai_chunks)):
        if chunks in (None, []):
            continue  # a format the folder does not hold
        if not isinstance(chunks, list) or not all(isinstance(c, dict) for c in chunks):
            raise ExportError(f"{path}: {field!r} does not list the packages; re-export with this version of "
                              "elm-export")
    if not coreml_chunks and not coreai_chunks:
        raise ExportError(f"{path}: 'chunks' does not list the packages; re-export with this version of elm-export")
    return manifest


def inside(folder: Path, relative: str) -> Path:
    """`folder / relative`, refusing paths that would escape `folder` (manifests are untrusted input)."""
    folder = Path(folder).resolve()
    if not isinstance(relative, str) or not relative or Path(relative).is_absolute():
        raise ExportError(f"export.json names {relative!r}, which is outside {folder}; the manifest is not trustworthy")
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder):
        raise ExportError(f"export.json names {relative!r}, which is outside {folder}; the manifest is not trustworthy")
    return path
