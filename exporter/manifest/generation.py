"""export.json's `generation`: how to prompt the model and the sampling it was published with, with sources."""

from __future__ import annotations

from pathlib import Path

from exporter.checkpoint.chat import GENERATION_DEFAULTS


def special_token(tokenizer_dir: Path | None, token_id: int) -> str | None:
    """The text of a special token (BOS, EOS) in the exported tokenizer; None without one."""
    if tokenizer_dir is None:
        return None
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json")).id_to_token(token_id)


def generation_section(chat_template: str | None, template_source: str | None, tokenizer_dir: Path | None,
                       bos_token_id: int, eos_token_id: int) -> dict:
    """The chat template (None for base models), the generation defaults and where each comes from, the stops."""
    return {
        "chat_template": chat_template,
        "chat_template_source": template_source,
        "defaults": {name: value for name, (value, _) in GENERATION_DEFAULTS.items()},
        "sources": {name: source for name, (_, source) in GENERATION_DEFAULTS.items()},
        "stop_token_ids": [eos_token_id],
        "bos_token": special_token(tokenizer_dir, bos_token_id),
        "eos_token": special_token(tokenizer_dir, eos_token_id),
    }
