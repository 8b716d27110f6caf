"""Time coremltools' default k-means palettization against `quant.kmeans` on OpenELM-shaped weights.

    python -m exporter.tools.bench_kmeans --size 450m --nbits 4 --group-size 16 --layers 2 --json bench.json

Both run through coremltools' own per-group code (`palettize_weights.grouped_channelwise_compress`,
what `palettize_weights` calls for `granularity="per_grouped_channel"`): mode "KMEANS" for the
default, mode "CUSTOM" with our `lut_function` for ours. Weights are seeded random normals (std
0.02, float16) with the real shapes of every weight matrix (the tied embedding and each layer's
qkv_proj, out_proj, proj_1, proj_2). The default is slow, so `--layers N` times it on N evenly
spaced transformer layers only and extrapolates to the whole model in proportion to the number of
weights; that figure is printed as an extrapolation. Ours always runs on the whole model, and on
the subset too, so that speed and error are also compared on identical groups (`--subset-only`
skips the whole-model run, for 8 bits where it takes long). Errors are those of the stored float16
tables; `groups_ours_worse` counts the groups where ours stores a larger squared error than the
default (quant.kmeans reaches kmeans1d's exact optimum, so it should be 0).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from quant.kmeans import lut_function

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

    @property
    def ms_per_group(self) -> float:
        return 1e3 * self.seconds / self.groups


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
    """coremltools' per-group palettization of one matrix, groups of output channels (axis 0)."""
    from coremltools.optimize.coreml._quantization_passes import palettize_weights

    if method == "default":  # what OpPalettizerConfig(mode="kmeans", nbits=...) runs
        return palettize_weights.grouped_channelwise_compress(weight, "KMEANS", nbits, 0, group_size)
    return palettize_weights.grouped_channelwise_compress(weight, "CUSTOM", None, 0, group_size,
                                                          lut_function(nbits))


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


def run(methods: dict[str, str], selection, nbits: int, group_size: int, seed: int) -> list[Run]:
    """Palettize every matrix of `selection` with each method in turn ({label: method}).

    Methods alternate matrix by matrix, so a change in machine load hits all of them alike.
    """
    runs = {label: Run(label, 0, 0, 0, 0.0, 0.0) for label in methods}
    for done, (index, _, shape) in enumerate(selection, 1):
        weight = random_weight(index, shape, seed)
        for label, method in methods.items():
            start = time.perf_counter()
            params = palettize(weight, nbits, group_size, method)
            runs[label].seconds += time.perf_counter() - start
            errors = group_errors(weight, params, group_size)
            runs[label].squared_error += float(errors.sum())
            runs[label].group_errors.extend(errors.tolist())
            runs[label].matrices += 1
            runs[label].groups += shape[0] // group_size
            runs[label].weights += weight.size
        progress(f"{', '.join(methods)}: {done}/{len(selection)} matrices")
    progress("", end="\n")
    return list(runs.values())


def progress(text: str, end: str = "") -> None:
    if sys.stderr.isatty():
        print(f"\r  {text}", end=end, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="450m")
    parser.add_argument("--nbits", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=16)
    parser.add_argument("--layers", type=int, default=None,
                        help="time the default on this many evenly spaced layers and extrapolate")
    parser.add_argument("--subset-only", action="store_true",
                        help="with --layers: skip running ours on the whole model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)

    matrices = weight_matrices(args.size)
    everything = [(i, name, shape) for i, (name, shape) in enumerate(matrices)]
    subset = everything if args.layers is None else evenly_spaced_layers(matrices, args.layers)
    print(f"OpenELM-{args.size}: {len(everything)} weight matrices, "
          f"{sum(r * c for _, _, (r, c) in everything) / 1e6:.1f}M weights; {args.nbits}-bit, "
          f"group size {args.group_size}", file=sys.stderr)

    load_before = os.getloadavg()
    same = "quant.kmeans" if subset == everything else "quant.kmeans (same matrices)"
    default, ours_subset = run({"coremltools kmeans": "default", same: "ours"},
                               subset, args.nbits, args.group_size, args.seed)
    ours_all = ours_subset
    if subset != everything and not args.subset_only:
        (ours_all,) = run({"quant.kmeans, whole model": "ours"}, everything, args.nbits, args.group_size, args.seed)

    scale = sum(r * c for _, _, (r, c) in everything) / default.weights  # extrapolation by weights
    worse = np.asarray(ours_subset.group_errors) > np.asarray(default.group_errors) * (1 + 1e-12)
    result = {
        "size": args.size, "nbits": args.nbits, "group_size": args.group_size, "seed": args.seed,
        "weight_std": WEIGHT_STD, "cpus": os.cpu_count(),
        "load_average_before_after": [load_before[0], os.getloadavg()[0]],
        "default_backend": default_backend(subset, args.group_size),
        "default_subset_layers": args.layers, "default_extrapolated": subset != everything,
        "runs": [dict(asdict(r), ms_per_group=r.ms_per_group) for r in (default, ours_subset, ours_all)],
        "ours_whole_model_measured": ours_all is not ours_subset or subset == everything,
        "default_seconds_whole_model": default.seconds * scale,
        "ours_seconds_whole_model_by_same_extrapolation": ours_subset.seconds * scale,
        "speedup_same_matrices": default.seconds / ours_subset.seconds,
        "error_ratio_same_matrices": ours_subset.squared_error / default.squared_error,
        "groups_compared": len(worse),
        "groups_ours_worse": int(worse.sum()),
        "worst_group_error_ratio": float(np.max(np.asarray(ours_subset.group_errors)
                                                / np.maximum(default.group_errors, 1e-300))),
    }
    for run_result in result["runs"]:
        del run_result["group_errors"]  # per-group figures stay out of the JSON: summarised above
    print_table(result, default, ours_subset, ours_all, scale)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return result


def print_table(result, default: Run, ours_subset: Run, ours_all: Run, scale: float) -> None:
    rows = [default, ours_subset] + ([ours_all] if ours_all is not ours_subset else [])
    print(f"\ncoremltools default here: {result['default_backend']}; {result['cpus']} CPUs, "
          f"1-min load average {result['load_average_before_after'][0]:.1f} before, "
          f"{result['load_average_before_after'][1]:.1f} after")
    print(f"\n{'method':34s} {'matrices':>8s} {'groups':>7s} {'seconds':>9s} {'ms/group':>9s} {'squared error':>14s}")
    for r in rows:
        print(f"{r.method:34s} {r.matrices:8d} {r.groups:7d} {r.seconds:9.1f} {r.ms_per_group:9.2f} {r.squared_error:14.6g}")
    if result["default_extrapolated"]:
        print(f"\ncoremltools kmeans on the whole model: ~{result['default_seconds_whole_model']:.0f} s, "
              f"EXTRAPOLATED from {default.matrices} matrices ({default.weights / 1e6:.1f}M weights, x{scale:.1f})")
        estimate = f"the same extrapolation from its subset time says {ours_subset.seconds * scale:.0f} s"
        if result["ours_whole_model_measured"]:
            print(f"quant.kmeans on the whole model: {ours_all.seconds:.0f} s measured ({estimate})")
        else:
            print(f"quant.kmeans on the whole model: not run (--subset-only); {estimate}")
    print(f"speed-up on the same matrices: {result['speedup_same_matrices']:.1f}x; "
          f"squared error ours/default: {result['error_ratio_same_matrices']:.9f}; groups where ours stores "
          f"a larger error: {result['groups_ours_worse']} of {result['groups_compared']} "
          f"(worst group ratio {result['worst_group_error_ratio']:.9f})")

if __name__ == "__main__":
    main()
