"""The embedded tiny OpenELM: it loads, its layers differ, it really learned, and perplexity is computed right."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

import exporter
from exporter.model.load import load_checkpoint, random_state_dict
from exporter.model.metrics import perplexity
from exporter.model.openelm import OpenELM
from exporter.tools.tiny.corpus import parse_verses, split_chapters
from exporter.tools.tiny.train import TrainSettings, heldout_ids, init_weights, state_digest, train
from tests.helpers import small_config

ASSET = Path(exporter.__file__).parent / "assets" / "openelm-tiny"
ROUND_TRIP_TEXTS = [
    "In the beginning God created the heaven and the earth.",
    "Café, naïve, Ångström, déjà vu",
    "日本語のテキストと中文",
    "emoji 🙂🚀 and a flag 🇫🇷",
    "tabs\tand\nnew lines",
]


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(ASSET)


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.from_file(str(ASSET / "tokenizer.json"))


@pytest.fixture(scope="module")
def heldout(tokenizer):
    return heldout_ids(tokenizer, (ASSET / "heldout.txt").read_text())


def card_perplexity() -> float:
    """The `heldout.txt` perplexity that the model card states (last cell of its table row)."""
    for line in (ASSET / "README.md").read_text().splitlines():
        if line.startswith("|") and "`heldout.txt`" in line:
            return float(line.strip(" |").split("|")[-1].replace(",", ""))
    raise AssertionError("README.md has no `heldout.txt` perplexity row")


# --- the embedded model ----------------------------------------------------------------------------


def test_embedded_model_loads_with_layerwise_scaling(model, tokenizer):
    config = model.config
    assert not model.training
    assert config.vocab_size == tokenizer.get_vocab_size()
    assert config.max_context_length % 64 == 0
    # Layer-wise scaling really varies the layers, as in Apple's models.
    assert len(set(config.num_query_heads)) > 1
    assert len(set(config.num_kv_heads)) > 1
    assert len(set(config.ffn_dims)) > 1
    assert config.num_query_heads == sorted(config.num_query_heads)
    assert 1_000_000 < model.num_parameters() < 10_000_000


def test_heldout_perplexity_is_low_and_matches_the_card(model, heldout):
    ppl = perplexity(model, heldout)
    assert ppl < model.config.vocab_size / 20, ppl
    assert ppl == pytest.approx(card_perplexity(), abs=0.006)


def test_random_weights_score_near_the_vocabulary_size(model, heldout):
    # The same measurement on an untrained model of the same config: proves the test above can fail.
    untrained = OpenELM(model.config)
    untrained.load_state_dict(random_state_dict(model.config, seed=0))
    ppl = perplexity(untrained.eval(), heldout[:1024])
    assert 0.7 * model.config.vocab_size < ppl < 1.5 * model.config.vocab_size, ppl


def test_greedy_generation_continues_in_the_training_style(model, tokenizer):
    prompt = tokenizer.encode("And the LORD spake unto Moses, saying,").ids
    out = model.generate(torch.tensor([prompt]), max_new_tokens=24)[0, len(prompt) :].tolist()
    words = re.findall(r"[A-Za-z]+", tokenizer.decode(out))
    assert len(words) >= 8
    assert {"the", "and", "of", "unto", "LORD", "shall", "thou", "thee", "ye"} & set(words)


# --- the tokenizer ---------------------------------------------------------------------------------


def test_tokenizer_has_llama2_layout(tokenizer):
    spec = json.loads((ASSET / "tokenizer.json").read_text())
    assert spec["model"]["type"] == "BPE" and spec["model"]["byte_fallback"] and spec["model"]["fuse_unk"]
    assert spec["pre_tokenizer"] is None
    assert [n["type"] for n in spec["normalizer"]["normalizers"]] == ["Prepend", "Replace"]
    assert [d["type"] for d in spec["decoder"]["decoders"]] == ["Replace", "ByteFallback", "Fuse", "Strip"]
    assert [t["content"] for t in spec["added_tokens"]] == ["<unk>", "<s>", "</s>"]
    assert [tokenizer.token_to_id(t) for t in ("<unk>", "<s>", "</s>", "<0x00>", "<0xFF>")] == [0, 1, 2, 3, 258]
    config = json.loads((ASSET / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "LlamaTokenizer"
    assert config["add_bos_token"] is True and config["add_eos_token"] is False


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_tokenizer_round_trips_with_bos_prepended(tokenizer, text):
    ids = tokenizer.encode(text).ids
    assert ids[0] == 1 and 2 not in ids  # BOS prepended, no EOS appended
    assert tokenizer.decode(ids) == text


def test_characters_outside_the_vocabulary_fall_back_to_bytes(tokenizer):
    tokens = tokenizer.encode("🙂").tokens
    assert tokens[-4:] == ["<0xF0>", "<0x9F>", "<0x99>", "<0x82>"]


def test_transformers_loads_the_same_tokenizer(tokenizer):
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(ASSET))
    assert (hf.bos_token_id, hf.eos_token_id, hf.unk_token_id) == (1, 2, 0)
    for text in ROUND_TRIP_TEXTS:
        ids = hf(text)["input_ids"]
        assert ids == tokenizer.encode(text).ids
        assert hf.decode(ids, skip_special_tokens=True) == text


# --- perplexity ------------------------------------------------------------------------------------


class BigramModel(torch.nn.Module):
    """Next-token probabilities that depend only on the previous token: easy to compute by hand."""

    def __init__(self, probabilities, context: int = 8):
        super().__init__()
        self.log_probs = torch.tensor(probabilities).log()
        self.config = type("Config", (), {"max_context_length": context})()
        self.windows: list[int] = []

    def forward(self, ids):
        self.windows += [ids.shape[1] + 1] * ids.shape[0]  # the window includes its last target
        return self.log_probs[ids]


@pytest.mark.parametrize("window", [2, 3, 5, 8])
def test_perplexity_matches_hand_computation(window):
    # p(next | prev=0) = (3/4, 1/4), p(next | prev=1) = (1/2, 1/2)
    model = BigramModel([[0.75, 0.25], [0.5, 0.5]])
    ids = [0, 0, 1, 1, 0]  # transitions 0->0, 0->1, 1->1, 1->0
    expected = (0.75 * 0.25 * 0.5 * 0.5) ** (-1 / 4)
    assert perplexity(model, ids, window=window) == pytest.approx(expected, rel=1e-6)
    assert perplexity(model, torch.tensor(ids), window=window) == pytest.approx(expected, rel=1e-6)


def test_perplexity_windows_cover_every_token_once():
    model = BigramModel([[0.5, 0.5], [0.5, 0.5]], context=4)
    ids = [0, 1] * 10  # 20 tokens, 19 predictions
    assert perplexity(model, ids) == pytest.approx(2.0)
    assert max(model.windows) == 4  # defaults to the model's context
    assert sum(w - 1 for w in model.windows) == 19
    with pytest.raises(ValueError, match="longer than the model's context"):
        perplexity(model, ids, window=5)
    with pytest.raises(ValueError, match="at least two tokens"):
        perplexity(model, [0])


def test_uniform_model_scores_the_vocabulary_size():
    model = BigramModel([[1 / 7] * 7] * 7)
    assert perplexity(model, [1, 2, 3, 4, 5, 6, 0, 1]) == pytest.approx(7.0)


# --- corpus and training ---------------------------------------------------------------------------


def test_corpus_groups_verses_into_chapters_and_holds_out_every_fiftieth():
    dump = "Ge1:1 In the  beginning.\nGe1:2 And the earth.\nGe2:1 Thus the heavens.\n1Sm3:4 That the LORD called.\n"
    chapters = parse_verses(dump)
    assert [(c.book, c.number) for c in chapters] == [("Ge", 1), ("Ge", 2), ("1Sm", 3)]
    assert chapters[0].text == "In the beginning.\nAnd the earth."
    train_part, heldout_part = split_chapters(list(range(200)))
    assert heldout_part == [49, 99, 149, 199] and len(train_part) == 196


def test_training_is_deterministic():
    config = small_config(num_layers=2, model_dim=64, head_dim=16, vocab_size=64)
    stream = torch.randint(0, 64, (2000,), generator=torch.Generator().manual_seed(0))
    settings = TrainSettings(steps=3, batch_size=2, seq_len=32, warmup_steps=1, eval_every=3, eval_windows=2)
    digests = []
    for _ in range(2):
        model = OpenELM(config)
        init_weights(model, settings.seed)
        history = train(model, stream, stream, settings, log=lambda *_: None)
        digests.append(state_digest(model.state_dict()))
    assert digests[0] == digests[1]
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_loss_curve_is_valid_svg():
    root = ET.parse(ASSET / "loss_curve.svg").getroot()
    assert root.tag.endswith("svg")
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 3
    log = json.loads((ASSET / "training_log.json").read_text())
    assert math.isclose(log["heldout_sample_perplexity"], card_perplexity(), abs_tol=0.006)
