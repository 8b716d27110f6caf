"""Checking an export folder against its export.json before anything runs: files, hashes, signatures."""

from __future__ import annotations

from pathlib import Path

from exporter.errors import ExportError
from exporter.files import sha256_file
from exporter.manifest.document import inside


def check_integrity(folder: Path, manifest: dict) -> list[Path]:
    """The package paths, after checking their weights are those the manifest describes (before running anything)."""
    packages = []
    for chunk in manifest["chunks"]:
        package = inside(folder, chunk.get("package") or "")
        if not package.is_dir():
            raise ExportError(f"{package}: the package named in export.json is missing; re-export the model")
        weights = inside(package, chunk.get("weights_file", ""))
        if not weights.is_file():
            raise ExportError(f"{weights}: weight file missing from the package; re-export the model")
        if sha256_file(weights) != chunk.get("weights_sha256"):
            raise ExportError(
                f"{weights}: sha256 does not match export.json; the package changed after export (re-export it)"
            )
        packages.append(package)
    return packages
