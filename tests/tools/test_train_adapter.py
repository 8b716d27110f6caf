"""OpenELM-tiny's LoRA adapter (exporter/assets/openelm-tiny-adapters/devil): it loads with PEFT, really lowers
perplexity on its held-out text, and that text was never part of the training split."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

peft = pytest.importorskip("peft")

from tokenizers import Tokenizer  # noqa: E402

import exporter  # noqa: E402
from exporter.model.load import load_checkpoint  # noqa: E402
from exporter.model.metrics import perplexity  # noqa: E402
from exporter.tools.tiny import train_adapter  # noqa: E402
from exporter.tools.tiny.train import heldout_ids  # noqa: E402

ASSETS = Path(exporter.__file__).parent / "assets"
BASE, ADAPTER = ASSETS / "openelm-tiny", ASSETS / "openelm-tiny-adapters" / train_adapter.NAME
MIN_RELATIVE_DROP = 0.10


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.from_file(str(BASE / "tokenizer.json"))


@pytest.fixture(scope="module")
def heldout(tokenizer):
    return heldout_ids(tokenizer, (ADAPTER / "heldout.txt").read_text())


@pytest.fixture(scope="module")
def log():
    return json.loads((ADAPTER / "training_log.json").read_text())


@pytest.fixture(scope="module")
def adapted():
    return peft.PeftModel.from_pretrained(load_checkpoint(BASE), ADAPTER).eval()


def test_adapter_is_small_safetensors_lora():
    names = {p.name for p in ADAPTER.iterdir()}
    shipped = {"adapter_config.json", "adapter_model.safetensors", "heldout.txt", "training_log.json", "README.md"}
    assert shipped <= names
    assert not {n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))}  # no pickles
    config = json.loads((ADAPTER / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 8 and config["lora_alpha"] == 16
    assert set(config["target_modules"]) == {"token_embeddings", "qkv_proj", "out_proj", "proj_1", "proj_2"}
    assert (ADAPTER / "adapter_model.safetensors").stat().st_size < 2_000_000


def test_adapter_lowers_heldout_perplexity(adapted, heldout, log):
    base_ppl = perplexity(load_checkpoint(BASE), heldout)
    adapted_ppl = perplexity(adapted, heldout)
    assert adapted_ppl <= (1 - MIN_RELATIVE_DROP) * base_ppl, (base_ppl, adapted_ppl)
    # The figures the card and training log state are the ones this folder reproduces.
    assert base_ppl == pytest.approx(log["evaluation"]["base_perplexity"], rel=1e-3)
    assert adapted_ppl == pytest.approx(log["evaluation"]["adapter_perplexity"], rel=1e-3)
    assert f"{adapted_ppl:.2f}" in (ADAPTER / "README.md").read_text()


def test_adapter_changes_greedy_continuation(adapted, tokenizer, log):
    prompt = log["evaluation"]["samples"][0]["prompt"]
    base_text = train_adapter.greedy(load_checkpoint(BASE), tokenizer, prompt, new_tokens=16)
    adapted_text = train_adapter.greedy(adapted, tokenizer, prompt, new_tokens=16)
    assert base_text != adapted_text
    # Loading the adapter leaves the base weights alone: without it the model is OpenELM-tiny again.
    with adapted.disable_adapter():
        assert train_adapter.greedy(adapted, tokenizer, prompt, new_tokens=16) == base_text


def test_heldout_text_is_the_tail_and_never_trained_on(log):
    heldout_docs = [d for d in (ADAPTER / "heldout.txt").read_text().split("\n\n") if d.strip()]
    assert len(heldout_docs) == log["evaluation"]["heldout_entries"] == len(log["heldout_headwords"])
    assert log["train_entries"] + len(heldout_docs) == log["entries"]
    assert len(heldout_docs) == round(log["entries"] * train_adapter.HELDOUT_FRACTION)
    # The held-out entries are the dictionary's last ones (book order is alphabetical).
    assert heldout_docs[0].upper().startswith("TZETZE") and heldout_docs[-1].startswith("ZOOLOGY, n.")


def test_split_holds_out_a_tail_and_refuses_leaks():
    entries = [train_adapter.Entry(f"w{i}", f"W{i}, n. Definition number {i}.") for i in range(40)]
    train, heldout = train_adapter.split_entries(entries)
    assert heldout == entries[-2:] and train == entries[:-2]
    duplicated = entries[:-1] + [train_adapter.Entry("again", entries[3].text)]
    with pytest.raises(RuntimeError, match="held-out"):
        train_adapter.split_entries(duplicated)


def test_reads_and_cleans_a_dictd_database(tmp_path):
    # A two-entry database in dict-devil's layout: dictzip (gzip) data, a tab-separated base-64 index.
    entries = [
        b"ABSENTEE, n.  A person with an income who has had the forethought\nto remove himself.\n\n",
        b"ABSENT, adj.  Peculiarly _exposed_ to the tooth of\ndetraction.\n\n    To men a man is but a mind.\n"
        b"    What face he carries?\n                         Jogo Tyree\n\n",
    ]
    meta = b"00-database-short\n   The Devil's Dictionary\n"
    data = meta + entries[1] + entries[0]

    def b64(n: int) -> str:
        digits = ""
        while True:
            digits = train_adapter.DICTD_DIGITS[n % 64] + digits
            n //= 64
            if not n:
                return digits

    spans = [("00databaseshort", 0, len(meta)), ("absent", len(meta), len(entries[1])),
             ("absentee", len(meta) + len(entries[1]), len(entries[0]))]
    (tmp_path / "devil.index").write_text("".join(f"{w}\t{b64(o)}\t{b64(n)}\n" for w, o, n in sorted(spans)))
    with gzip.open(tmp_path / "devil.dict.dz", "wb") as f:
        f.write(data)
    read = train_adapter.read_entries(tmp_path / "devil.dict.dz")
    assert [e.headword for e in read] == ["absent", "absentee"]  # book order, metadata dropped
    assert read[0].text == ("ABSENT, adj. Peculiarly exposed to the tooth of detraction.\n"
                            "To men a man is but a mind.\nWhat face he carries?\nJogo Tyree")
    assert read[1].text == "ABSENTEE, n. A person with an income who has had the forethought to remove himself."
    assert train_adapter.dictd_number("BVA") == 64 * 64 + 21 * 64


@pytest.mark.skipif(not train_adapter.SOURCE.exists(), reason="dict-devil is not installed (make tiny-adapter)")
def test_installed_text_gives_the_shipped_split():
    train, heldout = train_adapter.split_entries(train_adapter.read_entries(train_adapter.SOURCE))
    shipped = (ADAPTER / "heldout.txt").read_text()
    assert shipped == "\n\n".join(e.text for e in heldout) + "\n"
    training_text = "\n\n".join(e.text for e in train)
    assert not any(doc in training_text for doc in shipped.split("\n\n") if doc.strip())
