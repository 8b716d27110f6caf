"""How an app drives an export, per target, as export.json states it (`graph` section): what to call, with what."""

from __future__ import annotations

from exporter.graph.host_inputs import MASK_VALUE
from exporter.graph.signature import (
    ANE,
    EMBED_FUNCTIONS,
    EMBED_VERIFY,
    FUNCTIONS,
    GPU,
    HIDDEN_IN,
    HIDDEN_OUT,
    LOGITS,
    MASK,
    ROTARY,
    VERIFY,
)

GPU_DRIVING = (
    "split the prompt ids (BOS first) into chunks of prefill_length, pad the last chunk, call prefill with "
    "position = chunk start; take the logits row of the last real token; then call decode with each new token at "
    "position = its index; stop before position reaches context_length. With several chunks, every call runs them "
    "in order (same function, same position), each with its own state, feeding hidden_out to the next chunk's "
    "hidden_in"
)
ANE_DRIVING = (
    "prefill the prompt ids (BOS first) except the last in chunks of prefill_length: embed_prefill(input_ids, the "
    "last chunk padded) gives hidden_out, then prefill(hidden_in = that, position = chunk start, rotary, mask) "
    "writes the cache and returns nothing to read. Then for the prompt's last token and every new one: "
    "embed_decode(input_ids [1, 1]) -> decode(hidden_in, position = the token's index, rotary, mask) -> logits. "
    "embed functions live in the first chunk; with several chunks every body call runs them in order (same "
    "function, same position, each its own state), hidden_out feeding the next chunk's hidden_in"
)


VERIFY_DRIVING = (
    "speculative decoding: verify takes verify_length tokens at a position exactly as prefill does (ane: through "
    "embed_verify, with rotary and mask for those positions): the newest token, then the drafted ones (pad a short "
    "draft), and gives the logits of every row. Accept drafts while the token chosen from row i equals draft i; the "
    "cache slots written for rejected drafts need no clearing: the mask is position based and the next call "
    "overwrites them"
)


def contract(target: str, verify_length: int = 0) -> dict:
    """export.json's description of the functions and the inputs the caller computes, for `target`."""
    speculative = {"verify_length": verify_length, "verify_driving": VERIFY_DRIVING} if verify_length else {}
    body = list(FUNCTIONS) + ([VERIFY] if verify_length else [])
    if target != ANE:
        return {"functions": body, "prefill_logits": True, "driving": GPU_DRIVING, **speculative}
    embeds = list(EMBED_FUNCTIONS) + ([EMBED_VERIFY] if verify_length else [])
    return {
        **speculative,
        "functions": embeds + body,
        "prefill_logits": False,  # the rules' prompt_opt: decode the prompt's last token for its logits
        "caller_inputs": {
            ROTARY: "float16 [1, T, 2 * head_dim]: cos(p * f), then sin(p * f) with its first half negated, at "
                    "positions p = position .. position + T - 1, f_i = rope_freq_constant^(-2i / head_dim) for i < "
                    "head_dim / 2, repeated for the second half (exporter.graph.host_inputs.rotary_input)",
            MASK: f"float16 [1, T, context_length]: row t is 0 at key slots <= position + t, else {MASK_VALUE:g}",
            HIDDEN_IN: "float16 [1, T, model_dim]: embed_*'s or the previous chunk's hidden_out",
        },
        "outputs": {LOGITS: "decode and verify of the last chunk: float16 [1, T, pieces, piece_size]",
                    HIDDEN_OUT: "embed_*, body functions of chunks before the last, and prefill (not read)"},
        "mask_value": MASK_VALUE,
        "driving": ANE_DRIVING,
    }


def target_of(manifest: dict) -> str:
    """The graph an export was built as (exports from before --target are gpu)."""
    return (manifest.get("graph") or {}).get("target", GPU)


def logit_functions(target: str) -> tuple[str, ...]:
    """The body functions whose last chunk gives logits: ane's prefill gives none (prompt_opt); verify always does."""
    return ("decode", VERIFY) if target == ANE else FUNCTIONS + (VERIFY,)


def verify_length_of(manifest: dict) -> int:
    """Tokens per verify call of an export; 0 when it has no verify function (exports before speculative decoding)."""
    return int(manifest.get("verify_length") or 0)


def body_functions(manifest: dict) -> tuple[str, ...]:
    """The body functions every chunk of an export has: prefill, decode, and verify when it was exported with it."""
    return FUNCTIONS + ((VERIFY,) if verify_length_of(manifest) else ())
