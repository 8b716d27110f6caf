"""How well a draft model stands in for its target: greedy agreement, and greedy speculative decoding.

In greedy speculative decoding the draft proposes `lookahead` tokens, the target scores them all
in one forward pass, and the longest prefix where the draft chose the target's own argmax is
kept, plus the target's token at the first mismatch. The output is exactly the target's greedy
output; the speed-up comes from the tokens kept per target pass.
"""

from __future__ import annotations

import torch

from exporter.model.openelm import OpenELM


@torch.no_grad()
def greedy_agreement(draft: OpenELM, target: OpenELM, token_ids, window: int | None = None) -> float:
    """Fraction of positions where both models' argmax next tokens agree, teacher-forced on `token_ids`.

    The stream is cut into consecutive windows of `window` tokens (default: the shorter context);
    every position of every window counts once, its context being the earlier tokens of its window.
    """
    ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()
    window = window or min(draft.config.max_context_length, target.config.max_context_length)
    same = total = 0
    for start in range(0, ids.numel(), window):
        chunk = ids[start : start + window][None]
        same += int((draft(chunk).argmax(-1) == target(chunk).argmax(-1)).sum())
        total += chunk.numel()
    return same / total


@torch.no_grad()
def speculative_greedy(draft: OpenELM, target: OpenELM, prompt: list[int], new_tokens: int,
                       lookahead: int = 4) -> tuple[list[int], int]:
    """(prompt + at least `new_tokens` tokens, target forward passes), by greedy speculative decoding.

    Plain full-sequence forward passes (no KV cache): this measures acceptance, not speed.
    """
    tokens = list(prompt)
    passes = 0
    while len(tokens) - len(prompt) < new_tokens:
        proposal = draft.generate(torch.tensor([tokens]), max_new_tokens=lookahead)[0, len(tokens) :].tolist()
        verified = target(torch.tensor([tokens + proposal]))[0, len(tokens) - 1 :].argmax(-1).tolist()
        passes += 1
        kept = 0
        while kept < len(proposal) and proposal[kept] == verified[kept]:
            kept += 1
        tokens += proposal[:kept] + [verified[kept]]
    return tokens, passes


def speculative_summary(draft: OpenELM, target: OpenELM, prompts: list[list[int]], new_tokens: int = 48,
                        lookahead: int = 4) -> dict:
    """Greedy speculative decoding of every prompt, compared with the target's plain greedy output
    (equal but for float near-ties: the target's generate uses the KV cache, verification does not)."""
    generated = passes = 0
    identical = True
    for prompt in prompts:
        tokens, calls = speculative_greedy(draft, target, prompt, new_tokens, lookahead)
        reference = target.generate(torch.tensor([prompt]), max_new_tokens=len(tokens) - len(prompt))[0].tolist()
        identical &= tokens == reference
        generated += len(tokens) - len(prompt)
        passes += calls
    return {"lookahead": lookahead, "prompts": len(prompts), "generated_tokens": generated,
            "target_passes": passes, "tokens_per_target_pass": generated / passes, "same_as_target_greedy": identical}
