"""`distpose adapt-calibrate WEIGHTS`: measure lens adaptation's bias for one model, store it.

Lens ISO's reprojection objective is biased for a given lifter: on lens-free 2D its minimum
lies at k1 = -offset rather than 0 (`adapt.lens_fit.LensAdaptConfig.k1_offset`), and that
minimum moves between data sets by about a spread (`k1_offset_spread`: a fit closer to no lens
than that is refused). This measures both on validation data (never the test split: lens-free,
the evaluation webcam, the same detector-like noise as `distpose evaluate --noise-px`) and
writes them into the checkpoint's metadata ("lens_adapt"), where `adapt.adapt_model` finds
them. Rerun it whenever a checkpoint is retrained.
"""

from __future__ import annotations

import argparse

from distpose_app.core import validate as v
from distpose_app.core.paths import CACHE_DIR, DEFAULT_ARCHIVE


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("weights", help="checkpoint to calibrate (rewritten in place)")
    p.add_argument("--buffers", type=v.arg_int(1, 1000), default=15,
                   help="20 s validation buffers (median)")  # fmt: skip
    p.add_argument("--noise-px", type=v.non_negative_float, default=2.0,
                   help="detector-like 2D noise, pixels")  # fmt: skip
    p.add_argument("--poses", choices=("standing", "mixed"), default="mixed")
    p.add_argument("--dry-run", action="store_true", help="print the offset, write nothing")
    p.add_argument("--archive", default=str(DEFAULT_ARCHIVE))
    p.add_argument("--cache", default=str(CACHE_DIR))
    p.add_argument("--threads", type=v.threads_int, help="torch CPU threads")


def validation_buffers(archive, cache, noise_px: float, count: int, seconds: float = 20.0,
                       poses: str = "mixed"):  # fmt: skip
    """`count` lens-free 2D buffers (N, 17, 2) normalised screen coordinates at 30 fps, from
    the validation split through the evaluation webcam (90°, 1280x720), with detector noise."""
    import numpy as np

    from distpose_app.cli.evaluate import EVAL_HFOV_DEG, EVAL_SIZE
    from distpose_app.data.cameras import CameraConfig
    from distpose_app.data.synthetic import load_or_build
    from distpose_app.evaluation import protocol as ev
    from distpose_app.lens.models import NoLens

    camera = CameraConfig(hfov_deg=(EVAL_HFOV_DEG, EVAL_HFOV_DEG), image_sizes=(EVAL_SIZE,))
    data = load_or_build(archive, "val", 1, seed=1, camera=camera, cache_dir=cache,
                         progress=False, poses=poses).to_external()  # fmt: skip
    px = ev._noisy(data, ev.distorted_pixels(data, NoLens()), noise_px, seed=1)
    clips = [ev._normalised(data, px, s, a, b) for s, a, b in ev._ranges(data)]
    # Spread the buffers over the whole split (its files come in archive order).
    order = np.random.default_rng(0).permutation(len(clips))
    per, buffers, current = int(round(seconds * data.fps)), [], []
    for i in order:
        current.append(clips[i])
        if sum(len(c) for c in current) >= per:
            buffers.append(np.concatenate(current)[:per])
            current = []
        if len(buffers) == count:
            break
    return buffers


def run(args: argparse.Namespace) -> int:
    import torch

    from distpose_app.adapt.lens_fit import LensAdaptConfig, calibrate_k1_offset
    from distpose_app.core.errors import DistposeError
    from distpose_app.lifter.model import load_checkpoint, save_checkpoint

    v.check_input_file(args.weights, "weights")
    v.check_folder("--cache", args.cache)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.buffers < 1:
        raise DistposeError(f"--buffers must be >= 1, got {args.buffers}")
    model, meta = load_checkpoint(args.weights)
    model.input_lens.zero_()
    buffers = validation_buffers(args.archive, args.cache, args.noise_px, args.buffers,
                                 poses=args.poses)  # fmt: skip
    offset, spread = calibrate_k1_offset(model, buffers, LensAdaptConfig())
    print(f"{args.weights}: lens-adaptation k1 offset {offset:+.3f}, spread {spread:.3f} "
          f"(median and 10-90% half-range of {len(buffers)} validation buffers)")  # fmt: skip
    if args.dry_run:
        return 0
    meta.pop("config", None)
    meta["lens_adapt"] = {
        "k1_offset": offset,
        "k1_offset_spread": spread,
        "buffers": len(buffers),
        "noise_px": args.noise_px,
        "data": f"validation split ({args.poses}), 90° 1280x720, lens-free",
    }
    save_checkpoint(args.weights, model, meta)
    print(f"wrote the offset into {args.weights}")
    return 0
