"""Reading and fingerprinting files: JSON objects with one-line errors, sha256, folder sizes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from exporter.errors import ExportError


def read_json_object(path: Path, if_missing: str, if_invalid: str) -> dict:
    """A JSON object from `path`, or an ExportError saying what is wrong and (the hints) how to fix it."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: not found; {if_missing}")
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(f"{path}: cannot be read as JSON ({e}); {if_invalid}") from None
    if not isinstance(value, dict):
        raise ExportError(f"{path}: expected a JSON object; {if_invalid}")
    return value


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_files(path: Path) -> list[Path]:
    """Every file under `path`, in a stable order."""
    return sorted(f for f in Path(path).rglob("*") if f.is_file())


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in folder_files(path))
