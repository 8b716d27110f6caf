"""Renders a conversation with a chat template, as Hugging Face's `apply_chat_template(..., tokenize=False)`.

The Jinja environment is set up the way transformers sets it up (a sandbox, trim_blocks and
lstrip_blocks, loop controls, `raise_exception`, a `tojson` that keeps non-ASCII text), so a
template renders here exactly as it does for the tokenizer it came with.
"""

from __future__ import annotations

import json
from functools import lru_cache

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from exporter.errors import UsageError


def render_chat(template: str, messages: list[dict], add_generation_prompt: bool, bos_token: str,
                eos_token: str) -> str:
    """The prompt text for `messages` (dicts with "role" and "content" strings)."""
    if not messages:
        raise UsageError("the conversation has no messages; give at least one")
    for number, message in enumerate(messages, 1):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) \
                or not isinstance(message.get("content"), str):
            raise UsageError(f"chat message {number} needs a \"role\" and a \"content\" string, got {message!r}")
    compiled = _compile(template)
    try:
        return compiled.render(messages=messages, add_generation_prompt=add_generation_prompt,
                               bos_token=bos_token, eos_token=eos_token)
    except (jinja2.TemplateError, TypeError, ValueError) as error:  # raise_exception, undefined names, bad types
        raise UsageError(f"the chat template failed to render: {_one_line(error)}") from None


@lru_cache(maxsize=8)
def _compile(template: str) -> jinja2.Template:
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    try:
        return environment.from_string(template)
    except jinja2.TemplateSyntaxError as error:
        raise UsageError(f"the chat template is not valid Jinja (line {error.lineno}): {_one_line(error)}") from None


def _raise_exception(message: str):
    raise jinja2.TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    # Jinja's own tojson escapes HTML characters; chat templates expect plain JSON.
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _one_line(error: Exception) -> str:
    return " ".join(str(error.message if isinstance(error, jinja2.TemplateError) and error.message else error)
                    .split())
