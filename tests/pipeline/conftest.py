"""Exports several test modules read: made once per session."""

import pytest

from exporter.checkpoint.sources import EMBEDDED_SIZE
from exporter.pipeline import ExportOptions, export


@pytest.fixture(scope="session")
def tiny_ane_export(tmp_path_factory):
    """The embedded model exported with the defaults (--target ane, mixed, a verify function), not verified."""
    folder = tmp_path_factory.mktemp("tiny-ane") / "export"
    export(ExportOptions(size=EMBEDDED_SIZE, output=folder, verify=False))
    return folder
