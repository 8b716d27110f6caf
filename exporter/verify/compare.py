"""Comparing a package's logits with a reference's, position by position."""

from __future__ import annotations

import numpy as np

from exporter.model.metrics import kl_per_position
from exporter.verify.report import Comparison


def compare(reference: np.ndarray, package: np.ndarray, prompt_length: int) -> Comparison:
    """reference/package: [positions, vocab] logits for the same tokens."""
    nonfinite = int((~np.isfinite(package)).sum())
    safe = np.nan_to_num(package.astype(np.float64), nan=0.0, posinf=6e4, neginf=-6e4)
    kl = kl_per_position(reference, safe)
    ref_top = reference.argmax(-1)
    pkg_top = safe.argmax(-1)
    decode_agree = ref_top[prompt_length - 1 :] == pkg_top[prompt_length - 1 :]
    divergence = None if decode_agree.all() else int(np.argmin(decode_agree))
    ordered = np.sort(reference, axis=-1)
    margin = ordered[:, -1] - ordered[:, -2]  # the reference's own top-2 gap at each position
    # A near-tie: the gap is within twice the typical (median) position's error, the float16 noise of this run.
    tie = (ref_top != pkg_top) & (margin <= 2 * np.median(np.abs(safe - reference).max(-1)))
    return Comparison(
        max_abs_error=float(np.abs(safe - reference).max()),
        mean_kl=float(kl.mean()),
        top1_agreement=float((ref_top == pkg_top).mean()),
        greedy_agree=bool(decode_agree.all()),
        first_divergence=divergence,
        nonfinite=nonfinite,
        top1_beyond_ties=float(((ref_top == pkg_top) | tie).mean()),
    )
