"""Give freed weight arrays back to the OS at once, so peak RSS is what the export really holds.

glibc serves large allocations from mmap and returns them on free, but after the first such free
it raises its mmap threshold to that size (up to 32 MB), so later weight-sized arrays come from
the heap and stay resident after they are freed. Pinning the threshold keeps every array of 1 MB
or more in its own mapping. pymil ops hold their values in reference cycles, so the arrays of
replaced consts are only freed by the cycle collector: `collect` runs it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
MMAP_THRESHOLD_BYTES = 1 << 20


def pin_mmap_threshold() -> bool:
    """True when glibc took the setting (elsewhere: nothing to do)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False


def collect() -> None:
    gc.collect()


def batched(items: list, size: int) -> list[list]:
    """`items` in consecutive lists of `size` (the last may be shorter): work a batch at a time."""
    return [items[i:i + size] for i in range(0, len(items), size)]
