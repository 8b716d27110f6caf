"""The on-device decode ceiling arithmetic export.json records."""

import pytest

from exporter.manifest.ceiling import DEVICE_BANDWIDTH, decode_ceiling


def test_ceiling_is_bandwidth_over_bytes_per_token():
    ceiling = decode_ceiling(250_000_000, [[1, 96, 2048, 64], [1, 96, 2048, 64]])
    cache = 2 * 96 * 2048 * 64 * 2
    assert ceiling["kv_cache_bytes_read"] == cache
    assert ceiling["bytes_per_decode_token"] == 250_000_000 + cache
    for device, bandwidth in DEVICE_BANDWIDTH.items():
        assert ceiling["max_decode_tokens_per_s"][device] == pytest.approx(bandwidth / (250_000_000 + cache), abs=0.05)
    assert "upper bound" in ceiling["note"]
