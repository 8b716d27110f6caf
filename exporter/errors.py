"""Errors a user can act on. The CLI prints them as one line, with no traceback unless --debug."""

import json
from pathlib import Path


class ExportError(Exception):
    """Something is wrong with the input, the checkpoint or the machine: exit code 1."""

    exit_code = 1


class UsageError(ExportError):
    """The command line itself is wrong (bad option or combination): exit code 2."""

    exit_code = 2


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
