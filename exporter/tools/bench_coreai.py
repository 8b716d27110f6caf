"""`make bench`'s Core AI figures: what an export records, and the table beside Core ML's int4 runs."""

from __future__ import annotations


def coreai_fields(manifest: dict) -> dict:
    coreai = manifest["coreai"]
    return {
        "stage_s": {k: round(v, 1) for k, v in manifest.get("timings", {}).items()},
        "chunks": len(coreai["chunks"]),
        "package_bytes": coreai["package_bytes"],
        "theoretical_bytes": coreai["size"]["theoretical_bytes"],
        "package_to_theory": coreai["size"]["package_to_theory"],
    }


def coreai_section(coreml: list[dict], coreai: list[dict], order: dict) -> list[str]:
    """Core AI int4 exports beside Core ML's int4 exports of the same size, from the same run."""
    if not coreai:
        return []
    ours = {r["size"]: r for r in coreml if r["recipe"] == "int4"}
    lines = [
        "",
        "## Core AI (iOS 27 / macOS 27) beside Core ML, int4",
        "",
        "Same run, same sizes and options (`--format coreai`). Core AI verification runs the model in Apple's "
        "Core AI runtime (coreai-core's CPU runtime on Linux); above 50M parameters that runtime is too slow "
        "for the whole model, so elm-verify runs a twin (first and last layer at the real widths, same recipe "
        "and export code, context 64) and checks the shipped .aimodel by sha256 and signature.",
        "",
        "| size | format | models | export s | export peak RSS GB | MB on disk | theory MB | disk/theory | verify s "
        "| verify peak RSS GB | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in sorted(coreai, key=lambda r: order.get(r["size"], 9)):
        for label, r in (("Core ML", ours.get(run["size"])), ("Core AI", run)):
            if r is None:
                continue
            if r.get("error"):
                lines.append(f"| {r['size']} | {label} | | {r['wall_s']} | {r['peak_rss_bytes'] / 1e9:.1f} | "
                             f"failed: {r['error']} | | | | | {r.get('load_before', '')} |")
                continue
            ratio = r.get("package_to_theory", r.get("weights_to_theory"))
            verify = r.get("verify_s", "-")
            if r.get("verify_error"):
                verify = f"failed: {r['verify_error']}"
            elif r.get("verify_exit_code") == 1:
                verify = f"{verify} (FAIL)"
            rss = f"{r['verify_peak_rss_bytes'] / 1e9:.1f}" if r.get("verify_peak_rss_bytes") else "-"
            lines.append(f"| {r['size']} | {label} | {r.get('chunks', 1)} | {r['wall_s']} | "
                         f"{r['peak_rss_bytes'] / 1e9:.1f} | {r['package_bytes'] / 1e6:.1f} | "
                         f"{r['theoretical_bytes'] / 1e6:.1f} | {ratio} | {verify} | {rss} | {r.get('load_before', '')} |")
    return lines
