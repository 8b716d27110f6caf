"""--max-chunk-bytes: the chunk plan splits real sizes into the fewest even chunks under the limit."""

import pytest

from exporter.errors import UsageError
from exporter.graph.chunks import layer_weight_bytes, parse_bytes, plan_chunks
from exporter.model.presets import get_preset
from quant.coreml import Compression
from quant.recipes import get_recipe


def chunk_bytes(config, compression, chunks):
    per_layer, vocab = layer_weight_bytes(config, compression)
    return [sum(per_layer[c.start:c.stop]) + vocab * c.takes_ids + vocab * c.gives_logits for c in chunks]


@pytest.mark.parametrize("size, recipe, expected", [("3b", "int4", 2), ("3b", "none", 8), ("1_1b", "none", 3),
                                                    ("450m", "int4", 1)])
def test_real_sizes_split_into_the_fewest_even_chunks(size, recipe, expected):
    config = get_preset(size).config()
    compression = Compression(get_recipe(recipe))
    chunks = plan_chunks(config, compression, 10**9)
    assert len(chunks) == expected
    assert chunks[0].start == 0 and chunks[-1].stop == config.num_transformer_layers
    assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:]))  # contiguous, in order
    sizes = chunk_bytes(config, compression, chunks)
    assert max(sizes) <= 10**9
    if expected > 1:
        assert min(sizes) > 0.6 * max(sizes)  # even, not greedy's full chunks and a small tail


def test_no_limit_or_a_large_one_keeps_one_package():
    config = get_preset("3b").config()
    assert len(plan_chunks(config, Compression(get_recipe("int4")), None)) == 1
    assert len(plan_chunks(config, Compression(get_recipe("int4")), 10**10)) == 1


def test_a_limit_below_one_layer_is_a_usage_error():
    config = get_preset("450m").config()
    with pytest.raises(UsageError, match="smaller than layer"):
        plan_chunks(config, Compression(get_recipe("none")), 10**6)


@pytest.mark.parametrize("text, value", [("1GB", 10**9), ("800MB", 8 * 10**8), ("1.5GiB", int(1.5 * 2**30)),
                                         ("123456", 123456), ("none", None), ("0", None)])
def test_sizes_parse(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["lots", "-5MB", "12XB", ""])
def test_bad_sizes_are_usage_errors(text):
    with pytest.raises(UsageError, match="is not a size"):
        parse_bytes(text)
