"""elm-run on real exports of the embedded model: streamed text and tokens/s, speculative decoding that changes
nothing but the number of model calls, the chat template, and one-line errors for bad input."""

import json
import shutil

import pytest

from exporter.checkpoint.chat import OPENELM_CHAT_TEMPLATE
from exporter.checkpoint.sources import DRAFT_SIZE, EMBEDDED_DIR, EMBEDDED_SIZE
from exporter.cli import run_cli
from exporter.generate.cli import run_command
from exporter.model.load import random_state_dict, save_checkpoint
from exporter.pipeline import ExportOptions, export
from tests.helpers import small_config

pytestmark = pytest.mark.e2e

LLAMA2_TEMPLATE = "{% for message in messages %}[INST] {{ message['content'] }} [/INST]{% endfor %}"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The embedded model (with a --chat-template and a tokenizer carrying LLaMA-2's template), its draft, and a
    model of another vocabulary; short contexts keep them quick."""
    root = tmp_path_factory.mktemp("run")
    tokenizer = root / "tokenizer"
    shutil.copytree(EMBEDDED_DIR, tokenizer)
    config = json.loads((tokenizer / "tokenizer_config.json").read_text())
    (tokenizer / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": LLAMA2_TEMPLATE}))
    (root / "template.jinja").write_text(OPENELM_CHAT_TEMPLATE)
    common = dict(context_length=128, prefill_length=16, verify=False)
    export(ExportOptions(size=EMBEDDED_SIZE, tokenizer=str(tokenizer), chat_template=root / "template.jinja",
                         output=root / "model", **common))
    export(ExportOptions(size=DRAFT_SIZE, output=root / "draft", **common))
    save_checkpoint(root / "other-ckpt", small_config(), random_state_dict(small_config(), seed=0))
    export(ExportOptions(model_dir=root / "other-ckpt", tokenizer=None, quant="none", output=root / "other",
                         **common))
    return root


def elm_run(args, capsys, stdin=None, monkeypatch=None):
    if stdin is not None:
        import io

        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = run_cli(run_command, "elm-run", [str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prints_a_continuation_and_tokens_per_second(folders, capsys):
    code, out, err = elm_run([folders / "model", "--prompt", "In the beginning", "--max-new-tokens", "24"], capsys)
    assert code == 0, err
    assert len(out.strip()) > 20 and "LORD" in out or "God" in out
    assert "tok/s" in err and "24 tokens" in err and "prompt_lookup drafts" in err


@pytest.mark.parametrize("sampling", [[], ["--temperature", "0.8", "--top-p", "0.9", "--min-p", "0.05", "--seed", "7"]])
def test_speculative_decoding_changes_calls_not_text(folders, capsys, sampling):
    base = [folders / "model", "--prompt", "And God said", "--max-new-tokens", "40", "--repetition-penalty", "1",
            *sampling]
    outputs = {}
    for speculate in (["--speculate", "none"], ["--speculate", "lookup"], ["--draft", folders / "draft"]):
        code, out, err = elm_run(base + speculate, capsys)
        assert code == 0, err
        outputs[speculate[0] + str(speculate[1])] = (out, err)
    texts = {out for out, _ in outputs.values()}
    assert len(texts) == 1, outputs
    assert "drafts" not in outputs["--speculatenone"][1]
    assert "draft_model drafts" in next(err for key, (_, err) in outputs.items() if key.startswith("--draft"))


def test_the_draft_model_drafts_under_the_sampling_penalty(folders, capsys, monkeypatch):
    from exporter.generate import drafters

    made = []

    class Recorded(drafters.DraftModelDrafter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(drafters, "DraftModelDrafter", Recorded)
    for flags, penalty in (([], 1.2), (["--repetition-penalty", "1.05"], 1.05)):  # export.json's 1.2, or the flag
        code, _, err = elm_run([folders / "model", "--prompt", "And God said", "--max-new-tokens", "8", "--draft",
                                folders / "draft", *flags], capsys)
        assert code == 0, err
        assert made[-1].repetition_penalty == pytest.approx(penalty)
        assert made[-1].model_calls["prefill"] >= 1  # the prompt went through the draft model's prefill


def test_chat_renders_the_template_and_the_exported_tokenizer_carries_it(folders, capsys, monkeypatch):
    manifest = json.loads((folders / "model" / "export.json").read_text())
    assert manifest["generation"]["chat_template"] == OPENELM_CHAT_TEMPLATE
    assert manifest["generation"]["chat_template_source"] == "--chat-template"
    shipped = json.loads((folders / "model" / "tokenizer_config.json").read_text())
    assert shipped["chat_template"] == OPENELM_CHAT_TEMPLATE  # LLaMA-2's [INST] template is gone
    # What a transformers user of the folder gets is what elm-run renders.
    from transformers import PreTrainedTokenizerFast

    from exporter.generate.chat import render_chat

    conversation = [{"role": "user", "content": "Who made the heaven?"}]
    hf = PreTrainedTokenizerFast.from_pretrained(str(folders / "model"))
    assert hf.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True) == render_chat(
        OPENELM_CHAT_TEMPLATE, conversation, True, "<s>", "</s>")
    code, out, err = elm_run([folders / "model", "--chat", "--max-new-tokens", "8", "--system", "Be brief."], capsys,
                             stdin="Who made the heaven?\nAnd the earth?\n", monkeypatch=monkeypatch)
    assert code == 0, err
    assert err.count("tok/s") == 2 and out.count("\n") >= 2


@pytest.mark.parametrize("case", ["no export", "a checkpoint folder", "another tool's export", "prompt too long",
                                  "chat on a base model",
                                  "draft of another vocabulary", "no prompt", "bad sampling"])
def test_bad_input_is_one_line(folders, capsys, tmp_path, case):
    long_prompt = " ".join(["the LORD"] * 200)
    (tmp_path / "other-tool").mkdir()
    (tmp_path / "other-tool" / "export.json").write_text(json.dumps({"format": "someone-else/2", "model": "llama"}))
    args = {
        "no export": ([tmp_path, "--prompt", "x"], 1, "export.json"),
        "a checkpoint folder": ([EMBEDDED_DIR, "--prompt", "x"], 1, "export.json"),
        "another tool's export": ([tmp_path / "other-tool", "--prompt", "x"], 1, "not an elm-export/1 manifest"),
        "prompt too long": ([folders / "model", "--prompt", long_prompt], 2, "shorten the prompt"),
        "chat on a base model": ([folders / "draft", "--chat"], 2, "no chat template"),
        "draft of another vocabulary": ([folders / "model", "--prompt", "x", "--draft", folders / "other"], 2,
                                        "vocabulary"),
        "no prompt": ([folders / "model"], 2, "--prompt TEXT or --chat"),
        "bad sampling": ([folders / "model", "--prompt", "x", "--top-p", "1.5"], 2, "top-p"),
    }[case]
    code, out, err = elm_run(args[0], capsys)
    lines = err.strip().splitlines()
    assert code == args[1], err
    assert len(lines) == 1 and lines[0].startswith("elm-run: error: ") and args[2] in lines[0], err
    assert "Traceback" not in err
