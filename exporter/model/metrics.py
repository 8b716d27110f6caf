"""How well a language model predicts text, and how far two models' next-token distributions are apart."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def perplexity(model, token_ids: list[int] | torch.Tensor, window: int | None = None, batch_size: int = 8) -> float:
    """exp(mean negative log-likelihood) of every token after the first, each predicted once.

    The stream is cut into windows of `window` tokens (default: the model's context) that
    share one boundary token: window k covers tokens [k*(window-1), k*(window-1) + window),
    so every token but the first is a prediction target exactly once, and its context is
    the earlier tokens of its own window (no state crosses windows). `model` maps ids
    [B, T] to logits [B, T, vocab], like `exporter.model.OpenELM`.
    """
    ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()
    if ids.numel() < 2:
        raise ValueError("perplexity needs at least two tokens (one to condition on, one to predict)")
    context = getattr(getattr(model, "config", None), "max_context_length", None)
    window = window or context or ids.numel()
    if window < 2:
        raise ValueError(f"window must be at least 2 tokens, got {window}")
    if context is not None and window > context:
        raise ValueError(f"window {window} is longer than the model's context of {context} tokens")

    step = window - 1
    starts = list(range(0, ids.numel() - 1, step))
    chunks = [ids[s : s + window] for s in starts]
    total_nll, total_targets = 0.0, 0
    # Equal-length windows are batched; the shorter last window runs on its own.
    for length in sorted({len(c) for c in chunks}, reverse=True):
        same = [c for c in chunks if len(c) == length]
        for i in range(0, len(same), batch_size):
            batch = torch.stack(same[i : i + batch_size])
            logits = model(batch[:, :-1]).float()
            nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum")
            total_nll += float(nll.double())
            total_targets += batch[:, 1:].numel()
    return math.exp(total_nll / total_targets)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log p over the last axis, in float64."""
    x = np.asarray(logits, dtype=np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def kl_per_position(reference_logits: np.ndarray, candidate_logits: np.ndarray) -> np.ndarray:
    """KL(reference ‖ candidate) of the next-token distributions at each position ([positions, vocab] logits)."""
    ref_logp, cand_logp = log_softmax(reference_logits), log_softmax(candidate_logits)
    return np.maximum((np.exp(ref_logp) * (ref_logp - cand_logp)).sum(-1), 0.0)  # ≥ 0 up to rounding


def perplexity_of_logits(logits: np.ndarray, tokens: list[int]) -> float:
    """exp(mean NLL) of predicting tokens[1:] from logits[:-1]."""
    logp = log_softmax(logits[:-1])
    return float(np.exp(-logp[np.arange(len(tokens) - 1), tokens[1:]].mean()))
