"""Drives a language model to generate tokens: the Python twin of ELMKit's `Generator` (Swift), plus speculative
decoding.

Driving rules (export.json "elm-export/1"): the prompt is fed as `prompt_plan` says (chunks of prefill_length at
position = chunk start, the last one padded by the model); each new token is then fed at its index in the
sequence, and the sequence never grows past context_length tokens. Every step keeps Swift's order (sample,
append, callback, stop token, max tokens, context full, next model call), so both sides stop on the same token.

Speculative decoding: a drafter guesses the next few tokens, one `verify` call scores the pending token and the
guesses together, and the sampler then runs over those rows one by one. A guess is kept only while it is the
token the sampler picks, so the sampler sees exactly the logits and context plain decoding would give it: the
output is the same as without a drafter, for any sampling settings and seed. Cache slots written for rejected
guesses are overwritten later (the mask is position based), so nothing has to be undone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np

from exporter.errors import ExportError, UsageError
from exporter.generate.sampling import Sampler, SamplingParameters

STOP_REASONS = ("end of sequence", "max tokens", "context full", "cancelled")


class LanguageModel(Protocol):
    """A causal language model with a KV cache, as Swift's `LanguageModel` (plus `verify`)."""

    context_length: int  # tokens the cache holds
    prefill_length: int  # tokens one prefill call takes (the model pads shorter chunks)
    vocab_size: int  # entries of a logits row that are real tokens
    prefill_gives_logits: bool  # False for an ane export: prefill only writes the cache
    verify_length: int  # tokens one verify call takes (drafts + 1); 0 without a verify function

    def reset(self) -> None:
        """Forgets every token seen so far."""

    def prefill(self, tokens: list[int], position: int) -> np.ndarray:
        """Feeds 1..prefill_length tokens at position, position + 1, ...: float32 [len(tokens), vocab], or
        [0, vocab] when prefill gives no logits."""

    def decode(self, token: int, position: int) -> np.ndarray:
        """Feeds one token at `position`: the float32 [vocab] logits of the token after it."""

    def verify(self, tokens: list[int], position: int) -> np.ndarray:
        """Feeds 1..verify_length tokens like prefill: float32 [len(tokens), vocab], one row per given token."""


class Drafter(Protocol):
    """Guesses the tokens that follow a context, for speculative decoding."""

    name: str

    def draft(self, context: list[int], k: int) -> list[int]:
        """Up to `k` guesses (maybe none) for the tokens after `context`, which it must not change."""


class PromptCall(NamedTuple):
    """One model call that feeds the prompt: "prefill" of prompt[start:stop] or "decode" of prompt[start]
    (stop = start + 1), at position = start."""

    function: str
    start: int
    stop: int


def prompt_plan(prompt_length: int, prefill_length: int, context_length: int,
                prefill_gives_logits: bool) -> list[PromptCall]:
    """The calls that feed a prompt; the last one gives the logits of the first new token (Swift's `PromptPlan`).

    With prefill logits, every token goes through prefill in chunks; without (ane), every token but the last
    does and the last goes through decode. From the first chunk whose padding would run past the context, the
    remaining tokens go through decode one by one.
    """
    if prompt_length <= 0 or prefill_length <= 0:
        return []
    prefilled = prompt_length if prefill_gives_logits else prompt_length - 1
    calls = []
    for start in range(0, prefilled, prefill_length):
        if start + prefill_length > context_length:
            calls += [PromptCall("decode", p, p + 1) for p in range(start, prefilled)]
            break
        calls.append(PromptCall("prefill", start, min(start + prefill_length, prefilled)))
    if not prefill_gives_logits:
        calls.append(PromptCall("decode", prompt_length - 1, prompt_length))
    return calls


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int
    sampling: SamplingParameters = field(default_factory=SamplingParameters)
    stop_token_ids: tuple[int, ...] = ()  # generation stops after emitting one (it is kept in the tokens)


@dataclass
class GenerationStats:
    prompt_tokens: int
    generated_tokens: int = 0
    calls: dict[str, int] = field(default_factory=lambda: {"prefill": 0, "decode": 0, "verify": 0})
    draft_proposed: int = 0  # drafted tokens sent to verify
    draft_accepted: int = 0  # of those, the ones the sampler then picked
    prefill_seconds: float = 0.0
    first_token_seconds: float = 0.0
    seconds: float = 0.0  # the whole generation, time spent in on_token excepted


@dataclass
class GenerationResult:
    tokens: list[int]  # generated ids (not the prompt), the stop token included when it ended generation
    stop_reason: str  # one of STOP_REASONS
    stats: GenerationStats


def generate(model: LanguageModel, prompt_ids: list[int], options: GenerationOptions, drafter: Drafter | None = None,
             on_token: Callable[[int], bool | None] | None = None) -> GenerationResult:
    """Generates after `prompt_ids` (which already hold BOS if the model wants it). `on_token` sees each new token
    as it is chosen; returning False from it stops generation ("cancelled")."""
    problem = options.sampling.problem()
    if problem:
        raise UsageError(f"invalid sampling settings: {problem}")
    if not prompt_ids:
        raise UsageError("the prompt has no tokens; give some text or keep the BOS token")
    if len(prompt_ids) >= model.context_length:
        raise UsageError(f"the prompt is {len(prompt_ids)} tokens but the model's context holds "
                         f"{model.context_length}, leaving no room to generate; shorten the prompt")
    run = _Run(model, list(prompt_ids), options, on_token)
    model.reset()
    logits = run.feed_prompt()
    speculative = drafter is not None and model.verify_length >= 2
    if options.max_new_tokens > 0:
        token = run.emit(logits)
        while run.stop_reason is None:
            token = run.speculate(drafter, token) if speculative else run.emit(run.decode(token))
    return run.result()


class _Run:
    """One generation's state: the context so far, the sampler and the counts."""

    def __init__(self, model: LanguageModel, prompt: list[int], options: GenerationOptions, on_token):
        self.model, self.options, self.on_token = model, options, on_token
        self.sampler = Sampler(options.sampling)
        self.context = prompt
        self.generated: list[int] = []
        self.stop_reason: str | None = None if options.max_new_tokens > 0 else "max tokens"
        self.stats = GenerationStats(prompt_tokens=len(prompt))
        self.start = time.perf_counter()
        self.paused = 0.0  # seconds spent in on_token

    def feed_prompt(self) -> np.ndarray:
        model, logits = self.model, None
        if model.prefill_length <= 0:
            raise ExportError(f"the model returned unexpected output: prefill_length is {model.prefill_length}")
        for call in prompt_plan(len(self.context), model.prefill_length, model.context_length,
                                model.prefill_gives_logits):
            if call.function == "decode":
                logits = self.decode(self.context[call.start], call.start)
                continue
            chunk = self.context[call.start:call.stop]
            rows = np.asarray(model.prefill(chunk, call.start))
            self.stats.calls["prefill"] += 1
            if model.prefill_gives_logits:
                logits = self.row(self._rows(rows, len(chunk), "prefill")[-1], "prefill")
        self.stats.prefill_seconds = time.perf_counter() - self.start
        return logits

    def decode(self, token: int, position: int | None = None) -> np.ndarray:
        """Feeds `token` at `position`, by default the index of the context's last token."""
        position = len(self.context) - 1 if position is None else position
        self.stats.calls["decode"] += 1
        return self.row(self.model.decode(token, position), "decode")

    def emit(self, logits: np.ndarray) -> int:
        """Samples the next token, hands it out and decides whether generation stops after it."""
        token = self.sampler.next(logits, self.context)
        if not self.generated:
            self.stats.first_token_seconds = time.perf_counter() - self.start
        self.generated.append(token)
        self.context.append(token)
        if self.on_token is not None:
            pause = time.perf_counter()
            keep_going = self.on_token(token)
            self.paused += time.perf_counter() - pause
            if keep_going is False:
                self.stop_reason = "cancelled"
                return token
        if token in self.options.stop_token_ids:
            self.stop_reason = "end of sequence"
        elif len(self.generated) >= self.options.max_new_tokens:
            self.stop_reason = "max tokens"
        elif len(self.context) >= self.model.context_length:
            self.stop_reason = "context full"
        return token

    def speculate(self, drafter: Drafter, pending: int) -> int:
        """Feeds `pending` (the last token, not yet in the cache) with the drafter's guesses in one verify call
        and emits tokens from its rows while the guesses hold; returns the last emitted token (not yet fed)."""
        model = self.model
        position = len(self.context) - 1
        drafts = [int(t) for t in drafter.draft(self.context, model.verify_length - 1)][: model.verify_length - 1]
        if not drafts or position + model.verify_length > model.context_length:
            return self.emit(self.decode(pending))
        fed = [pending] + drafts
        rows = self._rows(np.asarray(model.verify(fed, position)), len(fed), "verify")
        self.stats.calls["verify"] += 1
        self.stats.draft_proposed += len(drafts)
        for i, row in enumerate(rows):
            token = self.emit(self.row(row, "verify"))
            accepted = i < len(drafts) and token == drafts[i]  # the next row follows it: its cache slot is right
            self.stats.draft_accepted += accepted
            if self.stop_reason is not None or not accepted:
                break  # the last row always ends here: its token is the new pending one
        return token

    def row(self, logits: np.ndarray, function: str) -> np.ndarray:
        """A logits row cut to the vocabulary (the model may pad it)."""
        logits = np.asarray(logits, dtype=np.float32)
        vocab = self.model.vocab_size
        if logits.ndim != 1 or logits.shape[0] < vocab:
            raise ExportError(f"the model returned unexpected output: {function} returned logits of shape "
                              f"{list(logits.shape)} for a vocabulary of {vocab}")
        return logits[:vocab]

    @staticmethod
    def _rows(rows: np.ndarray, expected: int, function: str) -> np.ndarray:
        if rows.ndim != 2 or rows.shape[0] != expected:
            raise ExportError(f"the model returned unexpected output: {function} of {expected} tokens returned "
                              f"logits of shape {list(rows.shape)}")
        return rows

    def result(self) -> GenerationResult:
        self.stats.generated_tokens = len(self.generated)
        self.stats.seconds = time.perf_counter() - self.start - self.paused
        return GenerationResult(tokens=self.generated, stop_reason=self.stop_reason or "max tokens",
                                stats=self.stats)
