"""elm-verify's check of the verify function: it must give what decode gives, token by token, on the same state.

Speculative decoding is only safe if (1) verify's row i equals the logits decode gives for the same token at the
same position, and (2) cache slots written for drafts that get rejected never leak into a later call: the mask
is position based, so the next call overwrites them before anything may read them. One state runs, as an app:
prefill, a verify of the right token followed by wrong drafts, a verify of the true next tokens over the slots
those wrong drafts wrote, then decode of the same tokens one at a time (rewriting the slots as decode computes
them). Both verify results are compared with decode's rows.
"""

from __future__ import annotations

import numpy as np

from exporter.errors import ExportError
from exporter.graph.contract import verify_length_of
from exporter.verify.calls import ExportCalls
from exporter.verify.compare import compare
from exporter.verify.report import Comparison


def wrong_drafts(token: int, count: int, vocab_size: int) -> list[int]:
    """Drafts that are never the true tokens' neighbours: what a bad drafter proposes."""
    return [(token + 7 + 13 * i) % vocab_size for i in range(count)]


def verify_script(calls: ExportCalls, tokens: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(verify rows, decode rows) for the same tokens and positions, on one state (see the module docstring)."""
    length = calls.verify_length
    start = min(calls.prefill_length, len(tokens) - length - 1)  # one prefill call, then room for the checks
    if start < 1:
        raise ExportError(f"verify check: {len(tokens)} tokens leave no room for a prefill and a verify of "
                          f"{length}; give a longer prompt")
    calls.prefill(tokens[:start], 0)
    first = calls.verify([tokens[start]] + wrong_drafts(tokens[start], length - 1, calls.vocab_size), start)
    later = calls.verify(tokens[start + 1 : start + 1 + length], start + 1)
    decoded = np.stack([calls.decode(tokens[p], p) for p in range(start, start + 1 + length)])
    return np.concatenate([first[:1], later]), decoded


def check_verify_function(run, manifest: dict, tokens: list[int], adapter: str | None = None) -> Comparison | None:
    """verify against decode (None for an export without a verify function). run(drive) runs `drive(executor)`
    over the export (chunk by chunk) and returns the last chunk's result."""
    if not verify_length_of(manifest):
        return None
    verified, decoded = run(lambda executor: verify_script(ExportCalls(executor, manifest, adapter), tokens))
    return compare(decoded, verified, 1)
