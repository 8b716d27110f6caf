"""The reference model: incremental decoding equals the full pass, and the math equals a naive re-derivation."""

import math

import torch

from exporter.model.load import random_state_dict
from exporter.model.openelm import KVCache, OpenELM
from tests.helpers import small_config


def seeded_model(config, seed=0):
    model = OpenELM(config)
    model.load_state_dict(random_state_dict(config, seed=seed))
    return model.eval()


def naive_logits(state, config, ids):
    """OpenELM's forward pass written out head by head from its published description (arXiv 2404.14619),
    as an independent check."""

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w

    hd = config.head_dim
    seq = len(ids)
    inv = [1.0 / (10000 ** (2 * i / hd)) for i in range(hd // 2)]
    ang = torch.tensor([[p * f for f in inv] for p in range(seq)], dtype=torch.float64)
    cos, sin = torch.cat((ang, ang), -1).cos().float(), torch.cat((ang, ang), -1).sin().float()

    def rope(x):  # x [seq, hd]
        return x * cos + torch.cat((-x[:, hd // 2 :], x[:, : hd // 2]), -1) * sin

    x = state["transformer.token_embeddings.weight"][torch.tensor(ids)]
    for i in range(config.num_transformer_layers):
        p = f"transformer.layers.{i}."
        nq, nkv = config.num_query_heads[i], config.num_kv_heads[i]
        h = rms(x, state[p + "attn_norm.weight"])
        qkv = h @ state[p + "attn.qkv_proj.weight"].T
        heads = [qkv[:, j * hd : (j + 1) * hd] for j in range(nq + 2 * nkv)]
        outs = []
        for j in range(nq):
            kv = j // (nq // nkv)
            q = rope(rms(heads[j], state[p + "attn.q_norm.weight"]))
            k = rope(rms(heads[nq + kv], state[p + "attn.k_norm.weight"]))
            v = heads[nq + nkv + kv]
            scores = q @ k.T / math.sqrt(hd)
            scores = scores.masked_fill(torch.ones(seq, seq).triu(1).bool(), float("-inf"))
            outs.append(scores.softmax(-1) @ v)
        x = x + torch.cat(outs, -1) @ state[p + "attn.out_proj.weight"].T
        h = rms(x, state[p + "ffn_norm.weight"])
        gate_up = h @ state[p + "ffn.proj_1.weight"].T
        f = config.ffn_dims[i]
        x = x + (torch.nn.functional.silu(gate_up[:, :f]) * gate_up[:, f:]) @ state[p + "ffn.proj_2.weight"].T
    x = rms(x, state["transformer.norm.weight"])
    return x @ state["transformer.token_embeddings.weight"].T


def test_forward_equals_naive_derivation():
    config = small_config()
    state = random_state_dict(config, seed=3)
    for name in state:  # non-trivial norm weights, so q/k-norm and RMSNorm weights are really exercised
        if name.endswith("norm.weight"):
            state[name] = 1 + 0.5 * torch.randn(state[name].shape)
    model = OpenELM(config)
    model.load_state_dict(state)
    ids = torch.randint(0, config.vocab_size, (1, 20))
    logits = model(ids)
    assert logits.dtype == torch.float32 and logits.shape == (1, 20, config.vocab_size)
    expected = naive_logits(state, config, ids[0].tolist())
    assert (logits[0] - expected).abs().max() < 1e-4


def test_kv_cache_decoding_equals_full_sequence():
    config = small_config()
    model = seeded_model(config)
    ids = torch.randint(0, config.vocab_size, (2, 48))
    full = model(ids)
    cache = KVCache(config.num_transformer_layers)
    pieces = [model(ids[:, :10], cache), model(ids[:, 10:16], cache)]
    pieces += [model(ids[:, t : t + 1], cache) for t in range(16, 48)]  # 32 single-token steps
    incremental = torch.cat(pieces, dim=1)
    assert cache.length == 48
    assert (incremental - full).abs().max() <= 1e-4


def test_generate_is_greedy_and_matches_full_recompute():
    config = small_config()
    model = seeded_model(config, seed=1)
    prompt = torch.tensor([[1, 5, 9, 42, 7]])
    out = model.generate(prompt, max_new_tokens=12)
    assert out.shape == (1, 17) and torch.equal(out[:, :5], prompt)
    for t in range(5, 17):  # each new token is the argmax of a from-scratch forward pass
        assert out[0, t] == model(out[:, :t])[0, -1].argmax()


def test_generate_stops_at_eos_and_context():
    config = small_config(max_context_length=12)
    model = seeded_model(config)
    prompt = torch.tensor([[1, 2, 3]])
    first = int(model(prompt)[0, -1].argmax())
    assert model.generate(prompt, 10, eos_token_id=first).shape[1] == 4
    assert model.generate(prompt, 50).shape[1] == 12


def test_bfloat16_model_keeps_norms_in_float32():
    config = small_config()
    model = seeded_model(config).to(torch.bfloat16)
    ids = torch.randint(0, config.vocab_size, (1, 8))
    logits = model(ids)
    assert logits.dtype == torch.float32
    reference = seeded_model(config)(ids)
    assert (logits - reference).abs().max() < 0.05
