"""Does the lens fit's objective see where the picture's centre is? A probe on the real-clip set.

A clip pasted off-centre into a canvas (`scripts/real_clip_adapt.py`) is a camera whose
principal point sits where the clip's centre went, not at the canvas centre the lifter and the
lens fit assume. For each case of the set (MediaPipe's cached detections, confidence < 0.5
unseen) this prints the k1 the objective picks as Adapt does (no shift), the principal-point
shift (screen units) that minimises it at k1 = 0 on a grid, then the k1 at that shift and the
shift again at that k1 (one coordinate step each), with the objective's fall there. All k1 are
shifted by the model's calibrated offset, as Adapt reports them. Measuring only: Adapt does not
fit the principal point (docs/adaptation.md).

    python scripts/principal_point_probe.py --weights pretrained/meta.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SHIFTS_X = np.round(np.arange(-0.7, 0.71, 0.1), 2)
SHIFTS_Y = np.round(np.arange(-0.4, 0.41, 0.1), 2)
K1 = np.round(np.arange(-1.0, 1.51, 0.1), 2)


def objective(model, keypoints: np.ndarray, config):
    """f(k1, shift) -> the mean capped reprojection residual of `adapt.lens_fit` on the buffer
    (N, 17, 2) normalised screen coordinates, undistorted by k1 about the centre and then
    moved by -shift (the principal point's offset, screen units): the objective Adapt uses,
    with the shift its off-centre check tries."""
    from distpose_app.adapt import lens_fit as la

    kp = keypoints[np.isfinite(keypoints).all(-1).any(-1)]
    base = la._Objective(model, la._buffer_windows(model, kp, config), config.focal,
                         config.residual_cap)  # fmt: skip
    return lambda k1, shift: base.value(k1, tuple(shift))[0]


def probe(value, offset: float) -> dict:
    """The coordinate steps of the module docstring -> the figures printed."""
    k_plain = K1[int(np.argmin([value(k, (0.0, 0.0)) for k in K1]))]
    grid = {(x, y): value(0.0, (x, y)) for x in SHIFTS_X for y in SHIFTS_Y}
    shift = min(grid, key=grid.get)
    k_at = K1[int(np.argmin([value(k, shift) for k in K1]))]
    grid = {(x, y): value(k_at, (x, y)) for x in SHIFTS_X for y in SHIFTS_Y}
    shift2 = min(grid, key=grid.get)
    curve = [value(k, shift2) for k in K1]
    k_at2 = K1[int(np.argmin(curve))]
    fall = 1.0 - min(curve) / value(0.0, (0.0, 0.0))
    return {
        "k1_plain": float(k_plain + offset),
        "shift": shift,
        "k1_at_shift": float(k_at + offset),
        "shift2": shift2,
        "k1_at_shift2": float(k_at2 + offset),
        "fall": float(fall),
    }


def main() -> int:
    import real_clip_adapt as rc

    from distpose_app.adapt.lens_fit import LensAdaptConfig
    from distpose_app.lens.screen import normalize_screen_coordinates
    from distpose_app.lifter.model import load_checkpoint

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="pretrained/meta.pt")
    p.add_argument("--clips", nargs="+", default=list(rc.CLIPS))
    args = p.parse_args()
    torch.set_num_threads(1)
    model, _ = load_checkpoint(args.weights)
    model.eval()
    config = LensAdaptConfig.for_model(model)
    w, h = rc.CANVAS
    print("| clip | placement | lens | paste centre | k1, no shift | shift at k1 = 0 | k1 there | "
          "shift again | k1 there | fall from no lens, no shift |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for clip in args.clips:
        for placement in rc.PLACEMENTS[clip]:
            if placement.start == placement.end:
                x, y = placement.start[0] * 2 - 1, placement.start[1] * 2 * h / w - h / w
                centre = f"({x:+.2f}, {y:+.2f})"
            else:
                centre = "moving"
            for lens in rc.LENSES:
                det = rc.detections(clip, placement, lens)
                kp = np.array(det["keypoints"], np.float64, copy=True)
                kp[det["confidence"] < 0.5] = np.nan
                u = normalize_screen_coordinates(kp, w, h)
                r = probe(objective(model, u, config), config.k1_offset)
                first, again = r["shift"], r["shift2"]
                print(f"| {clip} | {placement.name} | `{lens}` | {centre} | {r['k1_plain']:+.2f} | "
                      f"({first[0]:+.1f}, {first[1]:+.1f}) | {r['k1_at_shift']:+.2f} | "
                      f"({again[0]:+.1f}, {again[1]:+.1f}) | {r['k1_at_shift2']:+.2f} | "
                      f"{100 * r['fall']:.1f}% |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
