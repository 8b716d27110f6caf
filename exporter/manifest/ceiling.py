"""On-device speed ceiling: decode is memory-bandwidth bound, so tokens/s ≤ bandwidth / bytes read per token.

An upper bound, not a measurement: every decode call reads all weights once and, in this graph,
the whole KV-cache state (attention runs over every slot, masked), whatever the position.
"""

from __future__ import annotations

# Peak memory bandwidth, bytes/s, from the makers' published figures.
DEVICE_BANDWIDTH = {
    "iPhone 15 Pro (A17 Pro)": 51.2e9,  # LPDDR5-6400 on a 64-bit bus: 6400 MT/s × 8 bytes
    "Mac M1": 68.25e9,  # Apple M1 specifications
    "Mac M2": 100e9,  # Apple M2 specifications
    "Mac M1 Max": 400e9,  # Apple M1 Max specifications
}


def decode_ceiling(weight_bytes: int, state_shapes: list[list[int]], state_bytes_per_element: int = 2) -> dict:
    cache_bytes = 0
    for shape in state_shapes:
        elements = 1
        for d in shape:
            elements *= int(d)
        cache_bytes += elements * state_bytes_per_element
    per_token = weight_bytes + cache_bytes
    return {
        "note": "upper bound, not a measurement: tokens/s ≤ memory bandwidth / bytes read per decode token",
        "bytes_per_decode_token": per_token,
        "weight_bytes": weight_bytes,
        "kv_cache_bytes_read": cache_bytes,
        "bandwidth_bytes_per_s": DEVICE_BANDWIDTH,
        "max_decode_tokens_per_s": {device: round(bw / per_token, 1) for device, bw in DEVICE_BANDWIDTH.items()},
    }
