"""Shared fixtures: a small OpenELM config and a seeded checkpoint of it on disk; the `e2e` marker."""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # as the CLI does: coremltools' progress bars would flood stderr checks

import pytest  # noqa: E402
import torch  # noqa: E402

from exporter.model.load import random_state_dict, save_checkpoint  # noqa: E402
from tests.helpers import small_config  # noqa: E402


@pytest.fixture
def config():
    return small_config()


@pytest.fixture
def checkpoint_dir(tmp_path, config):
    """A Hub-layout folder with seeded float32 weights for `config`."""
    folder = tmp_path / "ckpt"
    save_checkpoint(folder, config, random_state_dict(config, seed=0))
    return folder


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: runs a whole export (slow); `pytest -m 'not e2e'` runs the unit tests alone")
