"""The vocabulary split into pieces of at most 16384 rows, the Neural Engine's limit on any dimension."""

from __future__ import annotations

import math

ANE_MAX_DIM = 16384  # Neural Engine limit on any tensor dimension


def vocab_split(vocab_size: int) -> tuple[int, int]:
    """(pieces, piece_size): the fewest equal pieces of at most 16384 rows covering the vocabulary."""
    pieces = math.ceil(vocab_size / ANE_MAX_DIM)
    return pieces, math.ceil(vocab_size / pieces)  # the last piece is zero-padded when uneven
