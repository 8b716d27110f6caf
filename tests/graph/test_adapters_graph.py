"""An adapter's functions, run eagerly in float32 as the export graph holds them, reproduce the reference model with
the adapter applied (PEFT's semantics), for both targets and both embedding paths."""

import torch

from exporter.checkpoint.adapters import read_adapter
from exporter.graph.adapters import embedding_low_rank, function_name, projection
from exporter.graph.ane import NeuralEngineOpenELM, TokenEmbedding
from exporter.graph.chunks import Chunk
from exporter.graph.functions import graph_functions
from exporter.graph.vocab import vocab_split
from exporter.model.lora import with_adapter
from tests.graph.test_ane import call, norm_forms
from tests.graph.test_stateful import reference, stateful_logits
from tests.helpers import small_config, write_peft_adapter


def adapted_reference(tmp_path, config, **options):
    adapter = read_adapter("style", write_peft_adapter(tmp_path / "style", config, **options))
    base = reference(config)
    return base, with_adapter(base, adapter)


def test_gpu_graph_with_an_adapter_matches_the_adapted_reference(tmp_path):
    config = small_config(vocab_size=700)
    base, adapted = adapted_reference(tmp_path, config)
    ids = torch.randint(0, config.vocab_size, (1, 30))
    with torch.no_grad():
        expected, plain = adapted(ids), base(ids)
    got = stateful_logits(adapted, ids, prompt_length=19)
    assert (got - expected).abs().max() <= 1e-3
    assert (expected - plain).abs().max() > 0.1  # the adapter changes the model: the check above can tell


@torch.no_grad()
def test_ane_graph_with_an_adapter_matches_the_adapted_reference(tmp_path):
    config = small_config()
    base, adapted = adapted_reference(tmp_path, config)
    forms = norm_forms(config, "max_scaled")
    prefill = NeuralEngineOpenELM(adapted, 128, 8, torch.float32, norm_forms=forms, logits=False)
    decode = NeuralEngineOpenELM(adapted, 128, 1, torch.float32, norm_forms=forms)
    decode.key_cache, decode.value_cache = prefill.key_cache, prefill.value_cache
    low_rank = embedding_low_rank(adapted, *vocab_split(config.vocab_size), None)
    embed_prefill, embed_decode = (TokenEmbedding(decode.vocab_pieces, t, low_rank) for t in (8, 1))
    ids = torch.randint(0, config.vocab_size, (1, 24))
    padded = torch.nn.functional.pad(ids[:, :15], (0, 1))
    for start in (0, 8):
        call(prefill, embed_prefill(padded[:, start : start + 8].int()), start, 8, config, 128)
    rows = [call(decode, embed_decode(ids[:, t : t + 1].int()), t, 1, config, 128).flatten(2)[:, :, :config.vocab_size]
            for t in range(15, 24)]
    assert (torch.cat(rows, dim=1) - adapted(ids)[:, 15:]).abs().max() <= 1e-3


def test_each_adapter_adds_every_function_under_its_name():
    functions = graph_functions("ane", Chunk.whole(4), 64, 5, adapters=("style", "psalms"))
    names = [f.name for f in functions]
    assert names[:6] == ["embed_prefill", "embed_decode", "embed_verify", "prefill", "decode", "verify"]
    assert names[6:12] == [function_name(n, "style") for n in names[:6]] and len(names) == 18
    assert [f.logits for f in functions[6:12]] == [f.logits for f in functions[:6]]  # the kind decides, not the name


def test_projection_keeps_the_base_weight_storage(tmp_path):
    config = small_config()
    base, adapted = adapted_reference(tmp_path, config, targets=["qkv_proj"])
    conv = projection(adapted.transformer.layers[0].attn.qkv_proj)
    assert conv.weight.data_ptr() == base.transformer.layers[0].attn.qkv_proj.weight.data_ptr()
