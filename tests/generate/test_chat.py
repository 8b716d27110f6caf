"""render_chat renders as transformers' apply_chat_template does, and reports bad input in one line."""

from __future__ import annotations

import pytest

from exporter.checkpoint.chat import OPENELM_CHAT_TEMPLATE
from exporter.errors import UsageError
from exporter.generate.chat import render_chat
from exporter.tools.goldens import CONVERSATIONS, TINY


@pytest.fixture(scope="module")
def hf_tokenizer():
    transformers = pytest.importorskip("transformers")
    return transformers.PreTrainedTokenizerFast(tokenizer_file=str(TINY / "tokenizer.json"), bos_token="<s>",
                                                eos_token="</s>", unk_token="<unk>")


def hf_render(tokenizer, messages, add_generation_prompt, template=OPENELM_CHAT_TEMPLATE):
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                         chat_template=template)


def test_enough_varied_conversations():
    assert len(CONVERSATIONS) >= 20
    text = "".join(m["content"] for messages in CONVERSATIONS for m in messages)
    for sample in ("é", "東京", "🙂", "שלום", "\n", '"', "{{", "{%"):
        assert sample in text
    assert any(m["content"] == "" for messages in CONVERSATIONS for m in messages)


@pytest.mark.parametrize("add_generation_prompt", [False, True])
def test_openelm_template_renders_as_transformers(hf_tokenizer, add_generation_prompt):
    for messages in CONVERSATIONS:
        want = hf_render(hf_tokenizer, messages, add_generation_prompt)
        assert render_chat(OPENELM_CHAT_TEMPLATE, messages, add_generation_prompt, "<s>", "</s>") == want


OTHER_TEMPLATES = [
    # The bos token, loop controls, whitespace control, namespace-free state, tojson keeping non-ASCII text.
    ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'tool' %}{% continue %}{% endif %}"
     "[{{ m['role'] | upper }}]: {{ m['content'] | trim }}\n{% endfor %}{% if add_generation_prompt %}[ASSISTANT]:"
     "{% endif %}"),
    "{% for m in messages %}\n  {{- m | tojson }}\n{%- if loop.index == 2 %}{% break %}{% endif %}\n{% endfor %}",
    # Indented block tags: lstrip_blocks removes the indentation, trim_blocks the newline after them.
    "{% for m in messages %}\n    {% if m['role'] == 'user' %}\n    U: {{ m['content'] }}\n    {% else %}\n"
    "    {{ m['role'] }}\n    {% endif %}\n{% endfor %}",
]


@pytest.mark.parametrize("template", OTHER_TEMPLATES)
def test_other_templates_render_as_transformers(hf_tokenizer, template):
    for messages in CONVERSATIONS[:8]:
        want = hf_render(hf_tokenizer, messages, True, template)
        assert render_chat(template, messages, True, "<s>", "</s>") == want


@pytest.mark.parametrize("template, messages, words", [
    ("{% for m in messages %}{{ m['content'] }", [{"role": "user", "content": "x"}], "not valid Jinja"),
    ("{{ raise_exception('only user turns, please') }}", [{"role": "user", "content": "x"}], "only user turns"),
    ("{{ messages[0]['content'] + 1 }}", [{"role": "user", "content": "x"}], "failed to render"),
    (OPENELM_CHAT_TEMPLATE, [{"role": "user"}], "needs a \"role\" and a \"content\""),
    (OPENELM_CHAT_TEMPLATE, [{"content": "x"}], "message 1"),
    (OPENELM_CHAT_TEMPLATE, [{"role": "user", "content": "x"}, {"role": "user", "content": None}], "message 2"),
    (OPENELM_CHAT_TEMPLATE, [], "no messages"),
])
def test_bad_templates_and_messages_are_one_line_usage_errors(template, messages, words):
    with pytest.raises(UsageError) as caught:
        render_chat(template, messages, True, "<s>", "</s>")
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_the_sandbox_refuses_attribute_tricks():
    with pytest.raises(UsageError):
        render_chat("{{ messages.__class__.__mro__ }}", [{"role": "user", "content": "x"}], False, "<s>", "</s>")
