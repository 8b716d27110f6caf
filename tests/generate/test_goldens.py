"""The golden files Swift reads are current (both copies), and replaying them in Python gives what they say."""

from __future__ import annotations

import json

import numpy as np
import pytest

from exporter.generate.chat import render_chat
from exporter.generate.drafters import DraftModelDrafter, PromptLookupDrafter
from exporter.generate.generator import GenerationOptions, generate
from exporter.generate.sampling import Sampler, SamplingParameters, SplitMix64
from exporter.tools import goldens
from tests.generate.replay import ReplayLanguageModel, poison_token, read_logit
from tests.generate.test_sampling import loop_sample

HINT = "stale: run `.venv/bin/python -m exporter.tools.goldens` and commit both copies"
LOGIT_TOLERANCE = 1e-4  # a rebuilt row may differ in the last bits on another CPU


def committed(name: str) -> str:
    python, swift = (path.read_text(encoding="utf-8") for path in goldens.golden_paths(name))
    assert python == swift, f"{name}: the Python and Swift copies differ; {HINT}"
    return python


@pytest.fixture(scope="module")
def golden():
    return {name: json.loads(committed(name)) for name in goldens.NAMES}


@pytest.mark.parametrize("name", ["chat_template", "sampling"])
def test_exact_goldens_are_current(name):
    assert committed(name) == goldens.dumps(goldens.BUILDERS[name]()), HINT


def test_speculative_golden_is_current(golden):
    rebuilt = json.loads(goldens.dumps(goldens.speculative_golden()))
    stored = golden["speculative"]
    for table in ("target_rows", "draft_rows"):
        stored_rows, rebuilt_rows = stored[table], rebuilt[table]
        assert stored_rows.keys() == rebuilt_rows.keys(), HINT
        for key, row in stored_rows.items():
            assert [t for t, _ in row] == [t for t, _ in rebuilt_rows[key]], HINT
            values = [(read_logit(a), read_logit(b)) for (_, a), (_, b) in zip(row, rebuilt_rows[key])]
            assert all(abs(a - b) <= LOGIT_TOLERANCE for a, b in values), HINT

    def without_rows(data):
        return {key: value for key, value in data.items() if not key.endswith("_rows")}

    assert without_rows(stored) == without_rows(rebuilt), HINT
    assert len(committed("speculative").encode()) < 300_000


def test_chat_golden_renders_with_render_chat(golden):
    chat = golden["chat_template"]
    assert len(chat["cases"]) >= 20
    for case in chat["cases"]:
        got = render_chat(chat["template"], case["messages"], case["add_generation_prompt"], chat["bos_token"],
                          chat["eos_token"])
        assert got == case["text"]


def test_sampling_golden_replays_with_both_samplers(golden):
    cases = golden["sampling"]["cases"]
    assert len(cases) >= 20
    for case in cases:
        parameters = SamplingParameters(**case["parameters"])
        rows = [np.array([read_logit(v) for v in row], dtype=np.float32) for row in case["steps"]]
        for row, written in zip(rows, case["steps"]):
            assert [goldens._float32(v) for v in row] == written  # float32 values that read back exactly
        sampler, rng = Sampler(parameters), SplitMix64(parameters.seed)
        fast, slow = list(case["context"]), list(case["context"])
        for row in rows:
            fast.append(sampler.next(row, fast))
            slow.append(loop_sample(row, slow, parameters, rng))
        assert fast[len(case["context"]):] == slow[len(case["context"]):] == case["tokens"], case["name"]


def test_sampling_golden_covers_every_setting(golden):
    cases = {case["name"]: case for case in golden["sampling"]["cases"]}
    parameters = [case["parameters"] for case in cases.values()]
    assert any(p["temperature"] == 0 and p["repetition_penalty"] != 1 for p in parameters)
    assert {0.05, 3.0} <= {p["temperature"] for p in parameters}
    off = {"top_k": 0, "top_p": 1, "min_p": 0, "repetition_penalty": 1}

    def settings_on(p):
        return {key for key, value in off.items() if p[key] != value}

    for key in off:  # each setting alone, with sampling
        assert any(settings_on(p) == {key} and p["temperature"] > 0 for p in parameters), key
    assert any(len(settings_on(p)) == 4 for p in parameters)  # and all together
    assert any(v == "-inf" for case in cases.values() for row in case["steps"] for v in row)
    assert all(64 <= len(case["steps"][0]) <= 300 and 10 <= len(case["steps"]) <= 20 for case in cases.values())


def replay_generate(golden: dict, case: dict, speculative: bool):
    target = ReplayLanguageModel.target(golden)
    drafter = None
    draft = ReplayLanguageModel.draft(golden)
    penalty = case["repetition_penalty"]
    if speculative:
        drafter = (PromptLookupDrafter() if case["drafter"] == "prompt_lookup"
                   else DraftModelDrafter(draft, repetition_penalty=penalty))
    options = GenerationOptions(case["max_new_tokens"], SamplingParameters(repetition_penalty=penalty))
    result = generate(target, case["prompt"], options, drafter)
    return result, drafter, target.unknown + draft.unknown


def test_speculative_golden_replays(golden):
    spec = golden["speculative"]
    assert {case["drafter"] for case in spec["cases"]} == {"prompt_lookup", "draft_model"}
    for case in spec["cases"]:
        plain, _, unknown = replay_generate(spec, case, speculative=False)
        assert plain.tokens == case["plain_tokens"] == case["speculative_tokens"] and unknown == 0, case["name"]
        fast, drafter, unknown = replay_generate(spec, case, speculative=True)
        assert fast.tokens == case["plain_tokens"] and unknown == 0, case["name"]
        assert goldens.speculative_calls(fast.stats, drafter) == case["calls"], case["name"]
    assert any(0 < c["calls"]["accepted"] < c["calls"]["proposed"] for c in spec["cases"])
    # The draft model takes each prompt through prefill, and some cases draft under the repetition penalty.
    drafted = [c for c in spec["cases"] if c["drafter"] == "draft_model"]
    assert all(c["calls"]["draft_prefill"] >= 1 for c in drafted if len(c["prompt"]) > 2)
    assert {c["repetition_penalty"] for c in drafted} == {1.0, goldens.SPECULATIVE_PENALTY}


def test_an_unrecorded_row_poisons_the_output(golden):
    spec = golden["speculative"]
    poison = poison_token(spec)
    assert all(poison not in case["prompt"] + case["plain_tokens"] for case in spec["cases"])
    model = ReplayLanguageModel.target(spec)
    case = spec["cases"][0]
    model.prefill(case["prompt"][:16], 0)
    assert int(np.argmax(model.decode(poison, 16))) == poison and model.unknown == 1  # a context never recorded
    model.prefill(case["prompt"][:16], 0)
    assert int(np.argmax(model.decode(case["prompt"][16], 20))) == poison  # a gap: slots 16..19 never written
