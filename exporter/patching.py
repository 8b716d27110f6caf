"""Scoped replacement of a library function: how the backend and quant make coremltools skip known work."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def patched(owner, name: str, wrap):
    """owner.name is wrap(original) inside the block, the original again after it."""
    original = owner.__dict__[name]
    setattr(owner, name, wrap(original))
    try:
        yield
    finally:
        setattr(owner, name, original)
