"""Sample token ids: the built-in held-out English text when a tokenizer is at hand, seeded ids otherwise.

Used wherever the export or verification needs realistic tokens: the activation-range preflight,
calibration, elm-verify's default prompt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exporter.checkpoint.sources import EMBEDDED_DIR
from exporter.checkpoint.tokenizer import check_tokenizer

HELDOUT_TEXT = EMBEDDED_DIR / "heldout.txt"


def sample_ids(tokenizer_dir: Path | None, vocab_size: int, bos_token_id: int, count: int,
               text_file: Path | None = None) -> list[int]:
    """`count` token ids (BOS first) of `text_file` (default: the held-out text), or seeded ids without a tokenizer."""
    text_file = text_file or HELDOUT_TEXT
    if tokenizer_dir is not None and text_file.is_file():
        ids = check_tokenizer(tokenizer_dir).encode(text_file.read_text(encoding="utf-8")).ids[:count]
        if len(ids) >= min(count, 16):
            return ids
    rng = np.random.default_rng(0)
    return [bos_token_id] + rng.integers(3, vocab_size, count - 1).tolist()  # 3: skip <unk>, <s>, </s>
