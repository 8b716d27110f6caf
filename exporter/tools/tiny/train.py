"""Train the embedded tiny OpenELM end to end: corpus, tokenizer, model, metrics, model card.

    python -m exporter.tools.tiny.train --out exporter/assets/openelm-tiny
    python -m exporter.tools.tiny.train --config draft --out exporter/assets/openelm-tiny-draft

The draft (exporter.tools.tiny.configs) is a smaller OpenELM for speculative decoding: it copies
OpenELM-tiny's tokenizer files instead of training a tokenizer, trains the same way, and is
also scored against OpenELM-tiny (greedy agreement, tokens kept per verification pass).

Everything is seeded and single-process, so two runs on the same machine write the same
files (wall-clock times in the card aside). The step count is fixed rather than a time
budget, because a time budget would make the weights depend on the machine's speed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning. On a shared machine spinning threads starve
# the working ones (a training step ran 6x slower under load); the numbers are unaffected.
# Set before torch loads OpenMP, which `python -m exporter.tools.tiny.train` guarantees.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from exporter.model.load import load_checkpoint, save_checkpoint
from exporter.model.metrics import perplexity
from exporter.model.openelm import KVCache, OpenELM
from exporter.tools.tiny import card, corpus
from exporter.tools.tiny.configs import SPECS, ModelSpec, non_embedding_macs
from exporter.tools.tiny.speculative import greedy_agreement, speculative_summary
from exporter.tools.tiny.tokenizer import encode_documents, save_tokenizer, train_tokenizer

HELDOUT_SAMPLE_NAME = "heldout.txt"
HELDOUT_SAMPLE_CHARS = 8000  # the committed sample the tests score: a few KB of held-out chapters
PROMPTS = ["And God said", "Blessed are the", "In the beginning"]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 800
    batch_size: int = 4
    seq_len: int = 512  # the full context, so perplexity windows never exceed trained positions
    peak_lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 50
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_every: int = 50
    eval_windows: int = 8
    seed: int = 1234
    threads: int = 2


def init_weights(model: OpenELM, seed: int) -> None:
    """GPT-2 style: N(0, 0.02), residual output projections shrunk by sqrt(2 * layers), norms at 1."""
    generator = torch.Generator().manual_seed(seed)
    residual_std = 0.02 / math.sqrt(2 * model.config.num_transformer_layers)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            else:
                std = residual_std if name.endswith(("out_proj.weight", "proj_2.weight")) else 0.02
                param.copy_(torch.randn(param.shape, generator=generator) * std)


def learning_rate(step: int, s: TrainSettings) -> float:
    """Linear warm-up, then cosine decay from peak_lr to min_lr at the last step."""
    if step < s.warmup_steps:
        return s.peak_lr * (step + 1) / s.warmup_steps
    progress = (step - s.warmup_steps) / max(1, s.steps - 1 - s.warmup_steps)
    return s.min_lr + 0.5 * (s.peak_lr - s.min_lr) * (1 + math.cos(math.pi * progress))


def random_windows(stream: torch.Tensor, count: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """`count` windows of `length` + 1 tokens (inputs and shifted targets) at seeded random offsets."""
    starts = torch.randint(0, stream.numel() - length - 1, (count,), generator=generator)
    return torch.stack([stream[s : s + length + 1] for s in starts.tolist()])


def language_model_loss(model: OpenELM, windows: torch.Tensor) -> torch.Tensor:
    logits = model(windows[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))


def train(model: OpenELM, train_ids: torch.Tensor, heldout_ids: torch.Tensor, s: TrainSettings, log=print) -> dict:
    """AdamW + cosine schedule on random windows; returns the loss history for the card."""
    data_generator = torch.Generator().manual_seed(s.seed + 1)
    # A fixed set of held-out windows, so the held-out curve compares like with like.
    eval_batch = random_windows(heldout_ids, s.eval_windows, s.seq_len, torch.Generator().manual_seed(s.seed + 2))
    decay = [p for n, p in model.named_parameters() if not n.endswith("norm.weight")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("norm.weight")]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": s.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=s.peak_lr, betas=s.betas, eps=1e-8,
    )
    history = {"train_loss": [], "eval_steps": [], "eval_loss": [], "lr": []}
    start, start_cpu = time.perf_counter(), time.process_time()
    for step in range(s.steps):
        lr = learning_rate(step, s)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        loss = language_model_loss(model, random_windows(train_ids, s.batch_size, s.seq_len, data_generator))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        optimizer.step()
        history["train_loss"].append(round(loss.item(), 5))
        history["lr"].append(lr)
        if (step + 1) % s.eval_every == 0 or step + 1 == s.steps:
            model.eval()
            with torch.no_grad():
                eval_loss = language_model_loss(model, eval_batch).item()
            history["eval_steps"].append(step + 1)
            history["eval_loss"].append(round(eval_loss, 5))
            elapsed = time.perf_counter() - start
            log(f"step {step + 1:4d}/{s.steps}  lr {lr:.2e}  train {loss.item():.3f}  held-out {eval_loss:.3f}  "
                f"{elapsed:6.0f}s")
    history["train_seconds"] = round(time.perf_counter() - start, 1)
    history["train_cpu_seconds"] = round(time.process_time() - start_cpu, 1)
    return history


@torch.no_grad()
def sample(model: OpenELM, ids: list[int], max_new_tokens: int, temperature: float, top_k: int, seed: int,
           eos_token_id: int) -> list[int]:
    """Seeded top-k sampling with the KV cache (the reference `generate` is greedy only)."""
    generator = torch.Generator().manual_seed(seed)
    cache = KVCache(model.config.num_transformer_layers)
    tokens = list(ids)
    logits = model(torch.tensor([ids]), cache)[0, -1]
    for _ in range(max_new_tokens):
        top_logits, top_ids = torch.topk(logits / temperature, top_k)
        next_id = int(top_ids[torch.multinomial(torch.softmax(top_logits, -1), 1, generator=generator)])
        tokens.append(next_id)
        if next_id == eos_token_id or len(tokens) >= model.config.max_context_length:
            break
        logits = model(torch.tensor([[next_id]]), cache)[0, -1]
    return tokens


def generations(model: OpenELM, tokenizer: Tokenizer, seed: int) -> list[dict]:
    eos = tokenizer.token_to_id("</s>")
    out = []
    for i, prompt in enumerate(PROMPTS):
        ids = tokenizer.encode(prompt).ids
        greedy = model.generate(torch.tensor([ids]), max_new_tokens=48, eos_token_id=eos)[0].tolist()
        sampled = sample(model, ids, 64, temperature=0.8, top_k=40, seed=seed + i, eos_token_id=eos)
        out.append({"prompt": prompt, "greedy": tokenizer.decode(greedy), "sampled": tokenizer.decode(sampled)})
    return out


def heldout_sample(chapters: list[corpus.Chapter], max_chars: int = HELDOUT_SAMPLE_CHARS) -> str:
    """The first whole held-out chapters that fit in `max_chars` (at least one), split by blank lines."""
    texts = [chapters[0].text]
    for chapter in chapters[1:]:
        if sum(len(t) + 2 for t in texts) + len(chapter.text) > max_chars:
            break
        texts.append(chapter.text)
    return "\n\n".join(texts) + "\n"


def heldout_ids(tokenizer: Tokenizer, text: str) -> list[int]:
    """Token ids of a held-out text (chapters split by blank lines), laid out as in training."""
    return encode_documents(tokenizer, [doc.strip() for doc in text.split("\n\n") if doc.strip()])


def state_digest(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the model, tokenizer and card to")
    parser.add_argument("--config", choices=sorted(SPECS), default="tiny",
                        help="which model: tiny (OpenELM-tiny) or draft (its speculative-decoding draft)")
    parser.add_argument("--draft", dest="config", action="store_const", const="draft", help="same as --config draft")
    parser.add_argument("--steps", type=int, default=TrainSettings.steps, help="optimizer steps (default %(default)s)")
    parser.add_argument("--seed", type=int, default=TrainSettings.seed)
    return parser.parse_args(argv)


def prepare_tokenizer(spec: ModelSpec, train_chapters: list[corpus.Chapter], out: Path) -> Tokenizer:
    """Train a tokenizer on the training chapters, or copy `spec.tokenizer_from`'s files byte for byte."""
    if spec.tokenizer_from is None:
        tokenizer = train_tokenizer(verse for chapter in train_chapters for verse in chapter.verses)
        save_tokenizer(tokenizer, out, spec.config(tokenizer.get_vocab_size()).max_context_length)
        return tokenizer
    out.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(spec.installed(spec.tokenizer_from) / name, out / name)
    saved = json.loads((out / "tokenizer_config.json").read_text())
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    if saved["model_max_length"] != spec.config(tokenizer.get_vocab_size()).max_context_length:
        raise RuntimeError(f"{spec.tokenizer_from}'s tokenizer is for another context length")
    return tokenizer


def draft_results(model: OpenELM, spec: ModelSpec, tokenizer: Tokenizer, split_ids, sample_ids) -> dict:
    """The draft beside its target: size, per-token work, perplexity, greedy agreement, speculative decoding."""
    target = load_checkpoint(spec.installed(spec.target))
    if target.config.vocab_size != model.config.vocab_size:
        raise RuntimeError(f"{spec.target} has another vocabulary than the draft")
    return {
        "target": spec.target.name,
        "target_parameters": target.num_parameters(),
        "non_embedding_macs": non_embedding_macs(model.config),
        "target_non_embedding_macs": non_embedding_macs(target.config),
        "target_heldout_split_perplexity": perplexity(target, split_ids),
        "target_heldout_sample_perplexity": perplexity(target, sample_ids),
        "greedy_agreement_split": greedy_agreement(model, target, split_ids),
        "greedy_agreement_sample": greedy_agreement(model, target, sample_ids),
        "speculative": speculative_summary(model, target, [tokenizer.encode(p).ids for p in PROMPTS]),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spec = SPECS[args.config]
    settings = TrainSettings(steps=args.steps, seed=args.seed)
    started, started_cpu = time.perf_counter(), time.process_time()

    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    torch.use_deterministic_algorithms(True)

    chapters = corpus.read_chapters()
    train_chapters, heldout_chapters = corpus.split_chapters(chapters)
    tokenizer = prepare_tokenizer(spec, train_chapters, args.out)
    config = spec.config(tokenizer.get_vocab_size())
    train_ids = torch.tensor(encode_documents(tokenizer, [c.text for c in train_chapters]))
    heldout_split_ids = torch.tensor(encode_documents(tokenizer, [c.text for c in heldout_chapters]))
    print(f"corpus: {len(train_chapters)} training chapters ({train_ids.numel():,} tokens), "
          f"{len(heldout_chapters)} held-out chapters ({heldout_split_ids.numel():,} tokens)")

    model = OpenELM(config)
    init_weights(model, settings.seed)
    print(f"model {spec.title}: {model.num_parameters():,} parameters, q heads {config.num_query_heads}, "
          f"kv heads {config.num_kv_heads}, ffn {config.ffn_dims}")
    history = train(model, train_ids, heldout_split_ids, settings)
    model.eval()

    state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    save_checkpoint(args.out, config, state)
    sample_text = heldout_sample(heldout_chapters)
    if spec.target is None:  # a draft is scored on its target's copy, never writes its own
        (args.out / HELDOUT_SAMPLE_NAME).write_text(sample_text)
    sample_ids = heldout_ids(tokenizer, sample_text)
    results = {
        "model": spec.name,
        "heldout_split_perplexity": perplexity(model, heldout_split_ids),
        "heldout_split_tokens": heldout_split_ids.numel(),
        "heldout_sample_perplexity": perplexity(model, sample_ids),
        "heldout_sample_tokens": len(sample_ids),
        "heldout_sample_chapters": sample_text.count("\n\n") + 1,
        "train_tokens": train_ids.numel(),
        "parameters": model.num_parameters(),
        "weights_sha256": state_digest(state),
        "generations": generations(model, tokenizer, settings.seed),
        "corpus_version": corpus.package_version(corpus.PACKAGE),
        "corpus_text_version": corpus.package_version(corpus.TEXT_PACKAGE),
        "heldout_chapters": [f"{c.book} {c.number}" for c in heldout_chapters],
        "train_chapters": len(train_chapters),
        "settings": asdict(settings),
        "torch_version": torch.__version__,
    }
    if spec.target is not None:
        results["draft"] = draft_results(model, spec, tokenizer, heldout_split_ids, sample_ids)
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results["total_cpu_seconds"] = round(time.process_time() - started_cpu, 1)
    (args.out / "training_log.json").write_text(json.dumps({**results, "history": history}, indent=1) + "\n")
    card.write_card(args.out, config, results, history)
    report(results)


def report(results: dict) -> None:
    print(f"held-out perplexity {results['heldout_split_perplexity']:.2f} (split), "
          f"{results['heldout_sample_perplexity']:.2f} ({HELDOUT_SAMPLE_NAME}); "
          f"weights sha256 {results['weights_sha256'][:16]}; {results['total_seconds']:.0f}s in all")
    if "draft" in results:
        print("against the target: " + json.dumps(results["draft"]))
    for g in results["generations"]:
        print(f"  greedy : {g['greedy']!r}\n  sampled: {g['sampled']!r}")


if __name__ == "__main__":
    main()
