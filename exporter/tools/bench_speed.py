"""BENCHMARKS.md's speed sections: k-means against coremltools' default, palettized exports against int4 in the
same run, verification times against their targets, and a plot of export time and peak RSS per size.

The plot needs matplotlib (`pip install -e '.[bench]'`, which `make bench` does); without it the section
says so and the tables stay.
"""

from __future__ import annotations

import json
from pathlib import Path

KMEANS = Path("benchmarks_kmeans.json")  # written by `python -m exporter.tools.bench_kmeans --json ...`
PLOT = Path("benchmarks_export.png")
SIZE_ORDER = {"270m": 0, "450m": 1, "1_1b": 2, "3b": 3}
KMEANS_SPEEDUP_TARGET = 20  # at 4 bits, whole model, against coremltools' default
LUT_TIME_TARGET, LUT_RSS_TARGET = 1.5, 1.2  # lut4 export against int4's, same run
VERIFY_TARGETS = {"3b": (300, 12e9), "1_1b": (120, None)}  # elm-verify of the int4 export: seconds, peak RSS


def kmeans_section(path: Path = KMEANS) -> list[str]:
    if not path.is_file():
        return []
    k = json.loads(path.read_text())
    if "bits" not in k:
        return []  # an older schema: rerun bench_kmeans
    lines = [
        "", "## Palettization k-means: coremltools' default vs ours", "",
        f"`python -m exporter.tools.bench_kmeans --size {k['size']} --nbits {','.join(str(b['nbits']) for b in k['bits'])}"
        f" --json {path}`: the weight matrices of OpenELM-{k['size'].upper()} (seeded, std {k['weight_std']}, float16), groups of "
        f"{k['group_size']} output channels, {k['cpus']} cores. The default is what `OpPalettizerConfig(mode=\"kmeans\")` "
        "runs (kmeans1d, exact, one group at a time on one core); ours is what the lutN recipes run (quant.kmeans: the "
        "same optimum, certified by a price per run or found by a layered programme; all groups of a matrix in parallel). "
        "Errors are those of the stored float16 tables, compared group by group." + (f" {k['note']}" if k.get("note") else ""),
        "",
        "| bits | matrices | groups | default s | ours s | speed-up | squared error ours/default | groups ours worse | "
        "groups ours better | priced passes a group | layered fallbacks | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b in k["bits"]:
        default, ours = b["runs"]
        cached = " (cached: an earlier run)" if b["default_seconds_cached"] else ""
        scope = "all" if b.get("whole_model", k["whole_model"]) else f"{b['layers']} layers"
        lines.append(
            f"| {b['nbits']} | {scope} ({default['matrices']}) | {b['groups_compared']} | {default['seconds']:.1f}{cached} "
            f"| {ours['seconds']:.1f} | "
            f"{b['speedup']:.1f}× | {b['error_ratio']:.9f} | {b['groups_ours_worse']} | {b['groups_ours_better']} | "
            f"{b['passes_per_group']:.2f} | {b['groups_layered_fallback']} | "
            f"{', '.join(f'{v:.1f}' for v in b['load_average_before_after'])} |")
    four = next((b for b in k["bits"] if b["nbits"] == 4), None)
    if four:
        met = (four["speedup"] >= KMEANS_SPEEDUP_TARGET and not four["default_seconds_cached"]
               and four.get("whole_model", k["whole_model"]))
        lines += ["", f"Target: the whole model at 4 bits ≥ {KMEANS_SPEEDUP_TARGET}× faster than the default, same run: "
                  f"{four['speedup']:.1f}× ({'met' if met else 'not met'}); groups worse than the default at every "
                  f"width: {sum(b['groups_ours_worse'] for b in k['bits'])} (target 0)."]
    return lines


def same_run(exports: list[dict], size: str, recipe: str, like: dict) -> dict | None:
    return next((r for r in exports if r["size"] == size and r["recipe"] == recipe and r.get("run") == like.get("run")
                 and not r.get("error")), None)


def speed_section(exports: list[dict]) -> list[str]:
    """lut4 and mixed exports against int4 of the same run, and the verification targets."""
    lines = ["", "## Palettized exports against int4, and verification times", "",
             f"Same `make bench` run per size. Targets: lut4 export time ≤ {LUT_TIME_TARGET}× int4's, peak RSS ≤ "
             f"{LUT_RSS_TARGET}× int4's; elm-verify of int4 (default prompt) within 300 s and 12 GB at 3B, 120 s at 1.1B.",
             "", "| size | recipe | export s (int4 s) | time ratio | peak RSS GB (int4) | RSS ratio | target |",
             "|---|---|---|---|---|---|---|"]
    rows = 0
    for int4 in sorted((r for r in exports if r["recipe"] == "int4" and not r.get("error")),
                       key=lambda r: SIZE_ORDER.get(r["size"], 9)):
        for recipe in ("lut4", "mixed"):
            other = same_run(exports, int4["size"], recipe, int4)
            if other is None:
                continue
            time_ratio = other["wall_s"] / int4["wall_s"]
            rss_ratio = other["peak_rss_bytes"] / int4["peak_rss_bytes"]
            target = "" if recipe != "lut4" else (
                "met" if time_ratio <= LUT_TIME_TARGET and rss_ratio <= LUT_RSS_TARGET else "not met")
            lines.append(f"| {int4['size']} | {recipe} | {other['wall_s']} ({int4['wall_s']}) | {time_ratio:.2f}× | "
                         f"{other['peak_rss_bytes'] / 1e9:.1f} ({int4['peak_rss_bytes'] / 1e9:.1f}) | {rss_ratio:.2f}× "
                         f"| {target} |")
            rows += 1
    verify_lines = []
    for size, (seconds, rss) in VERIFY_TARGETS.items():
        int4 = next((r for r in exports if r["size"] == size and r["recipe"] == "int4" and r.get("verify_s")), None)
        if int4 is None:
            continue
        met = int4["verify_s"] <= seconds and (rss is None or int4["verify_peak_rss_bytes"] <= rss)
        limit = f"{seconds} s" + (f", {rss / 1e9:.0f} GB" if rss else "")
        verify_lines.append(f"- elm-verify {size} int4: {int4['verify_s']} s, peak RSS "
                            f"{int4['verify_peak_rss_bytes'] / 1e9:.1f} GB (target {limit}: {'met' if met else 'not met'}).")
    return lines + [""] + verify_lines if rows or verify_lines else []


def plot(exports: list[dict], path: Path = PLOT) -> list[str]:
    """Export time and peak RSS per size and recipe, as an image beside BENCHMARKS.md."""
    try:
        import matplotlib
    except ImportError:
        return ["", "(The plot needs matplotlib: `pip install -e '.[bench]'`.)"]
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    good = [r for r in exports if not r.get("error")]
    sizes = sorted({r["size"] for r in good}, key=lambda s: SIZE_ORDER.get(s, 9))
    figure, (time_axis, rss_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for recipe in sorted({r["recipe"] for r in good}):
        by_size = {r["size"]: r for r in good if r["recipe"] == recipe}
        xs = [i for i, s in enumerate(sizes) if s in by_size]
        time_axis.plot(xs, [by_size[sizes[i]]["wall_s"] for i in xs], marker="o", label=recipe)
        rss_axis.plot(xs, [by_size[sizes[i]]["peak_rss_bytes"] / 1e9 for i in xs], marker="o", label=recipe)
    for axis, title in ((time_axis, "export time (s)"), (rss_axis, "export peak RSS (GB)")):
        axis.set_xticks(range(len(sizes)), [s.replace("_", ".").upper() for s in sizes])
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return ["", f"![Export time and peak RSS per size and recipe]({path.name})"]
