"""Does the fitted detector-noise model hurt a lifter as much as the real detections do?

Scores one model on the same Human3.6M sequences with ground-truth 2D, ground truth plus the
noise model, and the real Stacked Hourglass detections (Spine unseen as the detector gives it,
and filled as the midpoint of Hip and Thorax, as skeleton.mediapipe_to_h36m places it).

    distpose data h36m-external --subjects S5 --out s5_gt.npz
    distpose data h36m-external --subjects S5 --noise sh --out s5_noise.npz
    distpose data h36m-external --subjects S5 --input sh --out s5_sh.npz
    python scripts/noise_model_check.py --weights pretrained/meta.pt --gt s5_gt.npz \
        --noisy s5_noise.npz --sh s5_sh.npz [--every 7]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True)
    p.add_argument("--gt", required=True, help="h36m-external file, --input gt")
    p.add_argument("--noisy", required=True, help="the same subject with --noise sh")
    p.add_argument("--sh", required=True, help="the same subject with --input sh")
    p.add_argument("--every", type=int, default=7, help="score every N-th sequence (default 7)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from distpose_app.cli.evaluate import subset_sequences
    from distpose_app.data.external import load_external
    from distpose_app.evaluation import protocol as ev
    from distpose_app.lifter.model import load_checkpoint

    model = load_checkpoint(args.weights)[0].eval()
    files = {"gt": args.gt, "noisy": args.noisy, "sh": args.sh}
    data = {k: load_external(v) for k, v in files.items()}
    keep = np.arange(0, data["gt"].num_sequences, args.every)
    data = {k: subset_sequences(d, keep) for k, d in data.items()}
    if not all(np.array_equal(d.names, data["gt"].names) for d in data.values()):
        raise SystemExit("the three files must hold the same sequences (same subject)")
    spine_unseen = copy.deepcopy(data["gt"])
    spine_unseen.keypoints_2d[:, 7] = np.nan
    spine_filled = copy.deepcopy(data["sh"])
    kp = spine_filled.keypoints_2d
    kp[:, 7] = 0.5 * (kp[:, 0] + kp[:, 8])
    variants = {
        "ground truth": data["gt"],
        "ground truth, Spine unseen": spine_unseen,
        "ground truth + noise model": data["noisy"],
        "Stacked Hourglass, Spine unseen": data["sh"],
        "Stacked Hourglass, Spine = mid(Hip, Thorax)": spine_filled,
    }
    print(f"{len(keep)} sequences, {len(data['gt'].sequence)} frames; {args.weights}")
    print("| 2D input | MPJPE mm | P-MPJPE mm |\n|---|---|---|")
    for name, d in variants.items():
        rows = ev.evaluate_poses({"m": model}, d, "none", (), input_2d="detections",
                                 group_by="action")  # fmt: skip
        r = next(x for x in rows if x["action"] == "all")
        print(f"| {name} | {r['mpjpe_mm']:.1f} | {r['p_mpjpe_mm']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
