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
    return Comparison(
        max_abs_error=float(np.abs(safe - reference).max()),
        mean_kl=float(kl.mean()),
        top1_agreement=float((ref_top == pkg_top).mean()),
        greedy_agree=bool(decode_agree.all()),
        first_divergence=divergence,
        nonfinite=nonfinite,
    )
