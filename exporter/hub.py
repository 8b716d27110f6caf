"""Where the checkpoint and the tokenizer come from: a local folder or the Hugging Face Hub.

Downloads go through huggingface_hub, so HF_HOME, HF_HUB_OFFLINE, HF_TOKEN and the shared
cache behave as users expect. Only config.json and safetensors are fetched from a model
repo: the remote Python code that OpenELM repos carry is never downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from exporter.errors import ExportError, UsageError
from exporter.presets import get_preset

MODEL_FILES = ["config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json"]
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
DEFAULT_TOKENIZER = "meta-llama/Llama-2-7b-hf"  # OpenELM's tokenizer; its repo is gated
EMBEDDED_SIZE = "tiny"  # the small OpenELM trained here and shipped in the package: works offline
EMBEDDED_DIR = Path(__file__).parent / "assets" / "openelm-tiny"


@dataclass
class Source:
    """Where a checkpoint came from, as recorded in export.json."""

    folder: Path | None
    hub_id: str | None = None
    revision: str | None = None  # the commit the Hub resolved, when from the Hub
    random_seed: int | None = None  # seeded random weights at the shapes of `size` (benchmarks)
    size: str | None = None
    embedded: bool = False  # the model shipped in exporter/assets

    def to_dict(self) -> dict:
        if self.embedded:
            return {"embedded": EMBEDDED_DIR.name, "folder": str(self.folder.resolve())}
        if self.random_seed is not None:
            return {"random_weights": {"size": self.size, "seed": self.random_seed, "shapes_of": self.hub_id}}
        if self.hub_id:
            return {"hub_id": self.hub_id, "revision": self.revision}
        return {"folder": str(self.folder.resolve())}


def _hub_failure(repo_id: str, what: str, error: Exception, local_hint: str) -> ExportError:
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


def resolve_checkpoint(
    size: str | None = None, instruct: bool = False, model_dir: str | Path | None = None, revision: str | None = None,
    random_seed: int | None = None,
) -> Source:
    """The local folder holding the checkpoint for --size (via the Hub cache) or --model-dir."""
    if random_seed is not None:
        if size is None or model_dir is not None or revision is not None:
            raise UsageError("--random-weights needs --size (the shapes to use) and no --model-dir or --revision")
        return Source(folder=None, hub_id=get_preset(size).hub_id(instruct), random_seed=random_seed,
                      size=get_preset(size).name)
    if model_dir is not None:
        if size is not None or revision is not None or instruct:
            raise UsageError("--model-dir cannot be combined with --size, --instruct or --revision; give one source")
        folder = Path(model_dir).expanduser()
        if not folder.is_dir():
            raise ExportError(f"--model-dir {folder}: no such folder; pass a folder holding config.json and safetensors")
        return Source(folder=folder)
    if size is None:
        raise UsageError("say which model to export: --size (tiny, 270m, 450m, 1_1b, 3b) or --model-dir PATH")
    if size.strip().lower() == EMBEDDED_SIZE:
        if instruct or revision is not None:
            raise UsageError("--size tiny is the embedded model: it has no --instruct variant or --revision")
        return Source(folder=EMBEDDED_DIR, embedded=True)
    return hub_checkpoint(get_preset(size).hub_id(instruct), revision)


def hub_checkpoint(repo_id: str, revision: str | None = None) -> Source:
    """Download (or find in the local cache) config.json and safetensors of a Hub model repo."""
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=MODEL_FILES))
    except (GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError, LocalEntryNotFoundError,
            HFValidationError, OSError) as e:
        raise _hub_failure(repo_id, "checkpoint", e, "pass --model-dir with a downloaded copy") from None
    return Source(folder=folder, hub_id=repo_id, revision=folder.name)


def resolve_tokenizer(spec: str | Path, revision: str | None = None) -> Path:
    """A folder holding tokenizer.json: `spec` itself when it is a folder, else a Hub repo id."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "tokenizer.json").is_file():
            raise ExportError(
                f"--tokenizer {path}: no tokenizer.json in that folder; pass a folder with a Hugging Face "
                "tokenizer.json (LLaMA-2's, for OpenELM)"
            )
        return path
    spec = str(spec)
    if spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        raise UsageError(f"--tokenizer {spec}: neither an existing folder nor a Hub repo id like {DEFAULT_TOKENIZER}")
    hint = "pass --tokenizer with a local folder holding tokenizer.json, or --no-tokenizer"
    folder = None
    for name in TOKENIZER_FILES:
        try:
            folder = Path(hf_hub_download(spec, name, revision=revision)).parent
        except (GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError, LocalEntryNotFoundError) as e:
            if name == "tokenizer.json":
                raise _hub_failure(spec, "tokenizer", e, hint) from None
        except Exception as e:  # noqa: BLE001 - any other Hub failure becomes the same one-line advice
            if name == "tokenizer.json":
                raise _hub_failure(spec, "tokenizer", e, hint) from None
    return folder


def check_tokenizer(folder: Path):
    """Load tokenizer.json with the `tokenizers` library; a corrupt file is a one-line error."""
    from tokenizers import Tokenizer

    path = Path(folder) / "tokenizer.json"
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # noqa: BLE001 - tokenizers raises plain Exception for every parse failure
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ExportError(f"{path}: not a valid tokenizer.json ({message}); re-download the tokenizer") from None
