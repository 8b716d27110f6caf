"""Golden files shared by Python (exporter.generate) and Swift (ELMKit): chat templates, sampling, speculative decoding.

    .venv/bin/python -m exporter.tools.goldens

rewrites tests/data/golden/<name>.json and the identical swift_harness/Tests/ELMKitTests/Fixtures/golden_<name>.json.
The output depends only on the code and the embedded model, so tests/generate/test_goldens.py rebuilds it in
memory and fails when a committed copy is stale. Logits rows are float32 values written so they read back
exactly; -inf is written as the string "-inf" (JSON has no infinity; Swift reads it with JSONDecoder's
`.convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")`).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from exporter.checkpoint.chat import OPENELM_CHAT_TEMPLATE
from exporter.generate.drafters import DraftModelDrafter, PromptLookupDrafter
from exporter.generate.generator import GenerationOptions, generate
from exporter.generate.reference_model import ReferenceLanguageModel
from exporter.generate.sampling import Sampler, SamplingParameters

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "exporter" / "assets"
TINY = ASSETS / "openelm-tiny"
TINY_DRAFT = ASSETS / "openelm-tiny-draft"  # the draft model once it is there, else the tiny model drafts for itself
PYTHON_DIR = ROOT / "tests" / "data" / "golden"
SWIFT_DIR = ROOT / "swift_harness" / "Tests" / "ELMKitTests" / "Fixtures"
NAMES = ("chat_template", "sampling", "speculative")
BOS, EOS = "<s>", "</s>"


def golden_paths(name: str) -> tuple[Path, Path]:
    return PYTHON_DIR / f"{name}.json", SWIFT_DIR / f"golden_{name}.json"


def _turns(*pairs: str) -> list[dict]:
    return [{"role": role, "content": content} for role, content in zip(pairs[::2], pairs[1::2])]


CONVERSATIONS = [  # each rendered with and without the generation prompt
    _turns("user", "Hello!"),
    _turns("system", "You are a helpful assistant.", "user", "What is the capital of France?"),
    _turns("user", "Hi", "assistant", "Hello! How can I help?", "user", "Tell me a joke."),
    _turns("system", "Answer briefly.", "user", "2+2?", "assistant", "4", "user", "And 3+3?", "assistant", "6"),
    _turns("user", "Crème brûlée, naïve café, São Paulo, Ångström"),
    _turns("user", "東京はどこですか？", "assistant", "日本の首都です。한국어도 돼요."),
    _turns("user", "Emoji: 🙂👍🏽👨\u200d👩\u200d👧\u200d👦🇫🇷 1️⃣"),
    _turns("system", "مرحبا بالعالم", "user", "שלום עולם and English mixed"),
    _turns("user", ""),
    _turns("system", "", "user", "empty system prompt", "assistant", ""),
    _turns("user", "line one\nline two\n\nline four\n"),
    _turns("user", "\n leading and trailing whitespace \t "),
    _turns("user", "She said \"hi\" and 'bye'; braces {like} {{these}} {% and %} {# this #}"),
    _turns("user", "<|user|>\nA fake turn</s><s>", "assistant", "<|assistant|> tags inside content"),
    _turns("assistant", "An assistant turn first."),
    _turns("system", "Only a system message."),
    _turns("user", "def f(x):\n    return {'a': [1, 2]}[x]\n"),
    _turns("tool", "a role the template skips", "user", "after the skipped role"),
    _turns("user", "Tabs\tand\\backslashes\\n and unicode escapes \\u00e9"),
    _turns("user", "Zero\u200bwidth, non\u00a0breaking, soft\u00adhyphen, bom\ufeff"),
    _turns(*("user", "one", "assistant", "two") * 3),
    _turns("user", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and astral \U0001F600 plus a lone combining e\u0301"),
]


def chat_golden() -> dict:
    """Texts from transformers' apply_chat_template, the behaviour render_chat must reproduce."""
    import transformers  # slow to import: only here

    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=str(TINY / "tokenizer.json"), bos_token=BOS,
                                                     eos_token=EOS, unk_token="<unk>")
    cases = [{"messages": messages, "add_generation_prompt": prompt,
              "text": tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt,
                                                    chat_template=OPENELM_CHAT_TEMPLATE)}
             for messages in CONVERSATIONS for prompt in (False, True)]
    return {"template": OPENELM_CHAT_TEMPLATE, "bos_token": BOS, "eos_token": EOS, "cases": cases}


# name: (vocab, steps, logits style, sampling settings). Styles: "normal", "peaked" (a few boosted tokens, so the
# penalty bites), "ties" (values on a 0.5 grid), "neg_inf" (a third -inf, some rows all but one), "long_tail"
# (one token far above the rest, so top-p's cutoff loop goes round).
SAMPLING_CASES = {
    "greedy": (64, 12, "normal", {}),
    "greedy_ties": (80, 12, "ties", {}),
    "greedy_penalty": (128, 15, "peaked", {"repetition_penalty": 1.2}),
    "greedy_penalty_negative": (96, 15, "negative", {"repetition_penalty": 1.5}),
    "temperature_1": (100, 15, "normal", {"temperature": 1.0, "seed": 1}),
    "temperature_cold": (150, 15, "normal", {"temperature": 0.05, "seed": 2}),
    "temperature_hot": (150, 20, "normal", {"temperature": 3.0, "seed": 3}),
    "top_k": (120, 15, "normal", {"temperature": 1.0, "top_k": 5, "seed": 4}),
    "top_k_ties": (90, 15, "ties", {"temperature": 0.8, "top_k": 7, "seed": 5}),
    "top_k_above_vocab": (64, 10, "normal", {"temperature": 1.0, "top_k": 500, "seed": 6}),
    "top_p": (160, 15, "normal", {"temperature": 1.0, "top_p": 0.9, "seed": 7}),
    "top_p_small": (180, 12, "normal", {"temperature": 1.0, "top_p": 0.05, "seed": 8}),
    "top_p_ties": (100, 15, "ties", {"temperature": 1.0, "top_p": 0.5, "seed": 9}),
    "top_p_long_tail": (256, 12, "long_tail", {"temperature": 1.0, "top_p": 0.99, "seed": 10}),
    "min_p": (150, 15, "normal", {"temperature": 1.0, "min_p": 0.1, "seed": 11}),
    "min_p_strict": (160, 15, "normal", {"temperature": 1.5, "min_p": 0.5, "seed": 12}),
    "neg_inf": (128, 15, "neg_inf", {"temperature": 1.0, "seed": 13}),
    "neg_inf_combined": (128, 15, "neg_inf", {"temperature": 0.9, "top_k": 10, "top_p": 0.9, "min_p": 0.05,
                                              "seed": 14}),
    "penalty_sampled": (128, 20, "peaked", {"temperature": 1.0, "repetition_penalty": 1.2, "seed": 15}),
    "combined": (200, 20, "peaked", {"temperature": 0.7, "top_k": 40, "top_p": 0.9, "min_p": 0.05,
                                     "repetition_penalty": 1.2, "seed": 16}),
    "combined_hot": (240, 20, "normal", {"temperature": 1.5, "top_k": 100, "top_p": 0.95, "min_p": 0.02,
                                         "repetition_penalty": 1.1, "seed": 17}),
    "large_seed": (100, 15, "normal", {"temperature": 1.0, "top_p": 0.8, "seed": 2**53 - 1}),
}


def sampling_logits(rng: np.random.Generator, vocab: int, steps: int, style: str) -> np.ndarray:
    logits = rng.standard_normal((steps, vocab)) * 2
    if style in ("peaked", "negative"):
        favourites = rng.choice(vocab, 6, replace=False)
        logits[:, favourites] += 6 if style == "peaked" else -3
        if style == "negative":
            logits -= 4  # mostly negative: the penalty multiplies them
    elif style == "ties":
        logits = np.round(logits * 2) / 2
    elif style == "neg_inf":
        logits[rng.random((steps, vocab)) < 0.33] = -np.inf
        logits[::5, 1:] = -np.inf  # only token 0 can be drawn
    elif style == "long_tail":
        logits = rng.standard_normal((steps, vocab)) * 0.1 - 9.2
        logits[np.arange(steps), rng.integers(0, vocab, steps)] = 0
    return np.round(logits, 3).astype(np.float32)  # short decimals keep the file small


def sampling_golden() -> dict:
    cases = []
    for number, (name, (vocab, steps, style, settings)) in enumerate(SAMPLING_CASES.items()):
        rng = np.random.default_rng(1000 + number)
        rows = sampling_logits(rng, vocab, steps, style)
        parameters = SamplingParameters(**settings)
        start = [int(t) for t in rng.integers(0, vocab, 8)]
        context, sampler = list(start), Sampler(parameters)
        tokens = []
        for row in rows:
            tokens.append(sampler.next(row, context))
            context.append(tokens[-1])
        cases.append({"name": name, "parameters": {key: getattr(parameters, key) for key in PARAMETER_KEYS},
                      "context": start, "steps": [[_float32(v) for v in row] for row in rows], "tokens": tokens})
    return {"cases": cases}


PARAMETER_KEYS = ("temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed")


def _float32(value) -> float | str:
    """A float32 as the shortest decimal that reads back as it (through a double too), "-inf" for -inf."""
    value = np.float32(value)
    if value == -np.inf:
        return "-inf"
    short = float(str(value))
    return short if np.float32(short) == value else float(value)


class RecordingModel:
    """Passes calls through to a model and keeps the top logits of every row it returns, keyed by the tokens the
    row follows (the cache's tokens up to the row's position: the mask is position based)."""

    def __init__(self, model, top: int = 8):
        self.model, self.top = model, top
        self.slots: list[int] = []
        self.rows: dict[str, list[list]] = {}
        for name in ("context_length", "prefill_length", "vocab_size", "prefill_gives_logits", "verify_length"):
            setattr(self, name, getattr(model, name))

    def reset(self) -> None:
        self.model.reset()
        self.slots = []

    def prefill(self, tokens, position):
        return self._record(self.model.prefill(tokens, position), tokens, position)

    def decode(self, token, position):
        return self._record(self.model.decode(token, position)[None], [token], position)[0]

    def verify(self, tokens, position):
        return self._record(self.model.verify(tokens, position), tokens, position)

    def _record(self, rows: np.ndarray, tokens: list[int], position: int) -> np.ndarray:
        self.slots = (self.slots + [-1] * position)[:position] + [int(t) for t in tokens]
        for offset, row in enumerate(rows):
            best = np.argsort(-row, kind="stable")[: self.top]
            key = ",".join(map(str, self.slots[: position + offset + 1]))
            self.rows[key] = [[int(t), _float32(row[t])] for t in best]
        return rows


SPECULATIVE_SETUP = {"context_length": 128, "prefill_length": 16, "verify_length": 5, "max_new_tokens": 40}
SPECULATIVE_PROMPTS = {
    "prompt_lookup": [
        "And God said, Let there be light: and there was light. And God saw the light, that it was good. And God said",
        "And the LORD spake unto Moses, saying, Speak unto the children of Israel, and say unto them,",
        "In the beginning",
    ],
    "draft_model": [
        "In the beginning God created the heaven and the earth.",
        "And it came to pass, when men began to multiply on the face of the earth, and daughters were born",
        "Blessed",
    ],
}
# Draft model cases under OpenELM's repetition penalty: the drafter applies it too (penalty-aware drafting).
SPECULATIVE_PENALTY = 1.2
SPECULATIVE_PENALIZED = [
    "And God called the light Day, and the darkness he called Night. And the evening and the morning were",
    "The",
]


def speculative_cases() -> list[tuple[str, str, str, float]]:
    """(name, drafter, prompt text, repetition penalty) of every speculative case."""
    cases = [(f"{drafter}_{number}", drafter, text, 1.0)
             for drafter, prompts in SPECULATIVE_PROMPTS.items() for number, text in enumerate(prompts)]
    return cases + [(f"draft_model_penalty_{number}", "draft_model", text, SPECULATIVE_PENALTY)
                    for number, text in enumerate(SPECULATIVE_PENALIZED)]


@contextmanager
def _one_thread():
    """One torch thread: faster for a model this small, and the same float sums on every run."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def draft_checkpoint() -> Path:
    finished = all((TINY_DRAFT / name).exists() for name in ("config.json", "model.safetensors"))
    return TINY_DRAFT if finished else TINY


def speculative_golden() -> dict:
    from tokenizers import Tokenizer

    setup = SPECULATIVE_SETUP
    tokenizer = Tokenizer.from_file(str(TINY / "tokenizer.json"))
    bos = tokenizer.token_to_id(BOS)
    sizes = (setup["context_length"], setup["prefill_length"])
    target = RecordingModel(ReferenceLanguageModel(TINY, *sizes, setup["verify_length"]))
    draft = RecordingModel(ReferenceLanguageModel(draft_checkpoint(), *sizes))
    cases = []
    with _one_thread():
        for name, drafter_name, text, penalty in speculative_cases():
            options = GenerationOptions(setup["max_new_tokens"], SamplingParameters(repetition_penalty=penalty))
            prompt = [bos] + tokenizer.encode(text, add_special_tokens=False).ids
            plain = generate(target, prompt, options)
            drafter = (PromptLookupDrafter() if drafter_name == "prompt_lookup"
                       else DraftModelDrafter(draft, repetition_penalty=penalty))
            fast = generate(target, prompt, options, drafter)
            if fast.tokens != plain.tokens:
                raise AssertionError(f"{name}: speculative tokens differ from plain ones")
            cases.append({"name": name, "prompt": prompt, "drafter": drafter_name, "repetition_penalty": penalty,
                          "max_new_tokens": setup["max_new_tokens"], "plain_tokens": plain.tokens,
                          "speculative_tokens": fast.tokens, "calls": speculative_calls(fast.stats, drafter)})
    return {"vocab_size": target.vocab_size, **{k: setup[k] for k in ("context_length", "prefill_length",
                                                                         "verify_length")},
            "prefill_gives_logits": True, "cases": cases, "target_rows": target.rows, "draft_rows": draft.rows}


def speculative_calls(stats, drafter) -> dict:
    """What a replay must repeat: the target's decode and verify calls, the drafts, and the draft model's calls."""
    drafted = getattr(drafter, "model_calls", {})
    return {"decode": stats.calls["decode"], "verify": stats.calls["verify"], "accepted": stats.draft_accepted,
            "proposed": stats.draft_proposed, "draft_prefill": drafted.get("prefill", 0),
            "draft_decode": drafted.get("decode", 0)}


BUILDERS = {"chat_template": chat_golden, "sampling": sampling_golden, "speculative": speculative_golden}


def dumps(data: dict) -> str:
    """JSON with one line per top-level entry's element: readable diffs, no line per float."""
    def compact(value):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    parts = []
    for key, value in data.items():
        if isinstance(value, list) and value:
            body = "[\n" + ",\n".join(f"  {compact(v)}" for v in value) + "\n ]"
        elif isinstance(value, dict) and value:
            body = "{\n" + ",\n".join(f"  {compact(k)}:{compact(v)}" for k, v in value.items()) + "\n }"
        else:
            body = compact(value)
        parts.append(f" {compact(key)}: {body}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main() -> None:
    for name in NAMES:
        text = dumps(BUILDERS[name]())
        for path in golden_paths(name):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)} ({len(text.encode()) / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
