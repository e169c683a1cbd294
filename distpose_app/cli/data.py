"""`distpose data`: build the cached synthetic dataset from the Bandai-Namco mocap, export a
split in the external `.npz` format, or write Human3.6M evaluation files in it (docs/data.md)."""

from __future__ import annotations

import argparse
import time

from distpose_app.core import validate as v
from distpose_app.core.paths import CACHE_DIR, DEFAULT_ARCHIVE, DEFAULT_H36M


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--views", type=v.positive_int, default=2,
                   help="virtual webcams per file (default 2)")  # fmt: skip
    p.add_argument("--seed", type=v.seed_int, default=0, help="camera/lens seed (default 0)")
    p.add_argument("--archive", default=DEFAULT_ARCHIVE, help=f"mocap archive ({DEFAULT_ARCHIVE})")
    p.add_argument("--cache", default=str(CACHE_DIR), help=f"cache folder ({CACHE_DIR})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="build (or load) the cached synthetic set and summarise")
    build.add_argument("--split", choices=("train", "val", "test", "all"), default="all")
    build.add_argument(
        "--lenses", action="store_true", help="project keypoints_2d through sampled lenses"
    )
    build.add_argument("--noise", type=v.non_negative_float, default=0.0,
                       help="detector noise sigma, px")  # fmt: skip
    _common(build)
    export = sub.add_parser("export", help="write a split in the external .npz format")
    export.add_argument("--split", choices=("train", "val", "test"), default="test")
    export.add_argument("--out", required=True, help="output .npz file")
    export.add_argument(
        "--lens", default=None, help="project keypoints_2d through this lens (default: none)"
    )
    _common(export)
    demo = sub.add_parser(
        "demo",
        help="write the Demo's person and camera in the external .npz format, for "
        "`distpose evaluate --data FILE --lens L` (the Demo's error readout on the same data)",
    )
    demo.add_argument("--out", required=True, help="output .npz file")
    h36m = sub.add_parser(
        "h36m-external",
        help="write Human3.6M training subjects (every sequence x camera) as an external .npz",
    )
    h36m.add_argument("--subjects", nargs="+", default=["S8"], help="e.g. S8 (default), S1 S5")
    h36m.add_argument("--input", choices=("gt", "sh"), default="gt",
                      help="2D: gt = ground truth through a pinhole; sh = the real Stacked "
                      "Hourglass detections (S1, S5), undistorted, Spine unseen")  # fmt: skip
    h36m.add_argument("--noise", choices=("none", "sh"), default="none",
                      help="sh: add the detector-noise model fitted on the file's detections "
                      "to the ground-truth 2D")  # fmt: skip
    h36m.add_argument("--noise-scale", type=v.non_negative_float, default=1.0,
                      help="noise spread factor")  # fmt: skip
    h36m.add_argument("--stride", type=v.positive_int, default=1,
                      help="keep every N-th frame (50/N fps)")  # fmt: skip
    h36m.add_argument("--seed", type=v.seed_int, default=0, help="noise seed (default 0)")
    h36m.add_argument("--h36m", default=str(DEFAULT_H36M), help=f"Human3.6M file ({DEFAULT_H36M})")
    h36m.add_argument("--out", required=True, help="output .npz file")


def _load(args: argparse.Namespace, split: str):
    from distpose_app.core.errors import DistposeError
    from distpose_app.data.synthetic import NoiseConfig, load_or_build

    if args.views < 1:
        raise DistposeError(f"--views must be at least 1, got {args.views}")
    v.check_folder("--cache", args.cache)
    v.check_input_file(args.archive, "mocap archive (--archive)")
    sampler = None
    if getattr(args, "lenses", False):
        from distpose_app.data.lens_sampler import LensSampler

        sampler = LensSampler()
    sigma = getattr(args, "noise", 0.0)
    noise = NoiseConfig(sigma_px=sigma) if sigma > 0 else None
    return load_or_build(
        args.archive,
        split,
        views_per_sequence=args.views,
        seed=args.seed,
        lens_sampler=sampler,
        noise=noise,
        cache_dir=args.cache,
    )


def _summary(split: str, data, seconds: float) -> str:
    files = len({str(n).rsplit("/", 1)[0] for n in data.names})
    built = data.meta.get("build_seconds")
    how = f"built in {built:.1f} s" if built is not None else "built"
    if "from_cache" in data.meta:
        how = f"from the cache ({how})"
    return (
        f"{split:5s}: {files} files, {data.num_sequences} views, {len(data)} frames "
        f"({len(data) / data.fps / 3600:.2f} h of views at {data.fps:g} fps), {how}, "
        f"loaded in {seconds:.1f} s"
    )


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from distpose_app.core.skeleton import BONE_NAMES, bone_lengths

    if args.action == "build":
        splits = ("train", "val", "test") if args.split == "all" else (args.split,)
        frames = []
        for split in splits:
            start = time.monotonic()
            data = _load(args, split)
            print(_summary(split, data, time.monotonic() - start))
            frames.append(data.positions_3d[:: max(1, len(data) // 20000)])
        lengths = 100 * bone_lengths(np.concatenate(frames).astype(np.float64)).mean(axis=0)
        print("mean bone lengths (cm): " + ", ".join(
            f"{name} {cm:.1f}" for name, cm in zip(BONE_NAMES, lengths, strict=True)
        ))  # fmt: skip
        return 0

    from distpose_app.data.external import write_external

    v.check_output_file("--out", args.out)
    inputs = [("mocap archive", getattr(args, "archive", None)),
              ("Human3.6M file", getattr(args, "h36m", None))]  # fmt: skip
    for what, source in inputs:
        if source and v.same_file(args.out, source):
            from distpose_app.core.errors import DistposeError

            raise DistposeError(f"--out {args.out} would overwrite the {what} {source}")
    if args.action == "h36m-external":
        from distpose_app.data.h36m_external import build_h36m_external

        start = time.monotonic()
        data, info = build_h36m_external(
            args.h36m, args.subjects, input_2d=args.input, noise=args.noise,
            noise_scale=args.noise_scale, seed=args.seed, stride=args.stride,
            progress=lambda what: print(what + " ...", flush=True),
        )  # fmt: skip
        write_external(args.out, data)
        print(f"wrote {args.out}: {', '.join(info['subjects'])}, {info['sequences']} sequences "
              f"(take x camera), {info['frames']} frames at {info['fps']:g} fps, 2D {info['input']}"
              f"{'' if info['noise'] == 'none' else ' + ' + info['noise'] + ' noise'}, "
              f"{len(info['actions'])} actions, in {time.monotonic() - start:.1f} s")  # fmt: skip
        return 0

    if args.action == "demo":
        from distpose_app.live.demo import demo_external

        data = demo_external()
        write_external(args.out, data)
        print(f"wrote {args.out} ({data.num_sequences} loops of the demo, {len(data.sequence)} "
              "frames)")  # fmt: skip
        return 0
    lens = None
    if args.lens is not None:
        from distpose_app.lens.strings import parse_lens

        lens = parse_lens(args.lens)
    start = time.monotonic()
    data = _load(args, args.split)
    print(_summary(args.split, data, time.monotonic() - start))
    write_external(args.out, data.to_external(lens))
    print(f"wrote {args.out} ({data.num_sequences} sequences, {len(data)} frames)")
    return 0
