"""Measuring a child process for the benchmarks: wall time, peak RSS (wait4), output; and the machine's description."""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

RSS_LIMIT = 20 * 10**9  # of this 24 GB machine: past it a run is stopped and reported, not left to the OOM killer


def rss_of(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_measured(command: list[str], env=None, rss_limit: int | None = None) -> tuple[int, float, int, str]:
    """(exit code, wall seconds, peak RSS bytes, combined output) of a child process.

    rss_limit: kill the child once its resident memory passes this many bytes (so a run that would
    exhaust the machine is measured as 'over the limit' instead of taking the machine down).
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        killed = False
        while True:  # wait4 (not poll) reaps the child, so its resource usage is ours to read
            pid, status, usage = os.wait4(process.pid, 0 if rss_limit is None else os.WNOHANG)
            if pid:
                break
            if not killed and rss_of(process.pid) > rss_limit:
                process.kill()
                killed = True
            time.sleep(0.2)
        wall = time.perf_counter() - start
        log.seek(0)
        output = log.read().decode(errors="replace")
    if killed:
        output += f"\nkilled: resident memory passed the {rss_limit / 1e9:.0f} GB limit after {wall:.0f} s"
    return os.waitstatus_to_exitcode(status), wall, usage.ru_maxrss * 1024, output


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1] if output.strip() else "no output"


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, {platform.system()} {platform.release()}"
