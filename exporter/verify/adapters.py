"""elm-verify for an export's LoRA adapters: each adapter's functions against the reference with that adapter
applied (exporter.model.lora: PEFT's semantics, dropout off), and a merged adapter's base functions against the
reference running it unmerged.

The adapters are read again from where export.json says they came from, checked by sha256 (or from
`--adapter NAME=DIR`, e.g. on another machine), so the check is against the adapter itself, not the package.
"""

from __future__ import annotations

from pathlib import Path

from exporter.checkpoint.adapters import Adapter, read_adapter
from exporter.errors import ExportError
from exporter.model.lora import check_adapter, with_adapter
from exporter.model.streamed import is_streamed


def adapter_entries(manifest: dict) -> dict[str, dict]:
    """{name: export.json entry} of the unmerged adapters, and the merged one under its name."""
    entries = dict(manifest.get("adapters") or {})
    merged = manifest.get("merged_adapter")
    if merged:
        entries[merged["name"]] = merged
    return entries


def load_adapter(name: str, entry: dict, folders: dict[str, Path], config) -> Adapter:
    """The adapter as exported: from `folders` (--adapter NAME=DIR) or its recorded source, checked by sha256."""
    source = entry.get("source") or {}
    folder = folders.get(name) or Path(source.get("path", ""))
    if not folder.is_dir():
        raise ExportError(f"adapter {name}: its source {folder} is not here; pass elm-verify --adapter {name}=DIR "
                          "with the adapter folder it was exported from")
    adapter = read_adapter(name, folder)
    if source.get("sha256") and adapter.sha256 != source["sha256"]:
        raise ExportError(f"adapter {name}: {folder} is not the adapter this package was exported from (sha256 "
                          f"{adapter.sha256[:12]}…, export.json says {source['sha256'][:12]}…); pass --adapter "
                          f"{name}=DIR with the original")
    check_adapter(adapter, config)
    return adapter


def with_merged_adapter(model, manifest: dict, folders: dict[str, Path]):
    """The reference a merged export is checked against: the base running the merged adapter unmerged."""
    merged = manifest.get("merged_adapter")
    if not merged:
        return model
    adapter = load_adapter(merged["name"], merged, folders, model.config)
    if adapter.dora and is_streamed(model):
        raise ExportError(f"adapter {adapter.name}: a DoRA reference needs the whole base model in memory; this "
                          "model is verified streamed (too big to hold)")
    return with_adapter(model, adapter)


def verify_adapters(run_one, manifest: dict, config, folders: dict[str, Path]) -> dict:
    """{adapter: ParityReport}: run_one(adapter) verifies that adapter's functions."""
    return {name: run_one(load_adapter(name, entry, folders, config))
            for name, entry in (manifest.get("adapters") or {}).items()}
