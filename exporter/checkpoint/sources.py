"""Where a checkpoint comes from: a local folder, the embedded model, the Hugging Face Hub, or a seed.

Downloads go through huggingface_hub, so HF_HOME, HF_HUB_OFFLINE, HF_TOKEN and the shared
cache behave as users expect. Only config.json and safetensors are fetched from a model
repo: the remote Python code that OpenELM repos carry is never downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from huggingface_hub.errors import (
    GatedRepoError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from exporter.errors import ExportError

MODEL_FILES = ["config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json"]
EMBEDDED_SIZE = "tiny"  # the small OpenELM trained here and shipped in the package: works offline
ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
EMBEDDED_DIR = ASSETS_DIR / "openelm-tiny"
DRAFT_SIZE = "tiny-draft"  # a smaller model trained the same way, with the same tokenizer: tiny's speculative drafter
EMBEDDED_MODELS = {EMBEDDED_SIZE: EMBEDDED_DIR, DRAFT_SIZE: ASSETS_DIR / "openelm-tiny-draft"}
# A LoRA adapter for the embedded model (PEFT), trained here on The Devil's Dictionary (make tiny-adapter)
EMBEDDED_ADAPTER = ASSETS_DIR / "openelm-tiny-adapters" / "devil"


@dataclass
class Source:
    """Where a checkpoint came from, as recorded in export.json (`to_dict`) and read back (`from_dict`)."""

    folder: Path | None
    hub_id: str | None = None
    revision: str | None = None  # the commit the Hub resolved, when from the Hub
    random_seed: int | None = None  # seeded random weights at the shapes of `size` (benchmarks)
    size: str | None = None
    embedded: bool = False  # the model shipped in exporter/assets

    def to_dict(self) -> dict:
        if self.embedded:
            return {"embedded": self.folder.name, "folder": str(self.folder.resolve())}
        if self.random_seed is not None:
            return {"random_weights": {"size": self.size, "seed": self.random_seed, "shapes_of": self.hub_id}}
        if self.hub_id:
            return {"hub_id": self.hub_id, "revision": self.revision}
        return {"folder": str(self.folder.resolve())}

    @classmethod
    def from_dict(cls, record: dict) -> "Source":
        """The source export.json records; a Hub source resolves to its (cached) snapshot folder."""
        if record.get("random_weights"):
            random = record["random_weights"]
            return cls(folder=None, hub_id=random.get("shapes_of"), random_seed=int(random["seed"]),
                       size=random["size"])
        if record.get("hub_id"):
            return hub_checkpoint(record["hub_id"], record.get("revision"))
        if record.get("folder"):
            folder = Path(record["folder"])
            if not folder.is_dir():
                raise ExportError(f"the checkpoint it was exported from ({folder}) is gone; pass --model-dir")
            return cls(folder=folder, embedded=bool(record.get("embedded")))
        raise ExportError("export.json does not say where the checkpoint came from; pass --model-dir")


def hub_failure(repo_id: str, what: str, error: Exception, local_hint: str) -> ExportError:
    """A Hub error as one line that says what to do."""
    if isinstance(error, GatedRepoError):
        return ExportError(
            f"{repo_id} is gated: accept its licence on huggingface.co, then run `hf auth login` "
            f"(or set HF_TOKEN), or {local_hint}"
        )
    if isinstance(error, RevisionNotFoundError):
        return ExportError(f"{repo_id} has no revision you asked for; check --revision, or {local_hint}")
    if isinstance(error, RepositoryNotFoundError):
        return ExportError(f"{repo_id} was not found on the Hub (or needs a login); check the name, or {local_hint}")
    if isinstance(error, LocalEntryNotFoundError):
        return ExportError(
            f"cannot get the {what} {repo_id}: the Hub is unreachable or HF_HUB_OFFLINE is set, and it is "
            f"not in the local cache; download it once with network, or {local_hint}"
        )
    return ExportError(f"cannot get the {what} {repo_id} ({type(error).__name__}: {error}); {local_hint}")


def local_checkpoint(model_dir: str | Path) -> Source:
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise ExportError(f"--model-dir {folder}: no such folder; pass a folder holding config.json and safetensors")
    return Source(folder=folder)


def embedded_checkpoint(size: str = EMBEDDED_SIZE) -> Source:
    return Source(folder=EMBEDDED_MODELS[size], embedded=True)


def hub_checkpoint(repo_id: str, revision: str | None = None) -> Source:
    """Download (or find in the local cache) config.json and safetensors of a Hub model repo."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=MODEL_FILES))
    except (GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError, LocalEntryNotFoundError,
            HFValidationError, OSError) as e:
        raise hub_failure(repo_id, "checkpoint", e, "pass --model-dir with a downloaded copy") from None
    return Source(folder=folder, hub_id=repo_id, revision=folder.name)
