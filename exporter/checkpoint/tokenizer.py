"""The tokenizer an export ships: a local folder or a Hub repo holding tokenizer.json, checked by `tokenizers`."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub.errors import (
    GatedRepoError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from exporter.checkpoint.sources import hub_failure
from exporter.errors import ExportError, UsageError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")  # fetched from the Hub
SHIPPED_FILES = ("tokenizer.json", "tokenizer_config.json")  # copied into an export
DEFAULT_TOKENIZER = "meta-llama/Llama-2-7b-hf"  # OpenELM's tokenizer; its repo is gated


def resolve_tokenizer(spec: str | Path, revision: str | None = None) -> Path:
    """A folder holding tokenizer.json: `spec` itself when it is a folder, else a Hub repo id."""
    from huggingface_hub import hf_hub_download

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
                raise hub_failure(spec, "tokenizer", e, hint) from None
        except Exception as e:  # noqa: BLE001 - any other Hub failure becomes the same one-line advice
            if name == "tokenizer.json":
                raise hub_failure(spec, "tokenizer", e, hint) from None
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


def ship_tokenizer(folder: Path, staging: Path, chat_template: str | None) -> list[str]:
    """Copy the tokenizer files into an export, tokenizer_config.json's chat template replaced by the model's own
    (None: removed: LLaMA-2's [INST] template, which its tokenizer carries, is wrong for OpenELM). The names copied."""
    import json
    import shutil

    copied = []
    for name in SHIPPED_FILES:
        source = Path(folder) / name
        if not source.is_file():
            continue
        if name == "tokenizer_config.json":
            config = json.loads(source.read_text(encoding="utf-8"))
            config.pop("chat_template", None)
            if chat_template is not None:
                config["chat_template"] = chat_template
            (staging / name).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        else:
            shutil.copyfile(source, staging / name)
        copied.append(name)
    return copied
