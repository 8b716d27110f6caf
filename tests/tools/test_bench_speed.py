"""BENCHMARKS.md's speed sections: ratios within one run only, targets judged from the figures."""

from __future__ import annotations

import json

from exporter.tools.bench_speed import kmeans_section, plot, speed_section


def export(size, recipe, wall, rss, run="a", **more):
    return {"kind": "export", "size": size, "recipe": recipe, "wall_s": wall, "peak_rss_bytes": rss, "run": run,
            **more}


def test_lut_ratios_use_int4_of_the_same_run_and_judge_the_targets():
    exports = [export("270m", "int4", 100.0, 2e9), export("270m", "lut4", 140.0, 2.2e9),
               export("270m", "mixed", 300.0, 2e9), export("3b", "int4", 300.0, 4e9),
               export("3b", "lut4", 500.0, 4e9, run="b"),  # another run: no ratio
               export("1_1b", "int4", 100.0, 2e9, verify_s=119.0, verify_peak_rss_bytes=3e9),
               export("3b", "int4", 300.0, 4e9, run="c", verify_s=301.0, verify_peak_rss_bytes=5e9)]
    text = "\n".join(speed_section(exports))
    assert "| 270m | lut4 | 140.0 (100.0) | 1.40× |" in text and "| 1.10× | met |" in text
    assert "| 270m | mixed | 300.0 (100.0) | 3.00× |" in text
    assert "| 3b | lut4" not in text
    assert "elm-verify 1_1b int4: 119.0 s" in text and "met)" in text
    assert "elm-verify 3b int4: 300.0 s" not in text


def test_kmeans_section_reports_the_four_bit_target(tmp_path):
    row = {"nbits": 4, "runs": [{"seconds": 800.0, "matrices": 81}, {"seconds": 30.0, "matrices": 81}],
           "default_seconds_cached": False,
           "speedup": 800 / 30, "error_ratio": 0.99999, "groups_compared": 10, "groups_ours_worse": 0,
           "groups_ours_better": 3, "passes_per_group": 1.4, "groups_layered_fallback": 0,
           "load_average_before_after": [1.0, 1.2]}
    path = tmp_path / "k.json"
    path.write_text(json.dumps({"size": "450m", "group_size": 16, "weight_std": 0.02, "cpus": 2, "layers": None,
                                "whole_model": True, "bits": [row]}))
    text = "\n".join(kmeans_section(path))
    assert "26.7× (met)" in text and "groups worse than the default at every width: 0" in text
    path.write_text(json.dumps({**json.loads(path.read_text()), "bits": [{**row, "default_seconds_cached": True}]}))
    assert "(not met)" in "\n".join(kmeans_section(path))  # a cached default is not the same run


def test_plot_is_written_when_matplotlib_is_there(tmp_path):
    lines = plot([export("270m", "int4", 100.0, 2e9), export("450m", "int4", 150.0, 3e9)], tmp_path / "p.png")
    if "matplotlib" in lines[-1]:
        return  # not installed (the bench extra): the section says so
    assert (tmp_path / "p.png").stat().st_size > 1000 and "p.png" in lines[-1]
