"""Progress lines for the long export steps, with elapsed time, on stderr (stdout stays for results)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


class Progress:
    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[{self.elapsed():7.1f}s] {message}", file=self.stream, flush=True)

    @contextmanager
    def step(self, label: str):
        """Announce `label`, run the block, then report how long it took (kept in `timings`)."""
        self.say(f"{label} ...")
        start = time.perf_counter()
        yield
        took = time.perf_counter() - start
        self.timings[label] = self.timings.get(label, 0.0) + took
        self.say(f"{label}: done in {took:.1f}s")
