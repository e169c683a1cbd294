"""`distpose bench`: measure every stage's speed on this machine (lifter streaming vs naive,
MediaPipe, the live pipeline, ISO, training) and compare MediaPipe's own 3D with our lifter by
label-free statistics; prints a markdown table and writes JSON (see docs/bench.md)."""

from __future__ import annotations

import argparse

from distpose_app.core import validate as v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="OUT", help="write the full report as JSON")
    parser.add_argument("--markdown", metavar="OUT", help="write the markdown tables")
    parser.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="GPU section: auto (when CUDA is present), cpu (skip it) or cuda (require it); "
        "the headline figures are always the CPU's",
    )
    parser.add_argument(
        "--clip",
        metavar="PATH",
        help="video for the MediaPipe and pipeline figures (default: ../shared/media/"
        "openpose_street_walk.avi; 'demo': the synthetic source, no MediaPipe)",
    )
    parser.add_argument(
        "--weights", metavar="PATH", help="benchmark this checkpoint alone as the live model"
    )
    parser.add_argument("--threads", type=v.threads_int, metavar="N", help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="short run (about 30 s), for tests")


def run(args: argparse.Namespace) -> int:
    from distpose_app.core.errors import DistposeError

    if args.threads is not None and args.threads < 1:
        raise DistposeError(f"--threads must be at least 1, got {args.threads}")
    for option, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path is not None:
            v.check_output_file(option, path)
    if args.json and args.markdown and v.same_file(args.json, args.markdown):
        raise DistposeError(f"--json and --markdown are one file: {args.json}")
    if args.weights:
        v.check_input_file(args.weights, "--weights")

    import torch

    from distpose_app import bench
    from distpose_app.core.fileio import write_atomic

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = bench.BenchSettings.quick() if args.quick else bench.BenchSettings()
    report = bench.run_bench(settings, args.weights, args.clip, args.device)
    text = bench.markdown_report(report)
    print(text, end="")
    if args.json:
        write_atomic(args.json, bench.report_json(report))
    if args.markdown:
        write_atomic(args.markdown, text)
    return 0
