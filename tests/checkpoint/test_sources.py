"""Checkpoint and tokenizer resolution through huggingface_hub, offline, from a fake local cache."""

import json
import os
import subprocess
import sys

import pytest

from exporter.checkpoint.tokenizer import check_tokenizer, resolve_tokenizer
from exporter.errors import ExportError, UsageError
from exporter.model.load import random_state_dict, resolve_source, save_checkpoint

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fake_hub_cache(hf_home, repo_id, config, commit=COMMIT):
    """The on-disk layout huggingface_hub uses for a downloaded snapshot."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    save_checkpoint(snapshot, config, random_state_dict(config))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def run_offline(hf_home, code):
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_size_resolves_from_offline_cache(tmp_path, config):
    snapshot = fake_hub_cache(tmp_path, "apple/OpenELM-270M-Instruct", config)
    code = (
        "from exporter.model.load import load_checkpoint, resolve_source\n"
        "s = resolve_source(size='270m', instruct=True)\n"
        "print(s.folder); print(s.to_dict()); print(load_checkpoint(s.folder).config.num_query_heads)"
    )
    result = run_offline(tmp_path, code)
    assert result.returncode == 0, result.stderr
    folder, source, heads = result.stdout.strip().splitlines()[-3:]
    assert os.path.samefile(folder, snapshot)
    assert source == str({"hub_id": "apple/OpenELM-270M-Instruct", "revision": COMMIT})
    assert heads == str(config.num_query_heads)


def test_size_not_in_offline_cache_explains(tmp_path):
    code = "from exporter.model.load import resolve_source\nresolve_source(size='450m')"
    result = run_offline(tmp_path, code)
    assert result.returncode != 0
    assert "cannot get the checkpoint apple/OpenELM-450M" in result.stderr
    assert "pass --model-dir" in result.stderr


def test_model_dir_and_conflicts(checkpoint_dir, tmp_path):
    assert resolve_source(model_dir=checkpoint_dir).to_dict() == {"folder": str(checkpoint_dir.resolve())}
    with pytest.raises(UsageError, match="cannot be combined"):
        resolve_source(size="270m", model_dir=checkpoint_dir)
    with pytest.raises(UsageError, match="--size"):
        resolve_source()
    with pytest.raises(ExportError, match="no such folder"):
        resolve_source(model_dir=tmp_path / "missing")


def llama_style_tokenizer(folder):
    """A minimal tokenizer.json in LLaMA's layout (BPE with byte fallback)."""
    from tokenizers import Tokenizer, decoders, models, normalizers

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"<0x{b:02X}>": 3 + b for b in range(256)}, "▁": 259, "a": 260}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": True}))
    return folder


def test_tokenizer_from_local_folder(tmp_path):
    folder = llama_style_tokenizer(tmp_path / "tok")
    assert resolve_tokenizer(str(folder)) == folder
    tok = check_tokenizer(folder)
    assert tok.decode(tok.encode("a é").ids) == " a é"  # byte fallback round trip


def test_tokenizer_folder_without_tokenizer_json(tmp_path):
    with pytest.raises(ExportError, match="no tokenizer.json in that folder"):
        resolve_tokenizer(str(tmp_path))


def test_corrupt_tokenizer_json(tmp_path):
    folder = llama_style_tokenizer(tmp_path / "tok")
    (folder / "tokenizer.json").write_text('{"model": {"type": "BPE", "vocab": ')
    with pytest.raises(ExportError, match=r"tokenizer.json: not a valid tokenizer.json"):
        check_tokenizer(folder)


def test_gated_tokenizer_offline_gives_instructions(tmp_path):
    code = "from exporter.checkpoint.tokenizer import resolve_tokenizer\nresolve_tokenizer('meta-llama/Llama-2-7b-hf')"
    result = run_offline(tmp_path, code)
    assert result.returncode != 0
    assert "cannot get the tokenizer meta-llama/Llama-2-7b-hf" in result.stderr
    assert "--tokenizer with a local folder" in result.stderr and "--no-tokenizer" in result.stderr


def test_tokenizer_spec_that_is_neither_folder_nor_repo(tmp_path):
    with pytest.raises(UsageError, match="neither an existing folder nor a Hub repo id"):
        resolve_tokenizer(str(tmp_path / "missing" / "dir"))
