"""Comparing a package's logits with a reference's, position by position."""

from __future__ import annotations

import numpy as np

from exporter.verify.report import Comparison


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def compare(reference: np.ndarray, package: np.ndarray, prompt_length: int) -> Comparison:
    """reference/package: [positions, vocab] logits for the same tokens."""
    nonfinite = int((~np.isfinite(package)).sum())
    safe = np.nan_to_num(package.astype(np.float64), nan=0.0, posinf=6e4, neginf=-6e4)
    ref_logp = log_softmax(reference)
    pkg_logp = log_softmax(safe)
    kl = np.maximum((np.exp(ref_logp) * (ref_logp - pkg_logp)).sum(-1), 0.0)  # ≥ 0 up to rounding
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
