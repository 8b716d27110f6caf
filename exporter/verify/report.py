"""What a verification found: per-reference comparisons, the thresholds they are judged by, the printed report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Thresholds per recipe, set from `python -m exporter.tools.quality` on the embedded model (measured values in
# the comments; README "Verification"): about 4x the measured KL and a margin under the measured top-1,
# so a broken package fails while the recipe's own rounding passes.
# graph: package vs a reference holding the package's own weights (measured KL ≤ 3e-6, top-1 ≥ 99.6%).
GRAPH_THRESHOLDS = {"mean_kl": 1e-3, "top1": 0.98}
TOTAL_THRESHOLDS = {  # total: package vs the original float32 reference
    "none": {"mean_kl": 1e-3, "top1": 0.98},  # 2.6e-6, 99.9%
    "int8": {"mean_kl": 1e-3, "top1": 0.97},  # 3.7e-5, 99.6%
    "int4": {"mean_kl": 0.03, "top1": 0.85},  # 7.0e-3, 92.4%
    "lut8": {"mean_kl": 1e-3, "top1": 0.97},  # 3.0e-5, 99.4%
    "lut6": {"mean_kl": 3e-3, "top1": 0.94},  # 5.8e-4, 98.0%
    "lut4": {"mean_kl": 0.05, "top1": 0.82},  # 1.3e-2, 89.8%
    "lut3": {"mean_kl": 0.2, "top1": 0.70},  # 5.5e-2, 79.4%
    "lut2": {"mean_kl": 1.0, "top1": 0.30},  # 3.3e-1, 54.6% (42% on elm-verify's shorter default prompt):
    # 2 bits hurt the model; this bound only catches broken packages
    "mixed": {"mean_kl": 0.015, "top1": 0.88},  # 3.3e-3, 95.4%
}
DEFAULT_TOTAL = {"mean_kl": 0.25, "top1": 0.70}  # a --quant-map over several recipes: the loosest common bound


@dataclass
class Comparison:
    """How close the package's logits are to one reference's, position by position."""

    max_abs_error: float
    mean_kl: float
    top1_agreement: float
    greedy_agree: bool
    first_divergence: int | None  # decode step where the package's own greedy token first differs
    nonfinite: int  # inf/NaN logits the package produced
    # Top-1 agreement counting a flip as agreement where the reference's own top-2 gap is within twice the
    # median position's max |Δlogit|: a near-tie this run's float16 noise can swap (KL judges the noise).
    top1_beyond_ties: float | None = None

    def passes(self, thresholds: dict, judge_top1: bool = True, forgive_ties: bool = False) -> bool:
        top1 = self.top1_beyond_ties if forgive_ties and self.top1_beyond_ties is not None else self.top1_agreement
        return (
            self.nonfinite == 0
            and self.mean_kl <= thresholds["mean_kl"]
            and (top1 >= thresholds["top1"] or not judge_top1)
        )


@dataclass
class ParityReport:
    recipe: str
    prompt_tokens: int
    decode_steps: int
    prefill_calls: int
    reference: Comparison
    thresholds: dict
    dequantized_reference: Comparison | None = None
    graph_thresholds: dict = field(default_factory=lambda: dict(GRAPH_THRESHOLDS))
    # False for seeded random weights: their near-flat logits give quantization no meaningful tolerance,
    # so only the graph error (vs the de-quantized reference) is judged, and that by KL: near-tied logits
    # swap their top-1 under float16 rounding alone (3B int4: 4 of 147 positions at graph KL 2e-5).
    judge_total: bool = True
    coreml_runtime: dict | str = "not available on this OS (Core ML runs on macOS only)"
    activation_range: dict | None = None  # exporter.preflight over the verified tokens
    continuation: list[int] = field(default_factory=list)  # the reference's greedy tokens after the prompt
    sample: dict | None = None  # prompt and continuation as text, when the package has a tokenizer
    seconds: float = 0.0
    runtime: str = "Core ML package on elm-export's float16 executor"  # what computed the package's logits
    scope: str | None = None  # when less than the whole export ran (a twin): what ran and what that proves
    verify_function: Comparison | None = None  # speculative decoding's verify against decode (exporter.verify.speculative)
    adapters: dict = field(default_factory=dict)  # {adapter: ParityReport of its functions} (exporter.verify.adapters)
    # An adapter's total: its top-1 counted beyond near-ties, as the graph's is. The recipes' thresholds were measured
    # on the base model's own text; an adapter moves it to text where more of its top-2 are near-tied.
    total_forgives_ties: bool = False

    @property
    def passed(self) -> bool:
        ok = self.reference.passes(self.thresholds, forgive_ties=self.total_forgives_ties) or (not self.judge_total and self.dequantized_reference is not None)
        if self.dequantized_reference is not None:
            # The graph: float16 rounding alone may swap a near-tie, judged by KL (the ane graph compares decode
            # rows only, ~33 by default, where one such swap is 3%).
            ok = ok and self.dequantized_reference.passes(self.graph_thresholds, judge_top1=self.judge_total,
                                                          forgive_ties=True)
        if self.verify_function is not None:  # the same package's two functions: only float16 noise between them
            ok = ok and self.verify_function.passes(self.graph_thresholds, forgive_ties=True)
        return ok and all(report.passed for report in self.adapters.values())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        d["adapters"] = {name: report.to_dict() for name, report in self.adapters.items()}
        return d


def format_report(report: ParityReport, name: str) -> str:
    def row(label, c, limits, note=""):
        if c is None:
            return None
        greedy = "agree" if c.greedy_agree else f"differ@{c.first_divergence}"
        bad = f"  {c.nonfinite} inf/NaN" if c.nonfinite else ""
        return (f"  {label:<28}{c.max_abs_error:>10.4f}{c.mean_kl:>11.2e}{100 * c.top1_agreement:>8.1f}%"
                f"  {greedy:<11}KL ≤ {limits['mean_kl']:g}, top-1 ≥ {100 * limits['top1']:g}%{bad}{note}")

    why_not = "a twin" if report.scope else "random weights"
    lines = [
        f"{name}: recipe {report.recipe}, {report.prompt_tokens} prompt tokens in {report.prefill_calls} prefill "
        f"call(s) + {report.decode_steps} decode steps, {report.seconds:.1f}s",
        f"  {'run by':<28}{report.runtime}",
        f"  {'scope':<28}{report.scope}" if report.scope else None,
        f"  {'':<28}{'max|Δlogit|':>10}{'mean KL':>11}{'top-1':>9}  {'greedy':<11}limits",
        row("vs reference (float32)", report.reference, report.thresholds,
            "" if report.judge_total else f"  ({why_not}: not judged)"),
        row("vs de-quantized reference", report.dequantized_reference, report.graph_thresholds,
            "" if report.judge_total else f"  ({why_not}: top-1 not judged)"),
        row("verify fn vs decode", report.verify_function, report.graph_thresholds, "  (rejected drafts overwritten)"),
    ]
    if report.sample:
        lines.append(f"  {'greedy continuation':<28}{report.sample['continuation']!r}")
    if report.activation_range:
        ranges = report.activation_range
        lines.append(f"  {'activation range':<28}min headroom {ranges['min_headroom']:g}× to float16 at layer "
                     f"{ranges['worst_layer']} ({ranges['status']})")
    runtime = report.coreml_runtime
    lines.append(f"  {'Core ML runtime':<28}{runtime if isinstance(runtime, str) else runtime}")
    for adapter, adapted in report.adapters.items():
        lines += adapter_lines(adapter, adapted, row)
    lines.append("PASS" if report.passed else "FAIL: outside the thresholds for this recipe")
    return "\n".join(line for line in lines if line is not None)


def adapter_lines(name: str, report: ParityReport, row) -> list[str | None]:
    """One adapter's functions, each against the reference with the adapter applied."""
    lines = [f"  adapter {name}: prefill_{name}, decode_{name}"
             f"{f', verify_{name}' if report.verify_function else ''} vs the reference with {name} applied "
             f"({'pass' if report.passed else 'FAIL'})",
             row(f"  vs reference+{name}", report.reference, report.thresholds, "  (not judged)" if not report.judge_total
                 else f"  (beyond near-ties: {100 * (report.reference.top1_beyond_ties or 0):.1f}%)"),
             row("  vs de-quantized+adapter", report.dequantized_reference, report.graph_thresholds),
             row(f"  verify_{name} vs decode", report.verify_function, report.graph_thresholds)]
    if report.sample:
        lines.append(f"  {'  greedy continuation':<28}{report.sample['continuation']!r}")
    return lines
