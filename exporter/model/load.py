"""Build the reference model from a tensor source: a checkpoint folder, seeded weights, any TensorSource.

The loader depends on the model, never the reverse. Weights are checked by name, shape and
finiteness before the model is built, and are assigned into a model created on the meta device,
so loading never holds two copies of the weights.
"""

from __future__ import annotations

from pathlib import Path

import torch

from exporter.checkpoint.sources import (
    EMBEDDED_MODELS,
    Source,
    embedded_checkpoint,
    hub_checkpoint,
    local_checkpoint,
)
from exporter.checkpoint.tensors import (
    CONFIG_NAME,
    RandomTensors,
    SafetensorsTensors,
    TensorSource,
    all_tensors,
    save_tensors,
)
from exporter.errors import ExportError, UsageError
from exporter.model.config import OpenELMConfig
from exporter.model.openelm import OpenELM
from exporter.model.presets import get_preset


def expected_shapes(config: OpenELMConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor name and shape of a checkpoint for `config`, built without allocating weights."""
    with torch.device("meta"):
        model = OpenELM(config)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def open_checkpoint(folder: Path) -> tuple[OpenELMConfig, SafetensorsTensors]:
    """The folder's config and a reader over its tensors (checked, nothing loaded yet)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"{folder}: no such checkpoint folder; pass --model-dir a folder with config.json")
    config = OpenELMConfig.from_file(folder / CONFIG_NAME)
    return config, SafetensorsTensors(folder, expected_shapes(config))


def resolve_source(size: str | None = None, instruct: bool = False, model_dir: str | Path | None = None,
                   revision: str | None = None, random_seed: int | None = None) -> Source:
    """The checkpoint for --size (the embedded model, or a Hub repo through its cache), --model-dir, or a seed."""
    if random_seed is not None:
        if size is None or model_dir is not None or revision is not None:
            raise UsageError("--random-weights needs --size (the shapes to use) and no --model-dir or --revision")
        preset = get_preset(size)
        return Source(folder=None, hub_id=preset.hub_id(instruct), random_seed=random_seed, size=preset.name)
    if model_dir is not None:
        if size is not None or revision is not None or instruct:
            raise UsageError("--model-dir cannot be combined with --size, --instruct or --revision; give one source")
        return local_checkpoint(model_dir)
    if size is None:
        raise UsageError("say which model to export: --size (tiny, 270m, 450m, 1_1b, 3b) or --model-dir PATH")
    if size.strip().lower() in EMBEDDED_MODELS:
        if instruct or revision is not None:
            raise UsageError(f"--size {size} is an embedded model: it has no --instruct variant or --revision")
        return embedded_checkpoint(size.strip().lower())
    return hub_checkpoint(get_preset(size).hub_id(instruct), revision)


def source_config(source: Source) -> OpenELMConfig:
    """The architecture of a source: its size's preset for seeded weights, else its config.json."""
    if source.random_seed is not None:
        return get_preset(source.size).config()
    return OpenELMConfig.from_file(source.folder / CONFIG_NAME)


def open_source(source: Source, config: OpenELMConfig | None = None) -> tuple[OpenELMConfig, TensorSource]:
    """(config, tensors) of a source: its safetensors read one at a time, or seeded at its size's shapes.
    `config`: the source's, when already read (source_config)."""
    if config is None and source.random_seed is None:
        return open_checkpoint(source.folder)
    config = config or source_config(source)
    if source.random_seed is not None:
        return config, RandomTensors(expected_shapes(config), source.random_seed)
    return config, SafetensorsTensors(source.folder, expected_shapes(config))


def build_model(config: OpenELMConfig, state: dict[str, torch.Tensor]) -> OpenELM:
    """The reference model holding `state`'s tensors themselves (no copy: built on the meta device)."""
    with torch.device("meta"):
        model = OpenELM(config)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def whole_model(config: OpenELMConfig, tensors: TensorSource, dtype: torch.dtype = torch.float32) -> OpenELM:
    """The reference model holding all of a source's tensors in memory (exporter.model.streamed streams them)."""
    return build_model(config, all_tensors(tensors, dtype))


def load_checkpoint(folder: Path, dtype: torch.dtype = torch.float32) -> OpenELM:
    """The reference model with a Hub-format folder's weights, in eval mode. Never runs code or unpickles."""
    config, reader = open_checkpoint(folder)
    return whole_model(config, reader, dtype)


def random_state_dict(config: OpenELMConfig, seed: int = 0, dtype: torch.dtype = torch.float32):
    """Seeded weights at the real shapes (init std 0.02, norms at 1), for tests and benchmarks."""
    return all_tensors(RandomTensors(expected_shapes(config), seed), dtype)


def random_model(config: OpenELMConfig, seed: int = 0, dtype: torch.dtype = torch.float32) -> OpenELM:
    """A model with seeded weights at the real shapes: benchmarks of sizes whose checkpoints are out of reach."""
    return build_model(config, random_state_dict(config, seed, dtype))


def save_checkpoint(folder: Path, config: OpenELMConfig, state: dict[str, torch.Tensor], max_shard_bytes=None):
    """Write a Hub-format folder (config.json + safetensors, sharded when over `max_shard_bytes`)."""
    save_tensors(folder, config.to_hub_dict(), state, max_shard_bytes)
