"""How OpenELM expects to be prompted: the Instruct models' chat template and the generation defaults, with sources.

The data here travels into export.json ("generation") and the exported tokenizer_config.json; rendering
is exporter.generate.chat's job (Python) and ELMKit's ChatTemplate (Swift).
"""

from __future__ import annotations

# apple/corenet, projects/openelm/instruction_tuning/openelm-instruct.yaml (`chat_template`): the Zephyr-style
# template OpenELM-Instruct was tuned with. Each message ends with the EOS token; `<|assistant|>` opens the reply.
OPENELM_CHAT_TEMPLATE = (
    "{% for message in messages %}\n"
    "{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n"
    "{{ '<|assistant|>' }}\n"
    "{% endif %}\n"
    "{% endfor %}"
)
OPENELM_CHAT_TEMPLATE_SOURCE = "apple/corenet projects/openelm/instruction_tuning/openelm-instruct.yaml (chat_template)"

# (value, where it comes from). Greedy unless asked otherwise, as Hugging Face's generate (do_sample=False).
GENERATION_DEFAULTS = {
    "temperature": (0.0, "greedy, as Hugging Face generate's default (do_sample=False) that generate_openelm.py uses"),
    "top_k": (0, "off"),
    "top_p": (1.0, "off"),
    "min_p": (0.0, "off"),
    "repetition_penalty": (1.2, "generate_openelm.py's default (the script on the OpenELM model cards)"),
    "max_new_tokens": (128, "elm-export's default"),
    "seed": (0, "elm-export's default"),
}


def is_instruct(name: str) -> bool:
    """Whether a checkpoint name (Hub id or folder) is an OpenELM-Instruct model."""
    return "instruct" in name.lower()


def chat_template_for(name: str, instruct: bool = False, override: str | None = None) -> tuple[str | None, str | None]:
    """(template, where it came from) for a checkpoint named `name`: `override` (a --chat-template file's text)
    wins, then OpenELM's own for Instruct models; base models get none."""
    if override is not None:
        return override, "--chat-template"
    if instruct or is_instruct(name):
        return OPENELM_CHAT_TEMPLATE, OPENELM_CHAT_TEMPLATE_SOURCE
    return None, None


def read_chat_template(path) -> str:
    """A --chat-template file's text, after checking it is a Jinja template; a one-line error otherwise."""
    from pathlib import Path

    import jinja2

    from exporter.errors import UsageError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--chat-template {path}: cannot read it ({type(e).__name__}); pass a UTF-8 text file "
                         "holding a Jinja chat template") from None
    if not text.strip():
        raise UsageError(f"--chat-template {path}: the file is empty; pass a Jinja chat template")
    try:
        jinja2.Environment().parse(text)
    except jinja2.TemplateSyntaxError as e:
        raise UsageError(f"--chat-template {path}: not a valid Jinja template (line {e.lineno}: {e.message})") from None
    return text
