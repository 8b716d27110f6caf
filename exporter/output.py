"""The output folder, written atomically: built in a hidden staging folder beside the target, renamed into place.

A failed, interrupted or killed export never leaves a half-written result, and two exports racing
for the same new folder cannot both win: without --force the final rename refuses to replace
anything (renameat2's RENAME_NOREPLACE on Linux, renamex_np's RENAME_EXCL on macOS), so the
check that the target is free holds at the moment the folder appears.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from exporter.errors import ExportError

AT_FDCWD = -100
RENAME_NOREPLACE = 1  # Linux renameat2 flag
RENAME_EXCL = 4  # macOS renamex_np flag


def already_exists(target: Path) -> ExportError:
    return ExportError(f"{target} already exists; pass --force to overwrite it or choose another --output")


def refuse_existing(target: Path, force: bool) -> None:
    if Path(target).exists() and not force:
        raise already_exists(target)


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def rename_no_replace(source: Path, target: Path) -> None:
    """Rename `source` to `target`, failing with FileExistsError if `target` exists, atomically."""
    libc = _libc()
    if hasattr(libc, "renameat2"):
        result = libc.renameat2(AT_FDCWD, os.fsencode(source), AT_FDCWD, os.fsencode(target), RENAME_NOREPLACE)
    elif hasattr(libc, "renamex_np"):
        result = libc.renamex_np(os.fsencode(source), os.fsencode(target), RENAME_EXCL)
    else:  # no atomic primitive: a non-empty target still makes rename fail, an empty one is replaced
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "exists", str(target))
        os.rename(source, target)
        return
    if result != 0:
        code = ctypes.get_errno()
        if code in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(code, os.strerror(code), str(target))
        if code in (errno.ENOSYS, errno.EINVAL):  # a filesystem without the flag: plain rename, as before
            if os.path.lexists(target):
                raise FileExistsError(errno.EEXIST, "exists", str(target))
            os.rename(source, target)
            return
        raise OSError(code, os.strerror(code), str(target))


class _TargetTaken(Exception):
    """Another writer created the target between the start of this export and its final rename."""


def _publish(staging: Path, target: Path, force: bool) -> None:
    if force and target.exists():
        _replace(staging, target, target.parent)
        return
    try:
        rename_no_replace(staging, target)
    except FileExistsError:
        raise _TargetTaken() from None


def _replace(staging: Path, target: Path, parent: Path) -> None:
    """--force: the old folder is moved aside, the new one renamed in, the old one removed."""
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=parent))
    try:
        os.replace(target, retired / target.name)
    except FileNotFoundError:
        pass  # gone meanwhile: nothing to retire
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


@contextmanager
def atomic_output(target: Path, force: bool):
    """Yield a staging folder; on success it becomes `target`, on any failure it is removed."""
    target = Path(target).absolute()
    refuse_existing(target, force)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=parent))
    except OSError as e:
        raise ExportError(f"cannot write to {parent} ({e.strerror or e}); choose a writable --output") from None
    try:
        yield staging
        _publish(staging, target, force)
    except _TargetTaken:
        shutil.rmtree(staging, ignore_errors=True)
        raise already_exists(target) from None
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportError(
            f"writing {target} failed ({e.strerror or e}); nothing was written: free some space or choose "
            "another --output"
        ) from e
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
