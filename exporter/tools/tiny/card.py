"""A tiny model's card (README.md) and its loss-curve figure, an SVG written by hand.

One template describes OpenELM-tiny and its draft (exporter.tools.tiny.configs): training_log.json
records which `model` it is (OpenELM-tiny's first log predates that and means "tiny").
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from xml.sax.saxutils import escape

from exporter.model.config import OpenELMConfig
from exporter.tools.tiny import corpus
from exporter.tools.tiny.configs import SPECS, TINY, ModelSpec

TRAIN_COMMAND = TINY.train_command


def smoothed(values: list[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average, bias-corrected so the first points are not pulled to zero."""
    out, average = [], 0.0
    for i, v in enumerate(values, start=1):
        average = weight * average + (1 - weight) * v
        out.append(average / (1 - weight**i))
    return out


def tick_spacing(span: int, most: int = 10) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that puts at most `most` ticks on an axis of `span`."""
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            if span / (mantissa * 10**exponent) <= most:
                return mantissa * 10**exponent
        exponent += 1


def loss_curve_svg(history: dict, width: int = 720, height: int = 400, title: str = TINY.title) -> str:
    """Training loss (raw and smoothed) and held-out loss against step, as a standalone SVG."""
    train = history["train_loss"]
    left, right, top, bottom = 64, 20, 40, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    steps = len(train)
    y_max = math.ceil(max(train + history["eval_loss"]))
    y_min = max(0, math.floor(min(train + history["eval_loss"])) - 1)

    def x(step: float) -> float:
        return left + plot_w * step / steps

    def y(loss: float) -> float:
        return top + plot_h * (y_max - loss) / (y_max - y_min)

    def polyline(points, **style) -> str:
        attrs = " ".join(f'{k.replace("_", "-")}="{v}"' for k, v in style.items())
        coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        return f'<polyline fill="none" {attrs} points="{coords}"/>'

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}: cross-entropy per token</text>',
    ]
    for loss in range(y_min, y_max + 1):  # horizontal grid, one line per nat
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(loss):.1f}" y2="{y(loss):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 8}" y="{y(loss) + 4:.1f}" text-anchor="end">{loss}</text>')
    for step in range(0, steps + 1, tick_spacing(steps)):
        parts.append(f'<line x1="{x(step):.1f}" x2="{x(step):.1f}" y1="{top + plot_h}" y2="{top + plot_h + 5}" stroke="#333"/>')
        parts.append(f'<text x="{x(step):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{step}</text>')
    parts += [
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>',
        f'<text x="{left + plot_w / 2}" y="{height - 12}" text-anchor="middle">optimizer step</text>',
        f'<text transform="translate(18 {top + plot_h / 2}) rotate(-90)" text-anchor="middle">loss (nats)</text>',
        polyline([(x(i + 1), y(v)) for i, v in enumerate(train)], stroke="#9ecae1", stroke_width=1),
        polyline([(x(i + 1), y(v)) for i, v in enumerate(smoothed(train))], stroke="#08519c", stroke_width=2),
        polyline([(x(s), y(v)) for s, v in zip(history["eval_steps"], history["eval_loss"])],
                 stroke="#e6550d", stroke_width=2),
    ]
    parts += [f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="3" fill="#e6550d"/>'
              for s, v in zip(history["eval_steps"], history["eval_loss"])]
    legend = [("#9ecae1", "training batch"), ("#08519c", "training (smoothed)"), ("#e6550d", "held-out chapters")]
    for i, (color, label) in enumerate(legend):
        ly = top + 18 + 18 * i
        parts.append(f'<line x1="{left + plot_w - 170}" x2="{left + plot_w - 145}" y1="{ly}" y2="{ly}" '
                     f'stroke="{color}" stroke-width="3"/>')
        parts.append(f'<text x="{left + plot_w - 138}" y="{ly + 4}">{escape(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def layer_parameters(config: OpenELMConfig, layer: int) -> int:
    d, hd = config.model_dim, config.head_dim
    q, kv, ffn = config.num_query_heads[layer], config.num_kv_heads[layer], config.ffn_dims[layer]
    return (q + 2 * kv) * hd * d + q * hd * d + 3 * ffn * d + 2 * d + 2 * hd


def layer_table(config: OpenELMConfig) -> str:
    rows = ["| layer | query heads | KV heads | qkv_proj out | FFN multiplier | FFN dim | parameters |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for i in range(config.num_transformer_layers):
        q, kv = config.num_query_heads[i], config.num_kv_heads[i]
        rows.append(f"| {i} | {q} | {kv} | {(q + 2 * kv) * config.head_dim} | {config.ffn_multipliers[i]} | "
                    f"{config.ffn_dims[i]} | {layer_parameters(config, i):,} |")
    return "\n".join(rows)


def model_spec(results: dict) -> ModelSpec:
    return SPECS[results.get("model", TINY.name)]


def purpose(spec: ModelSpec, results: dict) -> str:
    """The card's opening sentence after "shipped inside elm-export (folder)", line breaks included."""
    if spec.target is None:
        return """, so the exporter's tests and demos run on real,
trained weights without a Hub download."""
    d = results["draft"]
    return f""" as the draft model for
speculative decoding with OpenELM-tiny (`{spec.target.as_posix()}/`): the same tokenizer, byte for
byte, the same training text and recipe, {d['target_non_embedding_macs'] / d['non_embedding_macs']:.1f}x fewer multiply-adds per token
outside the embedding and {d['target_parameters'] / results['parameters']:.1f}x fewer parameters."""


def draft_section(spec: ModelSpec, config: OpenELMConfig, results: dict) -> str:
    """The draft's comparison with its target, ending in a blank line; nothing for a model that drafts for none."""
    if spec.target is None:
        return ""
    d, s = results["draft"], results["draft"]["speculative"]
    return f"""## As a draft for OpenELM-tiny

Measured by `exporter.tools.tiny.speculative` against `{spec.target.as_posix()}`, with the reference model.

| | this draft | OpenELM-tiny |
|---|---:|---:|
| parameters | {results['parameters']:,} | {d['target_parameters']:,} |
| decoder multiply-adds per token (projections) | {d['non_embedding_macs']:,} | {d['target_non_embedding_macs']:,} |
| perplexity, all held-out chapters | {results['heldout_split_perplexity']:.2f} | {d['target_heldout_split_perplexity']:.2f} |
| perplexity, `heldout.txt` | {results['heldout_sample_perplexity']:.2f} | {d['target_heldout_sample_perplexity']:.2f} |

Greedy agreement (both models read the held-out text, {config.max_context_length}-token windows; the share of
positions where their most likely next tokens are the same): {d['greedy_agreement_split']:.1%} over all held-out
chapters, {d['greedy_agreement_sample']:.1%} over `heldout.txt`.

Greedy speculative decoding of the {s['prompts']} sample prompts ({s['generated_tokens']} new tokens, the draft proposing
{s['lookahead']} tokens per step): {s['tokens_per_target_pass']:.2f} tokens per OpenELM-tiny forward pass, against 1 without a
draft; the output {'is' if s['same_as_target_greedy'] else 'is not quite (float near-ties)'} OpenELM-tiny's own greedy output.

"""


def write_card(folder: Path, config: OpenELMConfig, results: dict, history: dict) -> None:
    folder = Path(folder)
    spec = model_spec(results)
    (folder / "loss_curve.svg").write_text(loss_curve_svg(history, title=spec.title))
    s = results["settings"]
    minutes = results["total_seconds"] / 60
    heldout_names = ", ".join(results["heldout_chapters"])
    sample_chapters = ", ".join(results["heldout_chapters"][: results.get("heldout_sample_chapters", 2)])
    generations = "\n".join(
        f"### {g['prompt']}\n\nGreedy:\n\n```text\n{g['greedy']}\n```\n\n"
        f"Sampled (temperature 0.8, top-k 40, seeded):\n\n```text\n{g['sampled']}\n```\n"
        for g in results["generations"]
    )
    embedding = config.vocab_size * config.model_dim
    own_tokenizer = spec.tokenizer_from is None
    tokenizer_origin = "" if own_tokenizer else (
        f"OpenELM-tiny's tokenizer files, copied byte for byte from `{spec.tokenizer_from.as_posix()}/`\n"
        "(a draft must share its target's vocabulary).\n")
    sample_where = "shipped here" if spec.target is None else f"shipped in `{spec.target.as_posix()}/`"
    heldout_file = "`heldout.txt`, " if spec.target is None else ""
    text = f"""---
license: mit
language: en
library_name: elm-export
tags: [{", ".join(spec.tags)}]
---

# {spec.title} (King James Bible)

A {results['parameters'] / 1e6:.1f}M-parameter model with exactly the architecture of Apple's OpenELM
(`apple/OpenELM-*`), trained from scratch in {minutes:.0f} minutes on 2 CPU cores and shipped
inside elm-export (`{spec.folder.as_posix()}/`){purpose(spec, results)} It writes text that sounds like the King James Bible and
knows nothing else: it is a test fixture, not a useful language model.

Load it like any Hub checkpoint: `load_checkpoint("{spec.folder.as_posix()}")` (exporter.model.load) for the
weights and `transformers.AutoTokenizer.from_pretrained(...)` (or `tokenizers.Tokenizer.from_file`) for
the tokenizer.

## Architecture

Decoder-only transformer, as in OpenELM (arXiv 2404.14619): pre-norm RMSNorm (eps 1e-6), QK-norm,
rotary embeddings (base {config.rope_freq_constant:g}), grouped-query attention ({config.num_gqa_groups} query heads
per KV head), SwiGLU FFN, no biases, input embedding tied to the output projection, and layer-wise
scaling: the number of heads and the FFN width grow with depth.

| | |
|---|---|
| layers | {config.num_transformer_layers} |
| model_dim | {config.model_dim} |
| head_dim | {config.head_dim} |
| qkv_multipliers | {config.qkv_multipliers} |
| FFN multipliers | {config.ffn_multipliers[0]} .. {config.ffn_multipliers[-1]} (ffn_dim_divisor {config.ffn_dim_divisor}) |
| vocabulary | {config.vocab_size} |
| max_context_length | {config.max_context_length} |
| parameters | {results['parameters']:,} (embedding {embedding:,}, counted once: it is tied) |
| weights | float32 safetensors, sha256 of the tensors `{results['weights_sha256'][:16]}...` |

Per layer (derived from the multipliers by `exporter.config.expand_layerwise`, stored expanded in
config.json as the Hub checkpoints do):

{layer_table(config)}

## Training data

The King James Version of the Bible (1611), from the Debian package `{corpus.PACKAGE}`
{results['corpus_version']} (its `bible` program prints the text that `{corpus.TEXT_PACKAGE}`
{results['corpus_text_version']} stores). Licence: {corpus.LICENCE}.

Each of the 1,189 chapters is one document (`<s>` verses separated by newlines `</s>`). Every
{corpus.HELDOUT_EVERY}th chapter (2%, {len(results['heldout_chapters'])} chapters spread over the whole book) is held out and
never seen by the tokenizer or the model: {heldout_names}. Training text:
{results['train_chapters']:,} chapters, {results['train_tokens']:,} tokens.

## Tokenizer

{tokenizer_origin}A byte-fallback BPE in exactly LLaMA-2's Hugging Face format (the tokenizer OpenELM uses), trained on
the training chapters with the `tokenizers` library: {config.vocab_size} tokens, `<unk>`=0, `<s>`=1 (BOS,
prepended), `</s>`=2 (EOS), the 256 byte tokens `<0x00>`..`<0xFF>` at ids 3..258, then the learned pieces.
Any character outside the vocabulary (accents, CJK, emoji) is spelled as its UTF-8 bytes, so every
string round-trips. About 4 characters per token on this text.

## Training

```
{spec.train_command}
```

Seeded (seed {s['seed']}), {s['threads']} CPU threads, `torch.use_deterministic_algorithms(True)`, PyTorch
{results['torch_version']}. {s['steps']} AdamW steps (betas {tuple(s['betas'])}, weight decay {s['weight_decay']},
gradient clipping {s['grad_clip']}) of {s['batch_size']} windows x {s['seq_len']} tokens at seeded random offsets
({s['steps'] * s['batch_size'] * s['seq_len'] / results['train_tokens']:.1f} passes over the training text),
learning rate warmed up over {s['warmup_steps']} steps to {s['peak_lr']:g} then cosine-decayed to {s['min_lr']:g}.
Weights start at N(0, 0.02), residual output projections at N(0, 0.02 / sqrt(2 x layers)), norms at 1.

Wall time: {results['total_seconds']:.0f} s in all, {history['train_seconds']:.0f} s of it optimizer steps
({results['total_cpu_seconds']:.0f} CPU-seconds over {s['threads']} threads), on a 2-core machine that other jobs shared.
Running the command twice on one machine gives bit-identical weights (same sha256); PyTorch does not
promise the same bits on a different CPU or PyTorch build, where the float32 kernels may sum in another order.

![loss curve](loss_curve.svg)

## Evaluation

Perplexity by `exporter.metrics.perplexity` (windows of {config.max_context_length} tokens, each token after the first
predicted once, documents laid out as in training). A model that learned nothing would score about
{config.vocab_size} (the vocabulary size).

| held-out text | tokens | perplexity |
|---|---:|---:|
| all {len(results['heldout_chapters'])} held-out chapters | {results['heldout_split_tokens']:,} | {results['heldout_split_perplexity']:.2f} |
| `heldout.txt` ({sample_chapters}; {sample_where}, scored by the tests) | {results['heldout_sample_tokens']:,} | {results['heldout_sample_perplexity']:.2f} |

{draft_section(spec, config, results)}## Samples

Each prompt is encoded with BOS and continued by the model, greedily with `OpenELM.generate` and by
seeded top-k sampling; the printed text includes the prompt.

{generations}
## Files

`config.json` and `model.safetensors` (Hub layout, read by `exporter.checkpoint.load_checkpoint`),
`tokenizer.json` + `tokenizer_config.json` (LLaMA-2 format), {heldout_file}`training_log.json`
(every loss, the settings and results above), `loss_curve.svg`, this card.
"""
    (folder / "README.md").write_text(text)


def main(argv: list[str] | None = None) -> None:
    """`python -m exporter.tools.tiny.card FOLDER`: rewrite the card and figure from training_log.json, no retraining."""
    folder = Path((argv if argv is not None else sys.argv[1:])[0])
    log = json.loads((folder / "training_log.json").read_text())
    history = log.pop("history")
    write_card(folder, OpenELMConfig.from_file(folder / "config.json"), log, history)


if __name__ == "__main__":
    main()
