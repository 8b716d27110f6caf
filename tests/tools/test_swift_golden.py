"""Golden data for the Swift harness (swift_harness/), produced by Python from the embedded tiny model.

Swift's tests replay these files: the tokenizer fixture checks that ELMKit's `Tokenizer` encodes
and decodes exactly as Hugging Face `tokenizers` does, and the replay fixture checks that
ELMKit's `Generator` reproduces the reference model's greedy tokens and text from its logits.
The tests here fail when a fixture no longer matches what Python produces, so the two sides
cannot drift apart. Rewrite the fixtures with:

    .venv/bin/python tests/test_swift_golden.py --write
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASSET_DIR = ROOT / "exporter" / "assets" / "openelm-tiny"
FIXTURES = ROOT / "swift_harness" / "Tests" / "ELMKitTests" / "Fixtures"
TOKENIZER_FIXTURE = FIXTURES / "tokenizer.json"
TOKENIZER_GOLDEN = FIXTURES / "tokenizer_golden.json"
REPLAY_GOLDEN = FIXTURES / "replay_golden.json"
WRITE_HINT = "run `.venv/bin/python tests/test_swift_golden.py --write` and commit the fixtures"

# Replay settings: a prefill chunk shorter than the prompt, so the Swift side chunks and pads.
REPLAY_PROMPT = "In the beginning God created the heaven and the earth. And God said"  # the tiny model read the KJV
REPLAY_PREFILL_LENGTH = 8
REPLAY_MAX_NEW_TOKENS = 24
REPLAY_TOP_LOGITS = 50  # per row; Swift fills the rest with -inf (the fixture stays small)
LOGIT_TOLERANCE = 1e-3  # recomputed logits may differ in the last bits across CPUs

ASCII_SENTENCES = [
    "Hello",
    "Hello world",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "OpenELM runs on the Neural Engine.",
    "It's a well-known fact; isn't it?",
    "Don't panic.",
    "3.14159",
    "1,000,000 dollars",
    "x = 1 + 2 * 3 - 4 / 5",
    "def f(x):\n    return x ** 2\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "https://huggingface.co/apple/OpenELM-270M",
    "mail me at someone@example.com",
    "ALL CAPS TEXT",
    "MiXeD cAsE wOrDs",
    "snake_case_name and camelCaseName",
    "(parentheses) [brackets] {braces} <angles>",
    "!@#$%^&*()_+-=~`|\\:;\"',./?",
    "a",
    "I",
    "Z",
    "0",
    "12345678901234567890",
    "The year 2024 had 366 days.",
    "Once upon a time, there was a fisherman.",
]

UNICODE_STRINGS = [
    # Accents, precomposed and combining (HF splits per scalar, not per grapheme).
    "café", "naïve", "résumé", "Crème brûlée", "Ångström", "Zoë", "año", "São Paulo", "Straße", "Œuvre",
    "e\u0301", "cafe\u0301", "a\u0300\u0301\u0302\u0303", "n\u0303o", "\u00e9 vs e\u0301", "A\u030a",
    # CJK and other scripts.
    "東京", "日本語のテキスト", "中文测试", "繁體中文", "한국어 텍스트", "Hello 世界", "ｆｕｌｌｗｉｄｔｈ",
    "Привет, мир", "Ελληνικά", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Tiếng Việt",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𓀀𓀁", "\U00010000", "\U0010ffff", "\u0378", "\ue000",
    # Emoji: plain, skin tones, ZWJ sequences, variation selectors, flags, keycaps.
    "🙂", "😀😃😄", "👍", "👍🏽", "👋🏿 hi", "👨\u200d👩\u200d👧\u200d👦", "👩🏾\u200d💻", "🏳️\u200d🌈", "❤️", "❤",
    "🇫🇷🇯🇵", "1️⃣", "I ❤️ Swift 🚀!", "🧑🏻\u200d🤝\u200d🧑🏿",
    # Unusual spaces and invisible characters.
    "a\u00a0b", "a\u2003b", "a\u3000b", "zero\u200bwidth", "a\u200db", "\ufeffbom", "\ufffd", "soft\u00adhyphen",
    # Control characters.
    "\x00", "a\x01b", "\x07bell", "\x7f", "\x1b[31mred\x1b[0m", "line\x0bvtab", "form\x0cfeed", "\x85next",
]

WHITESPACE_STRINGS = [
    "", " ", "  ", "   ", "\t", "\n", "\r\n", " \t\n ", "\n\n\n",
    " Hello", "Hello ", "  Hello  world  ", "a  b", "a   b", "a    b", "a\tb", "a\t\tb", "a\nb", "a\n\nb",
    "   leading", "trailing   ", "\tindented", "tab\t", "mixed \t \n whitespace", " \u3000 ",
]

SPECIAL_TOKEN_TEXT = [
    "<s>", "</s>", "<unk>", "<s>Hello</s>", " <s> ", "<s><s>", "</s></s>", "a<s>b", "a <s> b", "<s", "s>", "</s",
    "<<s>>", "</s><s>", "<s> </s>", "<unk>x<unk>", "Hello</s>", "x <s>", "<S>", "< s >", "<0x41>", "<0x0A>",
    "▁", "▁▁hello", "hello▁world", "▁ ▁",
]

WORDS = ["the", "model", "Neural", "engine", "tokens", "naïve", "東京", "🙂", "x", "fisherman"]


def golden_strings() -> list[str]:
    """The texts the Swift tokenizer must encode exactly as Python does (deterministic, ≥ 200)."""
    strings = ASCII_SENTENCES + UNICODE_STRINGS + WHITESPACE_STRINGS + SPECIAL_TOKEN_TEXT
    for word in WORDS:  # the same word in every position BPE treats differently
        strings += [word, " " + word, word + " ", "  " + word, word.capitalize(), f"{word} {word}", f"<s>{word}"]
    strings.append(" ".join(ASCII_SENTENCES) * 8)  # a long text: thousands of characters in one piece
    strings.append("".join(UNICODE_STRINGS))
    return list(dict.fromkeys(strings))  # drop duplicates, keep order


def decode_cases(tokenizer, count: int = 40) -> list[list[int]]:
    """Id lists for decoding: byte-token runs (valid and invalid UTF-8), specials, unknown ids, random mixes."""
    byte = {b: tokenizer.token_to_id(f"<0x{b:02X}>") for b in range(256)}
    bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    hello = tokenizer.encode("Hello world", add_special_tokens=False).ids
    cases = [
        [],
        [bos],
        [bos, *hello, eos],
        [byte[b] for b in "é🙂".encode()],  # valid multi-byte runs
        [byte[0xF0], byte[0x9F], byte[0x99]],  # truncated 4-byte sequence
        [byte[0x80]],  # lone continuation byte
        [byte[0xC3], *hello, byte[0xA9]],  # a run split by another token
        [byte[0xE6], byte[0x9D], byte[0xB1], byte[0xFF], byte[0x41]],  # valid then invalid in one run
        [*hello, byte[0x20], byte[0x20]],
        [tokenizer.get_vocab_size() + 5, *hello],  # unknown ids are dropped
    ]
    rng = random.Random(1234)
    vocab = tokenizer.get_vocab_size()
    for _ in range(count):
        length = rng.randint(1, 24)
        pool = [rng.randrange(vocab) for _ in range(length)]
        pool += [byte[rng.randrange(256)] for _ in range(rng.randint(0, 6))]
        rng.shuffle(pool)
        cases.append(pool)
    return cases


def tokenizer_golden() -> dict:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(ASSET_DIR / "tokenizer.json"))
    encode = []
    for text in golden_strings():
        ids = tokenizer.encode(text).ids
        encode.append({
            "text": text,
            "ids": ids,
            "ids_without_bos": tokenizer.encode(text, add_special_tokens=False).ids,
            "decoded": tokenizer.decode(ids),
            "decoded_with_special": tokenizer.decode(ids, skip_special_tokens=False),
        })
    decode = [
        {"ids": ids, "text": tokenizer.decode(ids), "text_with_special": tokenizer.decode(ids, skip_special_tokens=False)}
        for ids in decode_cases(tokenizer)
    ]
    return {
        "bos_token_id": tokenizer.token_to_id("<s>"),
        "eos_token_id": tokenizer.token_to_id("</s>"),
        "vocab_size": tokenizer.get_vocab_size(),
        "encode": encode,
        "decode": decode,
    }


def reference_model():
    from exporter.model.load import load_checkpoint

    return load_checkpoint(ASSET_DIR)


def top_logits(row) -> dict:
    """The highest `REPLAY_TOP_LOGITS` entries of a float32 row, as ids and exact float32 values."""
    import torch

    values, ids = torch.topk(row, REPLAY_TOP_LOGITS)
    return {"ids": ids.tolist(), "values": [float(v) for v in values]}


def replay_golden() -> dict:
    """What ELMKit's Generator sees when driving the reference model greedily, call by call."""
    import torch
    from tokenizers import Tokenizer

    from exporter.model.openelm import KVCache

    tokenizer = Tokenizer.from_file(str(ASSET_DIR / "tokenizer.json"))
    model = reference_model()
    config = model.config
    prompt_ids = tokenizer.encode(REPLAY_PROMPT).ids
    input_ids = torch.tensor([prompt_ids])
    eos = tokenizer.token_to_id("</s>")

    with torch.no_grad():
        cache = KVCache(config.num_transformer_layers)
        prompt_logits = model(input_ids, cache)[0]
        calls = []
        for start in range(0, len(prompt_ids), REPLAY_PREFILL_LENGTH):
            chunk = prompt_ids[start:start + REPLAY_PREFILL_LENGTH]
            rows = [top_logits(prompt_logits[start + i]) for i in range(len(chunk))]
            calls.append({"function": "prefill", "position": start, "tokens": chunk, "rows": rows})
        # Greedy decoding as OpenELM.generate does it, keeping each step's logits.
        logits = prompt_logits[-1]
        generated: list[int] = []
        while len(generated) < REPLAY_MAX_NEW_TOKENS:
            token = int(logits.argmax())
            generated.append(token)
            if token == eos or len(prompt_ids) + len(generated) >= config.max_context_length:
                break
            if len(generated) == REPLAY_MAX_NEW_TOKENS:
                break
            position = len(prompt_ids) + len(generated) - 1
            logits = model(torch.tensor([[token]]), cache)[0, -1]
            calls.append({"function": "decode", "position": position, "tokens": [token], "rows": [top_logits(logits)]})
        reference = model.generate(input_ids, REPLAY_MAX_NEW_TOKENS, eos_token_id=eos)[0, len(prompt_ids):].tolist()
    assert generated == reference, "the recorded greedy loop diverged from OpenELM.generate"
    return {
        "prompt": REPLAY_PROMPT,
        "prompt_ids": prompt_ids,
        "context_length": config.max_context_length,
        "prefill_length": REPLAY_PREFILL_LENGTH,
        "vocab_size": config.vocab_size,
        "eos_token_id": eos,
        "max_new_tokens": REPLAY_MAX_NEW_TOKENS,
        "calls": calls,
        "expected_tokens": generated,
        "expected_text": tokenizer.decode(generated),
    }


def render(data: dict) -> str:
    # ASCII-only JSON (\u escapes): no editor or tool can re-normalize the Unicode test strings.
    return json.dumps(data, ensure_ascii=True, indent=1) + "\n"


def write_fixtures() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ASSET_DIR / "tokenizer.json", TOKENIZER_FIXTURE)
    TOKENIZER_GOLDEN.write_text(render(tokenizer_golden()))
    REPLAY_GOLDEN.write_text(render(replay_golden()))


def test_tokenizer_fixture_is_the_embedded_tokenizer():
    assert TOKENIZER_FIXTURE.read_bytes() == (ASSET_DIR / "tokenizer.json").read_bytes(), (
        f"{TOKENIZER_FIXTURE} differs from {ASSET_DIR / 'tokenizer.json'}; {WRITE_HINT}"
    )


def test_golden_strings_cover_the_required_cases():
    strings = golden_strings()
    assert len(strings) >= 200
    for required in ["", "<s>", "</s>", "👨\u200d👩\u200d👧\u200d👦", "👍🏽", "e\u0301", "\x00", " Hello", "Hello ", "a\tb"]:
        assert required in strings
    assert max(len(s) for s in strings) > 2000


def test_tokenizer_golden_is_current():
    assert TOKENIZER_GOLDEN.read_text() == render(tokenizer_golden()), f"{TOKENIZER_GOLDEN} is stale; {WRITE_HINT}"


@pytest.fixture(scope="module")
def replay_pair():
    if not (ASSET_DIR / "config.json").exists():
        pytest.fail(f"{ASSET_DIR} has no model weights (config.json + model.safetensors)")
    return json.loads(REPLAY_GOLDEN.read_text()), replay_golden()


def test_replay_golden_tokens_and_calls_are_current(replay_pair):
    committed, current = replay_pair
    for key in ("prompt", "prompt_ids", "context_length", "prefill_length", "vocab_size", "eos_token_id",
                "max_new_tokens", "expected_tokens", "expected_text"):
        assert committed[key] == current[key], f"replay fixture field {key!r} is stale; {WRITE_HINT}"
    shape = lambda calls: [(c["function"], c["position"], c["tokens"], len(c["rows"])) for c in calls]  # noqa: E731
    assert shape(committed["calls"]) == shape(current["calls"]), f"replay calls are stale; {WRITE_HINT}"


def test_replay_golden_logits_are_current(replay_pair):
    # The rows that decide tokens are covered by expected_tokens; here every recorded value is checked.
    committed, current = replay_pair
    for old_call, new_call in zip(committed["calls"], current["calls"]):
        for old, new in zip(old_call["rows"], new_call["rows"]):
            recomputed = dict(zip(new["ids"], new["values"]))
            for token, value in zip(old["ids"], old["values"]):
                if token in recomputed:  # the 50th place may swap between near-ties
                    assert abs(recomputed[token] - value) <= LOGIT_TOLERANCE * max(1.0, abs(value)), (
                        f"{old_call['function']} at position {old_call['position']}: logit of token {token} "
                        f"is {recomputed[token]}, the fixture has {value}; {WRITE_HINT}"
                    )


def test_replay_fixture_is_small():
    assert REPLAY_GOLDEN.stat().st_size < 1_000_000


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {sys.argv[0]} --write   (rewrites {FIXTURES.relative_to(ROOT)})")
    sys.path.insert(0, str(ROOT))
    write_fixtures()
    print(f"wrote {TOKENIZER_FIXTURE.name}, {TOKENIZER_GOLDEN.name}, {REPLAY_GOLDEN.name} in {FIXTURES}")
