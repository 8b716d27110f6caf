"""Calibration tokens: built-in held-out English text when a tokenizer is at hand, seeded ids otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np

HELDOUT_TEXT = Path(__file__).parent / "assets" / "openelm-tiny" / "heldout.txt"


def calibration_ids(tokenizer_dir: Path | None, vocab_size: int, bos_token_id: int, count: int,
                    text_file: Path | None = None) -> list[int]:
    """`count` token ids (BOS first) for activation-range and compression calibration."""
    text_file = text_file or HELDOUT_TEXT
    if tokenizer_dir is not None and text_file.is_file():
        from exporter.hub import check_tokenizer

        ids = check_tokenizer(tokenizer_dir).encode(text_file.read_text(encoding="utf-8")).ids[:count]
        if len(ids) >= min(count, 16):
            return ids
    rng = np.random.default_rng(0)
    return [bos_token_id] + rng.integers(3, vocab_size, count - 1).tolist()  # 3: skip <unk>, <s>, </s>
