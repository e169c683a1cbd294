"""Test-time flip averaging, measured and not shipped (pretrained/MODEL_CARD.md).

Lifts every STEP-th sequence of an external .npz (e.g. Human3.6M S8 from ground-truth 2D, from
`distpose data h36m-external`) as seen, and mirrored (x -> -x with left and right swapped), and
prints, for each checkpoint, root-aligned MPJPE and P-MPJPE (mm) of the plain output, the
mirrored output mirrored back, and their average: what VideoPose3D's test-time augmentation
would give this lifter.

    python scripts/flip_average_check.py --data .cache/eval/s8_gt.npz --weights pretrained/meta.pt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import torch

    from distpose_app.core.metrics import mpjpe, p_mpjpe
    from distpose_app.core.skeleton import FLIP_PERMUTATION
    from distpose_app.data.external import load_external
    from distpose_app.evaluation import protocol as ev
    from distpose_app.lifter.model import load_checkpoint

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="an external .npz with positions_3d")
    p.add_argument("--weights", nargs="+", default=["pretrained/meta.pt"])
    p.add_argument("--step", type=int, default=4, help="every STEP-th sequence (default 4)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_external(args.data)
    px = ev.distorted_pixels(data, "none")
    truth = data.positions_3d - data.positions_3d[..., :1, :]
    ranges = ev._ranges(data)[:: args.step]
    frames = np.concatenate([np.arange(a, b) for _, a, b in ranges])
    seen = [ev._normalised(data, px, s, a, b) for s, a, b in ranges]
    mirror = np.array([-1.0, 1.0])
    mirrored = [kp[..., FLIP_PERMUTATION, :] * mirror for kp in seen]
    print("| weights | plain | mirrored back | average | P-MPJPE plain → average | frames |")
    print("|---|---|---|---|---|---|")
    for path in args.weights:
        model, _ = load_checkpoint(path)
        model.eval()
        start = time.perf_counter()
        plain = np.concatenate(ev.lift_many(model, seen, data.fps))
        back = np.concatenate(ev.lift_many(model, mirrored, data.fps))
        back = back[..., FLIP_PERMUTATION, :] * np.array([-1.0, 1.0, 1.0])
        average, t = 0.5 * (plain + back), truth[frames]
        print(f"| {path} | {1000 * mpjpe(plain, t):.1f} | {1000 * mpjpe(back, t):.1f} | "
              f"{1000 * mpjpe(average, t):.1f} | {1000 * p_mpjpe(plain, t):.1f} → "
              f"{1000 * p_mpjpe(average, t):.1f} | {len(frames)} "
              f"({time.perf_counter() - start:.0f} s) |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
