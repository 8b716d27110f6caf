"""`elm-run FOLDER --prompt TEXT | --chat`: generate text from an export on Linux or macOS, streamed as it comes.

A Core AI export runs in Apple's Core AI runtime; a Core ML export in Core ML on macOS and in elm-export's
float16 executor elsewhere (exporter.generate.backends). Sampling defaults come from export.json's
`generation` (OpenELM's repetition penalty 1.2); speculative decoding (prompt lookup, or a draft export) is on
whenever the export has a verify function, and never changes what is generated.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from exporter.errors import UsageError
from exporter.generate.sampling import SamplingParameters

SAMPLING_FLAGS = ("temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed")


def sampling_from(manifest: dict, flags: dict) -> SamplingParameters:
    """export.json's generation defaults, overridden by the flags given."""
    defaults = (manifest.get("generation") or {}).get("defaults") or {}
    values = {name: flags[name] if flags[name] is not None else defaults.get(name) for name in SAMPLING_FLAGS}
    parameters = SamplingParameters(**{name: value for name, value in values.items() if value is not None})
    problem = parameters.problem()
    if problem:
        raise UsageError(problem)
    return parameters


class TextStream:
    """Prints the text of the tokens generated so far as it grows, holding back an unfinished UTF-8 character."""

    def __init__(self, tokenizer):
        self.tokenizer, self.ids, self.shown = tokenizer, [], 0

    def __call__(self, token: int) -> None:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return  # a character split over tokens: wait for its last byte
        click.echo(text[self.shown:], nl=False)  # click.echo flushes: the text appears as it is generated
        self.shown = len(text)


def stats_line(result, seconds: float, drafter) -> str:
    stats = result.stats
    count = len(result.tokens)
    line = (f"{count} tokens in {seconds:.2f} s ({count / seconds if seconds else 0:.1f} tok/s), prompt "
            f"{stats.prompt_tokens} tokens, first token after {stats.first_token_seconds:.2f} s, stop: "
            f"{result.stop_reason}")
    if drafter is not None:
        calls = stats.calls["decode"] + stats.calls["verify"]
        accepted = stats.draft_accepted / stats.draft_proposed if stats.draft_proposed else 0.0
        line += (f"; {drafter.name} drafts: {100 * accepted:.0f}% of {stats.draft_proposed} accepted, "
                 f"{calls / max(count, 1):.2f} model calls per token")
    return line


def choose_drafter(model, speculate: str | None, draft_folder: Path | None, backend: str | None,
                   repetition_penalty: float = 1.0):
    """None, prompt lookup or a draft export (checked to share the target's vocabulary and tokenizer), which drafts
    under the sampling's `repetition_penalty`."""
    from exporter.generate.backends import ExportModel
    from exporter.generate.drafters import DraftModelDrafter, PromptLookupDrafter

    speculate = speculate or ("draft" if draft_folder else "lookup" if model.verify_length else "none")
    if speculate == "none":
        return None
    if not model.verify_length:
        raise UsageError(f"{model.folder} has no verify function for speculative decoding; re-export it with "
                         "--draft-tokens 4, or pass --speculate none")
    if speculate == "lookup":
        return PromptLookupDrafter()
    if draft_folder is None:
        raise UsageError("--speculate draft needs --draft FOLDER (a smaller model exported with the same tokenizer)")
    draft = ExportModel(draft_folder, backend)
    check_same_tokenizer(model, draft)
    return DraftModelDrafter(draft, repetition_penalty)


def check_same_tokenizer(model, draft) -> None:
    from exporter.files import sha256_file

    if draft.vocab_size != model.vocab_size:
        raise UsageError(f"--draft {draft.folder}: its vocabulary has {draft.vocab_size} tokens, the model's "
                         f"{model.vocab_size}; a draft model must share the model's tokenizer")
    ours, theirs = model.folder / "tokenizer.json", draft.folder / "tokenizer.json"
    if ours.is_file() and theirs.is_file() and sha256_file(ours) != sha256_file(theirs):
        raise UsageError(f"--draft {draft.folder}: its tokenizer.json differs from the model's; a draft model must "
                         "share the model's tokenizer")


def load_tokenizer(folder: Path):
    from exporter.checkpoint.tokenizer import check_tokenizer

    if not (folder / "tokenizer.json").is_file():
        raise UsageError(f"{folder} has no tokenizer.json, so text cannot be encoded; re-export it with a tokenizer")
    return check_tokenizer(folder)


def check_fits(ids: list[int], model) -> None:
    if len(ids) >= model.context_length:
        raise UsageError(f"the prompt is {len(ids)} tokens but the model's context holds {model.context_length}, "
                         "leaving no room to generate; shorten the prompt")


def run_once(model, tokenizer, ids: list[int], options, drafter, quiet: bool) -> list[int]:
    """Generate after `ids`, streaming the text to stdout and the stats to stderr; the generated ids."""
    from exporter.generate.generator import generate

    check_fits(ids, model)
    if drafter is not None and hasattr(drafter, "reset"):
        drafter.reset()
    stream = TextStream(tokenizer)
    if not quiet:
        click.echo(f"[prefill {len(ids)} tokens on {model.runner}…]", err=True)
    started = time.perf_counter()
    result = generate(model, ids, options, drafter=drafter, on_token=stream)
    seconds = time.perf_counter() - started
    click.echo("")
    if not quiet:
        click.echo(stats_line(result, seconds, drafter), err=True)
    return result.tokens


def chat_template_of(model) -> str:
    template = (model.manifest.get("generation") or {}).get("chat_template")
    if not template:
        raise UsageError(f"{model.folder} has no chat template (a base model); use --prompt, or re-export with "
                         "--chat-template FILE")
    return template


def chat_loop(model, tokenizer, options, drafter, system: str | None, quiet: bool) -> None:
    """Read user turns from stdin, answer each with the whole conversation rendered by the export's template
    (BOS first, as the tokenizer adds it and as OpenELM-Instruct was tuned)."""
    from exporter.generate.chat import render_chat

    generation = model.manifest.get("generation") or {}
    template = chat_template_of(model)
    messages = [{"role": "system", "content": system}] if system else []
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            click.echo("> ", nl=False, err=True)
        line = sys.stdin.readline()
        if not line:
            return
        if not line.strip():
            continue
        messages.append({"role": "user", "content": line.rstrip("\n")})
        text = render_chat(template, messages, True, generation.get("bos_token") or "",
                           generation.get("eos_token") or "")
        reply = run_once(model, tokenizer, tokenizer.encode(text).ids, options, drafter, quiet)
        messages.append({"role": "assistant", "content": tokenizer.decode(reply, skip_special_tokens=True)})


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--prompt", help="The text to continue.")
@click.option("--chat", is_flag=True, help="Chat: read your turns from stdin, rendered with the export's template.")
@click.option("--system", help="--chat: a system message to start the conversation with.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), help="[default: export.json's, 128]")
@click.option("--temperature", type=float, help="0 = greedy [default: export.json's, 0].")
@click.option("--top-k", type=int, help="Sample from the K most likely tokens; 0 = off.")
@click.option("--top-p", type=float, help="Sample from the smallest set reaching probability P; 1 = off.")
@click.option("--min-p", type=float, help="Drop tokens below P x the most likely one's probability; 0 = off.")
@click.option("--repetition-penalty", type=float, help="CTRL-style penalty; 1 = off [default: export.json's, 1.2].")
@click.option("--seed", type=click.IntRange(min=0, max=2**64 - 1), help="Random seed for sampling.")
@click.option("--stop-token", "stop_tokens", type=int, multiple=True, help="Also stop after this token id (repeat).")
@click.option("--format", "backend", type=click.Choice(["coreml", "coreai"]),
              help="Which of the folder's models to run [default: the first it holds].")
@click.option("--speculate", type=click.Choice(["none", "lookup", "draft"]),
              help="Speculative decoding (same output, fewer model calls) [default: draft with --draft, else lookup "
                   "when the export has a verify function].")
@click.option("--draft", "draft_folder", type=click.Path(path_type=Path),
              help="A smaller export with the same tokenizer that drafts tokens (OpenELM-270M for 1.1B and 3B).")
@click.option("--adapter", help="Run the export's LoRA adapter NAME (export.json `adapters`) [default: the base].")
@click.option("--quiet", is_flag=True, help="Print only the generated text.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def run_command(folder, prompt, chat, system, max_new_tokens, temperature, top_k, top_p, min_p, repetition_penalty,
                seed, stop_tokens, backend, speculate, draft_folder, adapter, quiet, debug):
    """Generate text from an export folder written by elm-export, streaming it, then tokens/s."""
    from exporter.generate.backends import ExportModel
    from exporter.generate.generator import GenerationOptions

    if (prompt is None) == (not chat):
        raise UsageError("give --prompt TEXT or --chat (one of them)")
    started = time.perf_counter()
    model = ExportModel(folder, backend, adapter)
    tokenizer = load_tokenizer(model.folder)
    flags = dict(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                 repetition_penalty=repetition_penalty, seed=seed)
    generation = model.manifest.get("generation") or {}
    stops = tuple(generation.get("stop_token_ids") or [model.manifest["eos_token_id"]]) + tuple(stop_tokens)
    default_tokens = (generation.get("defaults") or {}).get("max_new_tokens", 128)
    options = GenerationOptions(max_new_tokens or default_tokens, sampling_from(model.manifest, flags), stops)
    drafter = choose_drafter(model, speculate, draft_folder, backend, options.sampling.repetition_penalty)
    ids = None if chat else tokenizer.encode(prompt).ids
    if ids is not None:
        check_fits(ids, model)  # before any progress line: the error is all that is printed
    else:
        chat_template_of(model)
    if not quiet:
        with_adapter = f", adapter {adapter}" if adapter else ""
        click.echo(f"[loaded {model.folder.name} ({model.backend}{with_adapter}) in {time.perf_counter() - started:.1f} s]",
                   err=True)
    if chat:
        chat_loop(model, tokenizer, options, drafter, system, quiet)
    else:
        run_once(model, tokenizer, ids, options, drafter, quiet)


def run_main() -> None:
    from exporter.cli import run_cli

    sys.exit(run_cli(run_command, "elm-run"))
