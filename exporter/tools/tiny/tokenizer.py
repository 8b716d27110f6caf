"""Train a small byte-fallback BPE tokenizer and save it in LLaMA-2's Hugging Face format.

OpenELM uses LLaMA-2's SentencePiece tokenizer; ours has the same shape at a 4096-token
vocabulary, so every tool that handles LLaMA-2's tokenizer.json handles ours:
<unk>=0, <s>=1 (prepended), </s>=2, the 256 byte tokens <0x00>..<0xFF> at ids 3..258
(any character the vocabulary lacks is spelled in UTF-8 bytes), then the learned pieces.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = [UNK, BOS, EOS]
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]
SPACE = "\u2581"  # "▁", SentencePiece's visible space
DEFAULT_VOCAB_SIZE = 4096


def train_pieces(lines: Iterable[str], vocab_size: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Learned pieces (in merge order) and merges of a BPE over `lines`, words split SentencePiece-style.

    Splitting at spaces during training keeps merges inside words, as SentencePiece does;
    the saved tokenizer then needs no pre-tokenizer, like LLaMA-2's.
    """
    bpe = Tokenizer(models.BPE(unk_token=UNK))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(BYTE_TOKENS),  # the byte tokens are added afterwards
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    bpe.train_from_iterator(lines, trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    pieces = [p for p, _ in sorted(model["vocab"].items(), key=lambda item: item[1]) if p not in SPECIAL_TOKENS]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return pieces, merges


def build_llama_tokenizer(pieces: list[str], merges: list[tuple[str, str]]) -> Tokenizer:
    """A tokenizer with exactly LLaMA-2's tokenizer.json pipeline around our pieces and merges."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + BYTE_TOKENS)}
    for piece in pieces:
        vocab.setdefault(piece, len(vocab))
    tokenizer = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token=UNK, fuse_unk=True, byte_fallback=True)
    )
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS}:0 $A:0",
        pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1",
        special_tokens=[(BOS, vocab[BOS])],
    )
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in SPECIAL_TOKENS])
    return tokenizer


def train_tokenizer(lines: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE) -> Tokenizer:
    pieces, merges = train_pieces(lines, vocab_size)
    tokenizer = build_llama_tokenizer(pieces, merges)
    if tokenizer.get_vocab_size() != vocab_size:
        raise RuntimeError(f"tokenizer has {tokenizer.get_vocab_size()} tokens, expected {vocab_size}")
    return tokenizer


def tokenizer_config(model_max_length: int) -> dict:
    """LLaMA-2's tokenizer_config.json, with our context length."""

    def added(content: str) -> dict:
        return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": False,
                "rstrip": False, "single_word": False}

    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": added(BOS),
        "clean_up_tokenization_spaces": False,
        "eos_token": added(EOS),
        "legacy": False,
        "model_max_length": model_max_length,
        "pad_token": None,
        "padding_side": "right",
        "sp_model_kwargs": {},
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": added(UNK),
    }


def save_tokenizer(tokenizer: Tokenizer, folder: Path, model_max_length: int) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(model_max_length), indent=2) + "\n")


def encode_documents(tokenizer: Tokenizer, documents: Iterable[str]) -> list[int]:
    """One token stream: each document as <s> text </s>, the layout the model is trained on."""
    eos_id = tokenizer.token_to_id(EOS)
    ids: list[int] = []
    for encoding in tokenizer.encode_batch(list(documents)):
        ids.extend(encoding.ids)
        ids.append(eos_id)
    return ids
