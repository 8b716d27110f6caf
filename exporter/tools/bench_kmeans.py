"""coremltools' default k-means palettization against `quant.kmeans` on every weight of OpenELM, per bit width.

    python -m exporter.tools.bench_kmeans --size 450m --nbits 2,4,6 --json benchmarks_kmeans.json

The default is what `OpPalettizerConfig(mode="kmeans")` runs (`palettize_weights.grouped_channelwise_compress`,
kmeans1d on each float16 group, one core); ours is what the lutN recipes run (quant.coreml's whole-matrix
palettizer: every group of a matrix in parallel on all cores). Weights are seeded random normals (std 0.02,
float16) at the real shapes of every weight matrix (the tied embedding and each layer's qkv_proj, out_proj,
proj_1, proj_2). Errors are those of the stored float16 tables, compared group by group: `groups_ours_worse`
counts the groups where ours stores a larger squared error than the default (relative tolerance 1e-12, float
summation order). The default takes ~45 ms a group at 4 bits and ~4x that at 6 bits, so its per-matrix seconds
and group errors are kept in `--cache` (out/kmeans-cache) for later runs; a result says when its default
seconds came from there. `--layers N` limits both to N evenly spaced layers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from quant.coreml import palettize_channel_groups
from quant.kmeans_dp import MAX_SOLVES

WEIGHT_STD = 0.02


@dataclass
class Run:
    method: str
    matrices: int
    groups: int
    weights: int
    seconds: float
    squared_error: float
    group_errors: list = field(default_factory=list, repr=False)  # per palette group, in order
    cached: bool = False  # seconds (and errors) read from an earlier run's cache

    def summary(self) -> dict:
        return {"method": self.method, "matrices": self.matrices, "groups": self.groups, "weights": self.weights,
                "seconds": self.seconds, "squared_error": self.squared_error,
                "ms_per_group": 1e3 * self.seconds / self.groups}


def weight_matrices(size: str) -> list[tuple[str, tuple[int, int]]]:
    """(name, [out, in]) of every 2-D weight of the model: what the lut recipes palettize."""
    from exporter.model.load import expected_shapes
    from exporter.model.presets import get_preset

    shapes = expected_shapes(get_preset(size).config())
    return [(name, shape) for name, shape in shapes.items() if len(shape) == 2]


def layer_of(name: str) -> int | None:
    parts = name.split(".")
    return int(parts[parts.index("layers") + 1]) if "layers" in parts else None


def evenly_spaced_layers(matrices, count: int) -> list[tuple[int, str, tuple[int, int]]]:
    """The matrices of `count` transformer layers spread over the depth (widths grow with depth)."""
    layers = sorted({layer_of(name) for name, _ in matrices} - {None})
    chosen = {layers[int(i)] for i in np.round(np.linspace(0, len(layers) - 1, min(count, len(layers))))}
    return [(i, name, shape) for i, (name, shape) in enumerate(matrices) if layer_of(name) in chosen]


def random_weight(index: int, shape: tuple[int, int], seed: int) -> np.ndarray:
    """The same float16 matrix for the same (seed, index), whichever subset is benchmarked."""
    rng = np.random.default_rng([seed, index])
    return (rng.standard_normal(shape, dtype=np.float32) * WEIGHT_STD).astype(np.float16)


def palettize(weight: np.ndarray, nbits: int, group_size: int, method: str):
    """Per-group palettization of one matrix, groups of output channels (axis 0): the default or ours."""
    from coremltools.optimize.coreml._quantization_passes import palettize_weights

    if method == "default":  # what OpPalettizerConfig(mode="kmeans", nbits=...) runs
        return palettize_weights.grouped_channelwise_compress(weight, "KMEANS", nbits, 0, group_size)
    return palettize_channel_groups(weight, nbits, [group_size, 0], 0)


def group_errors(weight: np.ndarray, params, group_size: int) -> np.ndarray:
    """Squared error of the stored (de-quantized) weight, per group of `group_size` output rows."""
    from coremltools.optimize.coreml._quantization_passes import palettize_weights

    restored = palettize_weights.decompress(params)
    per_row = np.empty(weight.shape[0])
    for rows in range(0, weight.shape[0], 4096):  # float64 in slices, to bound memory
        difference = restored[rows : rows + 4096].astype(np.float64) - weight[rows : rows + 4096]
        per_row[rows : rows + 4096] = np.einsum("ij,ij->i", difference, difference)
    return per_row.reshape(-1, group_size).sum(axis=1)


def default_backend(selection, group_size: int) -> str:
    """Which k-means coremltools' default runs on these groups (its rule, in quantization_utils)."""
    from coremltools._deps import _HAS_KMEANS1D

    exact = sum(shape[0] // group_size for _, _, shape in selection if group_size * shape[1] >= 10_000)
    total = sum(shape[0] // group_size for _, _, shape in selection)
    if not _HAS_KMEANS1D or exact == 0:
        return "scikit-learn KMeans (k-means++, n_init=1)"
    if exact == total:
        return "kmeans1d (exact 1-D k-means bundled with coremltools)"
    return f"kmeans1d on {exact} of {total} groups, scikit-learn KMeans on the rest"


def ours_run(selection, nbits: int, group_size: int, seed: int) -> tuple[Run, list[int]]:
    """quant.kmeans on `selection`, matrix by matrix as an export palettizes them; also the passes per group."""
    result, passes = Run("quant.kmeans", 0, 0, 0, 0.0, 0.0), []
    palettize(random_weight(0, (group_size, 64), seed), nbits, group_size, "ours")  # compiled (or loaded) first
    for done, (index, _, shape) in enumerate(selection, 1):
        weight = random_weight(index, shape, seed)
        start = time.perf_counter()
        params = palettize_channel_groups(weight, nbits, [group_size, 0], 0, passes)
        result.seconds += time.perf_counter() - start
        errors = group_errors(weight, params, group_size)
        result.squared_error += float(errors.sum())
        result.group_errors.extend(errors.tolist())
        result.matrices, result.groups, result.weights = (result.matrices + 1, result.groups + shape[0] // group_size,
                                                          result.weights + weight.size)
        progress(f"quant.kmeans {nbits}-bit: {done}/{len(selection)} matrices")
    progress("", end="\n")
    return result, passes


def default_run(selection, nbits: int, group_size: int, seed: int, cache: str | None, refresh: bool = False) -> Run:
    """coremltools' default on `selection`, its per-matrix seconds and group errors kept in `cache` (a .json).

    The default takes ~45 ms a group at 4 bits and ~4x that at 6 bits (50 min for 450M on this machine); the
    cache lets a later run compare against it without paying that again. Cached seconds are reported as such.
    """
    import coremltools

    key = {"nbits": nbits, "group_size": group_size, "seed": seed, "coremltools": coremltools.__version__}
    held = json.load(open(cache)) if cache and os.path.exists(cache) and not refresh else {}
    if held.get("key") != key:
        held = {"key": key, "matrices": {}}
    result = Run("coremltools kmeans", 0, 0, 0, 0.0, 0.0)
    for done, (index, name, shape) in enumerate(selection, 1):
        entry = held["matrices"].get(name)
        result.cached |= entry is not None
        if entry is None:
            weight = random_weight(index, shape, seed)
            start = time.perf_counter()
            params = palettize(weight, nbits, group_size, "default")
            entry = {"seconds": time.perf_counter() - start,
                     "group_errors": group_errors(weight, params, group_size).tolist()}
            held["matrices"][name] = entry
            if cache:
                with open(cache + ".tmp", "w") as handle:
                    json.dump(held, handle)
                os.replace(cache + ".tmp", cache)
        result.seconds += entry["seconds"]
        result.squared_error += float(np.sum(entry["group_errors"]))
        result.group_errors.extend(entry["group_errors"])
        result.matrices += 1
        result.groups += shape[0] // group_size
        result.weights += shape[0] * shape[1]
        progress(f"coremltools default: {done}/{len(selection)} matrices")
    progress("", end="\n")
    return result


def progress(text: str, end: str = "") -> None:
    if sys.stderr.isatty():
        print(f"\r  {text}", end=end, file=sys.stderr, flush=True)


def compare(selection, nbits: int, group_size: int, seed: int, cache: str | None, refresh: bool) -> dict:
    """Ours, then the default (or its cached figures), on the same groups at `nbits`."""
    load_before = os.getloadavg()[0]
    ours, passes = ours_run(selection, nbits, group_size, seed)
    default = default_run(selection, nbits, group_size, seed, cache, refresh)
    ratios = np.asarray(ours.group_errors) / np.maximum(default.group_errors, 1e-300)
    passes = np.asarray(passes)
    return {
        "nbits": nbits, "load_average_before_after": [load_before, os.getloadavg()[0]],
        "default_backend": default_backend(selection, group_size),
        "default_seconds_cached": default.cached, "runs": [r.summary() for r in (default, ours)],
        "speedup": default.seconds / ours.seconds,
        "error_ratio": ours.squared_error / default.squared_error,
        "groups_compared": len(ratios), "groups_ours_worse": int(np.sum(ratios > 1 + 1e-12)),
        "groups_ours_better": int(np.sum(ratios < 1 - 1e-12)), "worst_group_error_ratio": float(ratios.max()),
        "passes_per_group": float(passes.mean()),
        "groups_layered_fallback": int(np.sum(passes > MAX_SOLVES)),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="450m")
    parser.add_argument("--nbits", default="2,4,6", help="comma-separated bit widths")
    parser.add_argument("--group-size", type=int, default=16)
    parser.add_argument("--layers", type=int, default=None, help="only this many evenly spaced layers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default="out/kmeans-cache", help="folder for the default's figures ('' for none)")
    parser.add_argument("--time-default", default="4",
                        help="bit widths whose default is run again in this run, cache or not (the speed figure)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    refresh = {int(b) for b in args.time_default.split(",") if b}

    matrices = weight_matrices(args.size)
    everything = [(i, name, shape) for i, (name, shape) in enumerate(matrices)]
    selection = everything if args.layers is None else evenly_spaced_layers(matrices, args.layers)
    print(f"OpenELM-{args.size}: {len(selection)} of {len(everything)} weight matrices, "
          f"{sum(r * c for _, _, (r, c) in selection) / 1e6:.1f}M weights, group size {args.group_size}",
          file=sys.stderr)
    if args.cache:
        os.makedirs(args.cache, exist_ok=True)
    result = {"size": args.size, "group_size": args.group_size, "seed": args.seed, "weight_std": WEIGHT_STD,
              "cpus": os.cpu_count(), "layers": args.layers, "whole_model": selection == everything, "bits": []}
    for nbits in (int(b) for b in args.nbits.split(",")):
        cache = os.path.join(args.cache, f"{args.size}-default-{nbits}bit.json") if args.cache else None
        row = compare(selection, nbits, args.group_size, args.seed, cache, nbits in refresh)
        result["bits"].append({**row, "layers": args.layers, "whole_model": selection == everything})
        print_row(result["bits"][-1])
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return result


def print_row(row: dict) -> None:
    default, ours = row["runs"]
    cached = " (default seconds cached from an earlier run)" if row["default_seconds_cached"] else ""
    print(f"{row['nbits']}-bit: default {default['seconds']:.1f} s, ours {ours['seconds']:.1f} s: "
          f"{row['speedup']:.1f}x{cached}; squared error ours/default {row['error_ratio']:.9f}; groups ours worse "
          f"{row['groups_ours_worse']} of {row['groups_compared']} (worst ratio {row['worst_group_error_ratio']:.12f}), "
          f"better {row['groups_ours_better']}; {row['passes_per_group']:.2f} priced passes a group, "
          f"{row['groups_layered_fallback']} layered fallbacks; load {row['load_average_before_after']}")


if __name__ == "__main__":
    main()
