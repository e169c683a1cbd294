"""Benchmarks behind `distpose bench`: settings and helpers (common), stage speeds without a clip
(speed), measurements over a clip (clips), the whole run (runner) and its report (report).

    from distpose_app import bench
    report = bench.run_bench(bench.BenchSettings.quick())
    print(bench.markdown_report(report))
"""

from .clips import DEFAULT_CLIP, label_free_stats, mean_joint_acceleration_gappy, resolve_clip
from .common import BenchSettings
from .report import check_targets, markdown_report, report_json
from .runner import NO_CUDA, REQUIRED_KEYS, default_live_model, run_bench

__all__ = [
    "DEFAULT_CLIP",
    "NO_CUDA",
    "REQUIRED_KEYS",
    "BenchSettings",
    "check_targets",
    "default_live_model",
    "label_free_stats",
    "markdown_report",
    "mean_joint_acceleration_gappy",
    "report_json",
    "resolve_clip",
    "run_bench",
]
