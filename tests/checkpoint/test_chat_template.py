"""Which chat template an export ships (OpenELM-Instruct's, none, or --chat-template's) and where it goes."""

import json

import pytest

from exporter.checkpoint.chat import (
    OPENELM_CHAT_TEMPLATE,
    OPENELM_CHAT_TEMPLATE_SOURCE,
    chat_template_for,
    read_chat_template,
)
from exporter.checkpoint.sources import EMBEDDED_DIR
from exporter.checkpoint.tokenizer import ship_tokenizer
from exporter.errors import UsageError

LLAMA2 = "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"


@pytest.mark.parametrize("name, instruct, expected", [
    ("OpenELM-450M-Instruct-int4", False, OPENELM_CHAT_TEMPLATE),
    ("openelm-3b-instruct", False, OPENELM_CHAT_TEMPLATE),
    ("OpenELM-450M-int4", True, OPENELM_CHAT_TEMPLATE),  # --instruct
    ("OpenELM-450M-int4", False, None),  # a base model: no template
    ("OpenELM-tiny-mixed", False, None),
])
def test_instruct_models_get_openelms_template_base_models_none(name, instruct, expected):
    template, source = chat_template_for(name, instruct)
    assert template == expected
    assert source == (OPENELM_CHAT_TEMPLATE_SOURCE if expected else None)


def test_chat_template_file_overrides(tmp_path):
    path = tmp_path / "t.jinja"
    path.write_text(LLAMA2)
    assert chat_template_for("OpenELM-450M-Instruct", True, read_chat_template(path)) == (LLAMA2, "--chat-template")


@pytest.mark.parametrize("content, message", [
    (None, "cannot read it"),
    ("", "the file is empty"),
    ("{% for m in messages %}", "not a valid Jinja template"),
    (b"\xff\xfe\x00", "cannot read it"),
])
def test_bad_chat_template_file_is_a_one_line_usage_error(tmp_path, content, message):
    path = tmp_path / "t.jinja"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=message) as error:
        read_chat_template(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("template", [OPENELM_CHAT_TEMPLATE, None])
def test_shipped_tokenizer_config_carries_the_exports_template_not_llama2s(tmp_path, template):
    source, staging = tmp_path / "tokenizer", tmp_path / "export"
    source.mkdir()
    staging.mkdir()
    config = json.loads((EMBEDDED_DIR / "tokenizer_config.json").read_text())
    (source / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": LLAMA2}))
    (source / "tokenizer.json").write_bytes((EMBEDDED_DIR / "tokenizer.json").read_bytes())
    assert ship_tokenizer(source, staging, template) == ["tokenizer.json", "tokenizer_config.json"]
    shipped = json.loads((staging / "tokenizer_config.json").read_text())
    assert shipped.get("chat_template") == template
    assert {k: v for k, v in shipped.items() if k != "chat_template"} == config
    assert (staging / "tokenizer.json").read_bytes() == (source / "tokenizer.json").read_bytes()
