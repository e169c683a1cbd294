"""The straight-edge lens estimate on the scene alone: no pasted border, no synthetic edge.

Each picture of ../shared/media (frames of the two clips, the photo) is taken as the image of
an ideal 90-degree pinhole camera and warped through a known lens with cv2.remap; the result is
then cropped, about its centre, to the largest rectangle of the picture's own aspect whose every
pixel comes from inside the original, so that no border of the warp is left in it (a border is
the image of the original's straight edges: a plumb line the scene did not provide). The
estimate (`lens.plumb_line.estimate_lens_from_lines`, 8 frames spread over a clip) is compared
with the lens's true strength in the crop's own screen coordinates: its magnification at 0.7
half-widths from the middle, minus 1.

    python scripts/plumb_line_check.py [--lenses none fisheye brown:0.12 brown:-0.15]

prints one row per picture and lens.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HFOV = 90.0
CLIPS = ("openpose_street_walk.avi", "mediapipe_gesture_upper_body.mp4",
         "mediapipe_pose_test_image.jpg")  # fmt: skip


def media_dir() -> Path:
    from distpose_app.core import paths  # DISTPOSE_SHARED or ../shared, as everywhere

    return paths.SHARED / "media"


def frames_of(path: Path, count: int = 8) -> list[np.ndarray]:
    """`count` frames spread evenly over a clip (a photo: itself)."""
    import cv2

    if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
        image = cv2.imread(str(path))
        if image is None:
            raise SystemExit(f"cannot read {path}")
        return [image]
    video = cv2.VideoCapture(str(path))
    n = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = set(np.linspace(0, n - 1, count).round().astype(int).tolist())
    out = []
    for i in range(n):
        ok, frame = video.read()
        if not ok:
            break
        if i in wanted:
            out.append(frame)
    video.release()
    return out


def warp_and_crop(image: np.ndarray, lens_spec: str) -> tuple[np.ndarray, float, float]:
    """(the picture through the lens, cropped to where it has no border; the crop's width as a
    share of the picture's; the lens's true strength in the crop's screen coordinates)."""
    import cv2

    from distpose_app.lens.models import Intrinsics, undistort_pixels
    from distpose_app.lens.strings import parse_lens

    h, w = image.shape[:2]
    k = Intrinsics.from_hfov(HFOV, w, h)
    lens = parse_lens(lens_spec, max_radius=None)
    xs, ys = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    px = np.stack([xs, ys], -1).reshape(-1, 2)
    src = px if lens.is_identity else undistort_pixels(px, k, lens)
    src = src.reshape(h, w, 2) - 0.5
    inside = np.isfinite(src).all(-1)
    inside &= (src[..., 0] >= 0) & (src[..., 0] <= w - 1) & (src[..., 1] >= 0)
    inside &= src[..., 1] <= h - 1
    # the largest centred crop of the same aspect that is inside everywhere
    share = 1.0
    for share in np.arange(1.0, 0.2, -0.01):
        cw, ch = int(w * share), int(h * share)
        x0, y0 = (w - cw) // 2, (h - ch) // 2
        if inside[y0 : y0 + ch, x0 : x0 + cw].all():
            break
    cw, ch = int(w * share), int(h * share)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    maps = np.nan_to_num(src, nan=-1.0).astype(np.float32)
    warped = cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR)
    crop = warped[y0 : y0 + ch, x0 : x0 + cw]
    # truth: where the point 0.7 crop half-widths right of the middle comes from, in crop units
    d = np.array([[w / 2 + 0.7 * cw / 2, h / 2]])
    u = d if lens.is_identity else undistort_pixels(d, k, lens)
    strength = float((u[0, 0] - w / 2) / (0.7 * cw / 2) - 1.0)
    return crop, float(cw / w), strength


def main() -> int:
    from distpose_app.lens.plumb_line import estimate_lens_from_lines

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lenses", nargs="+", default=["none", "fisheye", "brown:0.12", "brown:-0.15"])
    p.add_argument("--media", nargs="+", default=list(CLIPS))
    args = p.parse_args()
    if not media_dir().is_dir():
        print(f"no media folder {media_dir()} (set DISTPOSE_SHARED)", file=sys.stderr)
        return 1
    print("| picture | lens | crop | true strength | estimate | interval | straight edges | "
          "measured | reason |")  # fmt: skip
    print("|" + "---|" * 9)
    for name in args.media:
        frames = frames_of(media_dir() / name)
        for spec in args.lenses:
            crops, share, truth = [], 1.0, 0.0
            for frame in frames:
                crop, share, truth = warp_and_crop(frame, spec)
                crops.append(crop)
            est = estimate_lens_from_lines(crops)
            low, high = est.interval
            print(f"| {Path(name).stem} | `{spec}` | {share:.2f} | {truth:+.1%} | "
                  f"{est.strength:+.1%} | {low:+.1%}…{high:+.1%} | {est.lines} | "
                  f"{'yes' if est.measured else 'no'} | {est.reason} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
