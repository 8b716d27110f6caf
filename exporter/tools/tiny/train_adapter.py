"""Train a LoRA adapter (Hugging Face PEFT) for OpenELM-tiny on Ambrose Bierce's The Devil's Dictionary.

    python -m exporter.tools.tiny.train_adapter --out exporter/assets/openelm-tiny-adapters/devil

OpenELM-tiny only ever read the King James Bible; the adapter teaches it a different English (satirical
dictionary entries of 1881-1906) while its own weights stay frozen, so the exporter has a real, small
adapter to test against. The text comes from Debian's public-domain `dict-devil` package (the dictd
database `/usr/share/dictd/devil.dict.dz` and its index). Each entry is one document; the last 5% of
entries, in the book's order, are held out and never trained on. Training reuses OpenELM-tiny's loop
(exporter.tools.tiny.train), seeded, on one CPU thread, for a fixed number of steps.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# As in exporter.tools.tiny.train: idle OpenMP threads sleep, so a shared machine does not slow us down.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from tokenizers import Tokenizer

from exporter.model.load import load_checkpoint
from exporter.model.metrics import perplexity
from exporter.model.openelm import OpenELM
from exporter.tools.tiny import corpus
from exporter.tools.tiny.card import loss_curve_svg
from exporter.tools.tiny.configs import TINY
from exporter.tools.tiny.tokenizer import encode_documents
from exporter.tools.tiny.train import TrainSettings, heldout_ids, state_digest, train

NAME = "devil"
PACKAGE = "dict-devil"
SOURCE = Path("/usr/share/dictd/devil.dict.dz")  # where `apt-get install dict-devil` puts the text
TITLE = "The Devil's Dictionary"
PD_HEADER = "A Public Domain Text, Copyright Expired"  # the text's own header, quoted in the copyright file
HELDOUT_FRACTION = 0.05
HELDOUT_NAME = "heldout.txt"
DICTD_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"  # dictd's base-64 numbers
PROMPT_HEADWORDS = ("war", "wedding")  # greedy samples continue these held-out entries' headings
SAMPLE_TOKENS = 48


@dataclass(frozen=True)
class Entry:
    headword: str
    text: str  # cleaned: one paragraph or verse line a line, no blank lines (so heldout.txt can split on them)


@dataclass(frozen=True)
class LoraSettings:
    r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("token_embeddings", "qkv_proj", "out_proj", "proj_1", "proj_2")

    def config(self) -> LoraConfig:
        return LoraConfig(r=self.r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                          target_modules=list(self.target_modules), bias="none")


# About 6 minutes of optimizer steps on one thread: 5 passes over the 122k training tokens.
TRAINING = TrainSettings(steps=300, batch_size=4, seq_len=512, peak_lr=2e-3, min_lr=2e-4, warmup_steps=20,
                         weight_decay=0.0, eval_every=25, eval_windows=8, seed=1234, threads=1)


# --- the text -------------------------------------------------------------------------------------


def dictd_number(digits: str) -> int:
    """An offset or length in a dictd .index file (base 64, most significant digit first)."""
    value = 0
    for digit in digits:
        value = value * 64 + DICTD_DIGITS.index(digit)
    return value


def index_path(source: Path) -> Path:
    return source.with_name(source.name.removesuffix(".dz").removesuffix(".dict") + ".index")


def read_database(source: Path) -> list[tuple[str, str]]:
    """(headword, raw text) of every entry of a dictd database, in the book's order, metadata dropped.

    The index lists headwords alphabetically and names some entries twice (tsetse fly / tzetze fly);
    ordering by offset and keeping each offset once gives the book as printed.
    """
    data = gzip.open(source).read() if source.suffix == ".dz" else source.read_bytes()  # dictzip is gzip
    spans: dict[tuple[int, int], str] = {}
    for line in index_path(source).read_text().splitlines():
        headword, offset, length = line.split("\t")
        if not headword.startswith("00database"):
            spans.setdefault((dictd_number(offset), dictd_number(length)), headword)
    return [(word, data[start : start + size].decode()) for (start, size), word in sorted(spans.items())]


def clean_entry(raw: str) -> str:
    """Unwrap prose paragraphs, keep verse one line a line, drop the `_italics_` marks and blank lines.

    In the source, prose starts at column 0 (a paragraph's first line may be indented) and verse and
    its attribution are indented; paragraphs are separated by blank lines.
    """
    lines = []
    for paragraph in re.split(r"\n\s*\n", raw.replace("_", "")):
        rows = [row for row in paragraph.splitlines() if row.strip()]
        if not rows:
            continue
        if all(row[0].isspace() for row in rows):  # verse: keep its lines
            lines.extend(corpus.clean_verse(row) for row in rows)
        else:
            lines.append(corpus.clean_verse(" ".join(rows)))
    return "\n".join(lines)


def read_entries(source: Path) -> list[Entry]:
    return [Entry(word, text) for word, raw in read_database(source) if (text := clean_entry(raw))]


def split_entries(entries: list[Entry], fraction: float = HELDOUT_FRACTION) -> tuple[list[Entry], list[Entry]]:
    """(train, held-out): the last `fraction` of the entries, one contiguous block, is held out.

    Raises if any held-out entry's text also occurs in the training text, so the held-out
    perplexity is never measured on text the adapter was trained on.
    """
    count = max(1, round(len(entries) * fraction))
    train_entries, heldout = entries[:-count], entries[-count:]
    training_text = "\n\n".join(e.text for e in train_entries)
    leaked = [e.headword for e in heldout if e.text in training_text]
    if leaked:
        raise RuntimeError(f"held-out entries also in the training text: {leaked}")
    return train_entries, heldout


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def provenance(source: Path) -> dict:
    """Package, version, file, checksum and the licence statement of the package's copyright file."""
    doc = source.parents[1] / "doc" / PACKAGE
    copyright_text = (doc / "copyright").read_text()
    statement = re.search(r"^Copyright:\s*\n\s*\n(.+?)\n\s*\n", copyright_text, re.M | re.S)
    if statement is None or "public domain" not in statement[1] or PD_HEADER not in copyright_text:
        raise RuntimeError(f"{doc / 'copyright'} does not say the text is in the public domain")
    version = corpus.package_version(PACKAGE)
    if version == "unknown" and (doc / "changelog.Debian.gz").exists():  # extracted with dpkg-deb, not installed
        version = gzip.open(doc / "changelog.Debian.gz", "rt").readline().split("(")[1].split(")")[0]
    return {
        "title": f"{TITLE}, by Ambrose Bierce (1911)",
        "package": PACKAGE,
        "version": version,
        "file": "/usr/share/dictd/" + source.name,
        "sha256": sha256(source),
        "index_file": "/usr/share/dictd/" + index_path(source).name,
        "index_sha256": sha256(index_path(source)),
        "copyright_file": f"/usr/share/doc/{PACKAGE}/copyright",
        "copyright_statement": corpus.clean_verse(statement[1]),
        "header": f"Copyright 1911 by Albert and Charles Boni, Inc. {PD_HEADER}",
    }


def base_model() -> OpenELM:
    return load_checkpoint(TINY.installed(TINY.folder)).eval()


def wrap(lora: LoraSettings, seed: int) -> PeftModel:
    """OpenELM-tiny with LoRA layers added (seeded initialisation); only the LoRA weights train."""
    torch.manual_seed(seed)
    model = get_peft_model(base_model(), lora.config())
    model.peft_config["default"].base_model_name_or_path = TINY.folder.as_posix()
    return model


@torch.no_grad()
def greedy(model: torch.nn.Module, tokenizer: Tokenizer, prompt: str, new_tokens: int = SAMPLE_TOKENS) -> str:
    """The prompt continued greedily (`OpenELM.generate`; a PeftModel runs it with its LoRA layers)."""
    openelm = model.get_base_model() if isinstance(model, PeftModel) else model
    ids = torch.tensor([tokenizer.encode(prompt).ids])
    return tokenizer.decode(openelm.generate(ids, new_tokens, tokenizer.token_to_id("</s>"))[0].tolist())


def prompts(heldout: list[Entry]) -> list[str]:
    """Headings ("WAR, n.") of chosen held-out entries: neither model was trained on what follows."""
    return [re.match(r"[^,]+, [a-z.]+", e.text)[0] for e in heldout if e.headword in PROMPT_HEADWORDS]


def evaluate(adapted: PeftModel, tokenizer: Tokenizer, heldout_text: str, heldout: list[Entry]) -> dict:
    """Held-out perplexity and greedy samples of OpenELM-tiny alone and with the adapter (both in eval mode)."""
    base = base_model()
    adapted.eval()
    ids = heldout_ids(tokenizer, heldout_text)
    base_ppl, adapted_ppl = perplexity(base, ids), perplexity(adapted, ids)
    samples = [{"prompt": p, "base": greedy(base, tokenizer, p), "adapter": greedy(adapted, tokenizer, p)}
               for p in prompts(heldout)]
    return {
        "heldout_tokens": len(ids),
        "heldout_entries": len(heldout),
        "base_perplexity": base_ppl,
        "adapter_perplexity": adapted_ppl,
        "relative_drop": 1 - adapted_ppl / base_ppl,
        "samples": samples,
    }


def adapter_digest(model: PeftModel) -> str:
    return state_digest({n: p for n, p in model.named_parameters() if p.requires_grad})


def card_intro(log: dict) -> str:
    """Front matter, what the adapter is for, and how to load it."""
    base = TINY.folder.as_posix()
    return f"""---
license: mit
language: en
library_name: peft
base_model: {base}
tags: [openelm, lora, peft, test-fixture, tiny]
---

# OpenELM-tiny LoRA adapter: {TITLE}

A {log['adapter_bytes']:,}-byte LoRA adapter (Hugging Face PEFT {log['peft_version']}) for the embedded
OpenELM-tiny (`{base}`, which learned only the King James Bible), trained in
{log['history']['train_seconds']:.0f} s on one CPU thread on Ambrose Bierce's *{TITLE}*. It moves the model
from scripture towards satirical dictionary entries: a test fixture for adapters, not a useful model.

```python
from peft import PeftModel
from exporter.model.load import load_checkpoint
model = PeftModel.from_pretrained(load_checkpoint("{base}"), "{log['folder']}").eval()
```
"""


def card_training(log: dict) -> str:
    """Where the text comes from, its licence, the split, and the training recipe."""
    src, s, lora, ev = log["source"], log["settings"], log["lora"], log["evaluation"]
    modules = ", ".join(f"`{m}`" for m in lora["target_modules"])
    return f"""
## Training data

{src['title']}, from the Debian package `{src['package']}` {src['version']}: the dictd database
`{src['file']}` (sha256 `{src['sha256']}`) and its index `{src['index_file']}`. Licence, from
`{src['copyright_file']}`: "{src['copyright_statement']}" The header: "{src['header']}".

Each of the {log['entries']} entries is one document (`<s>` entry `</s>`), cleaned: prose paragraphs
unwrapped, verse kept one line a line, `_italics_` marks dropped. The last {HELDOUT_FRACTION:.0%} in the
book's order ({ev['heldout_entries']} entries, *{log['heldout_first']}* to *{log['heldout_last']}*) are held
out, never trained on, and shipped as `{HELDOUT_NAME}`; training text: {log['train_entries']} entries,
{log['train_tokens']:,} tokens of OpenELM-tiny's tokenizer.

## Training

```
make tiny-adapter    # = python -m exporter.tools.tiny.train_adapter --out {log['folder']}
```

LoRA r={lora['r']}, alpha={lora['lora_alpha']}, dropout {lora['lora_dropout']} on {modules} (the input
embedding; the tied output projection stays the base's): {log['trainable_parameters']:,} trainable weights
beside OpenELM-tiny's {log['base_parameters']:,} frozen ones. Seeded (seed {s['seed']}), {s['threads']} CPU
thread, `torch.use_deterministic_algorithms(True)`, PyTorch {log['torch_version']}. {s['steps']} AdamW steps
(betas {tuple(s['betas'])}, no weight decay, gradient clipping {s['grad_clip']}) of {s['batch_size']} windows
x {s['seq_len']} tokens at seeded random offsets, learning rate warmed up over {s['warmup_steps']} steps to
{s['peak_lr']} then cosine-decayed to {s['min_lr']} (the loop of `exporter.tools.tiny.train`).
Wall time: {log['total_seconds']:.0f} s in all, {log['history']['train_seconds']:.0f} s of it optimizer steps.

![loss curve](loss_curve.svg)
"""


def card_results(log: dict) -> str:
    """Held-out perplexity with and without the adapter, greedy samples, the files."""
    ev = log["evaluation"]
    samples = "\n".join(
        f"`{x['prompt']}`, OpenELM-tiny alone:\n\n```text\n{x['base']}\n```\n\n"
        f"With the adapter:\n\n```text\n{x['adapter']}\n```\n" for x in ev["samples"])
    return f"""
## Evaluation

Perplexity by `exporter.model.metrics.perplexity` on `{HELDOUT_NAME}` (all {ev['heldout_entries']} held-out
entries, {ev['heldout_tokens']:,} tokens, laid out as in training), both models in eval mode:

| model | perplexity |
|---|---:|
| OpenELM-tiny | {ev['base_perplexity']:.2f} |
| OpenELM-tiny + this adapter | {ev['adapter_perplexity']:.2f} |
| relative drop | {ev['relative_drop']:.1%} |

## Samples

Greedy continuations (`OpenELM.generate`, {SAMPLE_TOKENS} new tokens) of held-out entries' headings:

{samples}
## Files

`adapter_config.json` and `adapter_model.safetensors` (PEFT's format, safetensors only), `{HELDOUT_NAME}`,
`training_log.json` (every loss, the settings, source and results above), `loss_curve.svg`, this card.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the adapter, held-out text and card")
    parser.add_argument("--source", type=Path, default=SOURCE,
                        help="the dict-devil database, its .index beside it (default %(default)s)")
    parser.add_argument("--steps", type=int, default=TRAINING.steps, help="optimizer steps (default %(default)s)")
    parser.add_argument("--seed", type=int, default=TRAINING.seed)
    return parser.parse_args(argv)


def load_text(source: Path, tokenizer: Tokenizer) -> tuple[list[Entry], list[Entry], torch.Tensor, torch.Tensor]:
    """(train entries, held-out entries, their token streams), or a hint to install the package."""
    if not source.exists() or not index_path(source).exists():
        raise SystemExit(f"{source} (and its .index) missing: `apt-get install {PACKAGE}`, or pass --source "
                         f"the file from `apt-get download {PACKAGE}` + `dpkg-deb -x`")
    train_entries, heldout = split_entries(read_entries(source))
    train_ids = torch.tensor(encode_documents(tokenizer, [e.text for e in train_entries]))
    heldout_stream = torch.tensor(encode_documents(tokenizer, [e.text for e in heldout]))
    return train_entries, heldout, train_ids, heldout_stream


def save(model: PeftModel, out: Path, heldout_text: str, log: dict) -> None:
    """The adapter (safetensors, no embedding copy), the held-out text, the log, the loss curve and the card."""
    model.save_pretrained(out, safe_serialization=True, save_embedding_layers=False)
    (out / HELDOUT_NAME).write_text(heldout_text)
    log["adapter_bytes"] = (out / "adapter_model.safetensors").stat().st_size
    (out / "training_log.json").write_text(json.dumps(log, indent=1) + "\n")
    (out / "loss_curve.svg").write_text(loss_curve_svg(log["history"], title=f"OpenELM-tiny + LoRA ({TITLE})"))
    # README.md last: it replaces the stub card that save_pretrained writes.
    (out / "README.md").write_text(card_intro(log) + card_training(log) + card_results(log))


def main(argv: list[str] | None = None) -> None:
    import peft

    args = parse_args(argv)
    settings = TrainSettings(**{**asdict(TRAINING), "steps": args.steps, "seed": args.seed})
    lora = LoraSettings()
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    torch.use_deterministic_algorithms(True)

    tokenizer = Tokenizer.from_file(str(TINY.installed(TINY.folder) / "tokenizer.json"))
    train_entries, heldout, train_ids, heldout_stream = load_text(args.source, tokenizer)
    print(f"text: {len(train_entries)} training entries ({train_ids.numel():,} tokens), "
          f"{len(heldout)} held-out ({heldout_stream.numel():,} tokens)")
    model = wrap(lora, settings.seed)
    model.print_trainable_parameters()
    history = train(model, train_ids, heldout_stream, settings)
    heldout_text = "\n\n".join(e.text for e in heldout) + "\n"
    evaluation = evaluate(model, tokenizer, heldout_text, heldout)
    log = {
        "adapter": NAME, "folder": args.out.as_posix(), "base_model": TINY.folder.as_posix(),
        "source": provenance(args.source), "entries": len(train_entries) + len(heldout),
        "train_entries": len(train_entries), "train_tokens": train_ids.numel(),
        "heldout_first": heldout[0].headword, "heldout_last": heldout[-1].headword,
        "heldout_headwords": [e.headword for e in heldout], "evaluation": evaluation,
        "lora": asdict(lora), "settings": asdict(settings),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "base_parameters": sum(p.numel() for p in model.parameters() if not p.requires_grad),
        "adapter_sha256": adapter_digest(model), "peft_version": peft.__version__,
        "torch_version": torch.__version__, "total_seconds": round(time.perf_counter() - started, 1),
        "history": history,
    }
    save(model, args.out, heldout_text, log)
    report(log)


def report(log: dict) -> None:
    ev = log["evaluation"]
    print(f"held-out perplexity: OpenELM-tiny {ev['base_perplexity']:.2f}, with the adapter "
          f"{ev['adapter_perplexity']:.2f} ({ev['relative_drop']:.1%} lower); {log['adapter_bytes']:,} bytes; "
          f"{log['total_seconds']:.0f}s in all")
    for x in ev["samples"]:
        print(f"  base   : {x['base']!r}\n  adapter: {x['adapter']!r}")


if __name__ == "__main__":
    main()
