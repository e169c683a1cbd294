"""Do a 25 fps and a 50 fps export of the same motion agree? The detector's part and ours, apart.

Synthetic (ours alone): held-out mocap clips (the Bandai test styles, as
`scripts/measure_root_motion.py`) interpolated in time to 50 fps, projected through the
evaluation's 90° 1280x720 webcam, with detector-like 2D noise drawn once at 50 fps; the 25 fps
copy is every 2nd frame of the same noisy 2D. Both go through `distpose process`'s path
(`to_lifter_rate` -> `LivePipeline` at 30 fps -> `resample_recording` back to the frames ->
`prepare_motion`), and the exports are compared at their common timestamps.

Real (the detector's part and ours): the street clip (50 fps) and its every-2nd-frame copy
(25 fps, written with OpenCV as `scripts/street_walk_check.py` does), each through MediaPipe
(cached: `scripts/mediapipe_cache.py`) and the same path; also the 25 fps export lifted from
the 50 fps detections' every 2nd frame (the detector's part removed).

Printed per case: mean root-relative joint distance (mm, all frames and from 1 s on), mean and
largest root distance (mm), and the two exports' camera heights and pitches.

    python scripts/rate_check.py [--every 12] [--video PATH] [--weights PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from distpose_app.cli.evaluate import EVAL_HFOV_DEG, EVAL_SIZE  # noqa: E402
from distpose_app.cli.process import lift_all, to_lifter_rate  # noqa: E402
from distpose_app.core.skeleton import mediapipe_to_h36m  # noqa: E402
from distpose_app.core.timing import interpolate_at  # noqa: E402
from distpose_app.data.cameras import CameraConfig  # noqa: E402
from distpose_app.data.synthetic import NoiseConfig, add_detector_noise, load_or_build  # noqa: E402
from distpose_app.export import ExportOptions, prepare_motion, resample_recording  # noqa: E402
from distpose_app.lens.models import Intrinsics  # noqa: E402
from distpose_app.lifter.model import DEFAULT_LIVE_MODEL, load_checkpoint, load_pretrained  # noqa: E402
from distpose_app.live.pipeline import LivePipeline  # noqa: E402


def export_motion(model, keypoints, confidence, timestamps, size, intrinsics=None, hfov=70.0):
    """`distpose process`'s path without the detector: (F, 17, 2) pixels (NaN unseen), (F, 17)
    confidence, (F,) seconds -> the Motion the files would carry (one row per input frame)."""
    kp, conf, t, _ = to_lifter_rate(keypoints, confidence, timestamps)
    pipeline = LivePipeline(model, "cpu", size=size, intrinsics=intrinsics, hfov_deg=hfov,
                            buffer_frames=len(t))  # fmt: skip
    pipeline.recorder.recovery_dir = None
    recording = lift_all(pipeline, kp, conf, t)
    if t is not timestamps:
        recording = resample_recording(recording, timestamps)
    return prepare_motion(recording, ExportOptions())


def compare(full, t_full, half, t_half) -> dict:
    """Exported positions of two Motions at their common timestamps (rounded to 0.1 ms)."""
    index = {round(float(t), 4): i for i, t in enumerate(t_full)}
    pairs = [(index[round(float(t), 4)], j) for j, t in enumerate(t_half)
             if round(float(t), 4) in index]  # fmt: skip
    a = full.csv_positions[[i for i, _ in pairs]]
    b = half.csv_positions[[j for _, j in pairs]]
    t = np.asarray(t_half)[[j for _, j in pairs]]
    ok = np.isfinite(a).all(axis=(1, 2)) & np.isfinite(b).all(axis=(1, 2))
    a, b, t = a[ok], b[ok], t[ok]
    rel = np.linalg.norm((a - a[:, :1]) - (b - b[:, :1]), axis=-1).mean(axis=1)
    root = np.linalg.norm(a[:, 0] - b[:, 0], axis=-1)
    late = t >= t[0] + 1.0
    cams = [m.world.camera_info() if m.world else {} for m in (full, half)]
    return {
        "frames": int(ok.sum()),
        "rel_mm": 1000 * rel.mean(),
        "rel_late_mm": 1000 * rel[late].mean() if late.any() else float("nan"),
        "root_mm": 1000 * root.mean(),
        "root_max_mm": 1000 * root.max(),
        "root_late_mm": 1000 * root[late].mean() if late.any() else float("nan"),
        "height_m": [c.get("height_m", float("nan")) for c in cams],
        "pitch_deg": [c.get("pitch_deg", float("nan")) for c in cams],
    }


def synthetic(model, args) -> list[dict]:
    camera = CameraConfig(hfov_deg=(EVAL_HFOV_DEG, EVAL_HFOV_DEG), image_sizes=(EVAL_SIZE,))
    data = load_or_build(args.archive, "test", 1, seed=1, camera=camera, cache_dir=args.cache)
    K = np.asarray(data.intrinsics[0], dtype=np.float64)  # fx, fy, cx, cy (pinhole)
    intrinsics = Intrinsics.from_array(data.intrinsics[0], data.image_size[0])
    size = tuple(int(v) for v in data.image_size[0])
    rng = np.random.default_rng(7)
    rows = []
    slices = data.sequence_slices()
    for i in range(0, len(slices), args.every):
        truth = data.positions_3d[slices[i]].astype(np.float64)  # camera metres, 30 fps
        t30 = np.arange(len(truth)) / 30.0
        t50 = np.arange(int(t30[-1] * 50.0) + 1) / 50.0
        cam, _ = interpolate_at(truth, np.ones(len(truth), bool), t30, t50)
        ideal = cam[..., :2] / cam[..., 2:3] * K[:2] + K[2:]
        noisy, _ = add_detector_noise(rng, ideal, np.zeros(len(t50), int),
                                      NoiseConfig(sigma_px=args.noise_px))  # fmt: skip
        conf = np.ones(noisy.shape[:2])
        full = export_motion(model, noisy, conf, t50, size, intrinsics)
        half = export_motion(model, noisy[::2], conf[::2], t50[::2], size, intrinsics)
        row = compare(full, t50, half, t50[::2])
        row["name"] = str(data.names[i])
        rows.append(row)
    return rows


def half_rate_video(video: Path, out: Path) -> Path:
    from street_walk_check import half_rate_copy

    return half_rate_copy(video, out)


def detections(video: Path, cache: str):
    """MediaPipe's 2D of every frame of `video` (cached), mapped to H36M: (keypoints (F, 17, 2)
    pixels NaN without a person, confidence (F, 17), timestamps (F,), (width, height))."""
    from mediapipe_cache import mediapipe_video

    d = mediapipe_video(video, cache)
    n = int(d["frames_read"])
    keypoints = np.full((n, 17, 2), np.nan)
    confidence = np.zeros((n, 17))
    kp, conf = mediapipe_to_h36m(d["landmarks"], d["visibility"])
    keypoints[d["kept"]], confidence[d["kept"]] = kp, conf
    return (
        keypoints,
        confidence,
        np.arange(n) / float(d["fps"]),
        (int(d["width"]), int(d["height"])),
    )


def real(model, args) -> dict:
    video = Path(args.video)
    folder = Path(tempfile.mkdtemp(prefix="rate-check-"))
    half_video = half_rate_video(video, folder / f"{video.stem}_half.avi")
    kp, conf, t, size = detections(video, args.cache)
    kp_h, conf_h, t_h, _ = detections(half_video, args.cache)
    full = export_motion(model, kp, conf, t, size)
    half = export_motion(model, kp_h, conf_h, t_h, size)
    same_2d = export_motion(model, kp[::2], conf[::2], t[::2], size)
    return {
        "MediaPipe at 50 and at 25 fps": compare(full, t, half, t_h),
        "the 50 fps detections' every 2nd frame": compare(full, t, same_2d, t[::2]),
    }


def line(label: str, r: dict) -> str:
    return (f"| {label} | {r['frames']} | {r['rel_mm']:.0f} | {r['rel_late_mm']:.0f} | "
            f"{r['root_mm']:.0f} | {r['root_max_mm']:.0f} | {r['root_late_mm']:.0f} | "
            f"{r['height_m'][0]:.2f} / {r['height_m'][1]:.2f} | "
            f"{r['pitch_deg'][0]:.1f} / {r['pitch_deg'][1]:.1f} |")  # fmt: skip


def main(argv=None) -> int:
    from distpose_app.core import paths  # DISTPOSE_SHARED or ../shared, as everywhere

    shared = paths.SHARED
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=None, help="default: the shipped live model")
    parser.add_argument("--archive", default=os.environ.get(
        "DISTPOSE_ARCHIVE", str(paths.DEFAULT_ARCHIVE)))  # fmt: skip
    parser.add_argument("--cache", default=str(paths.CACHE_DIR))
    parser.add_argument("--video", default=str(shared / "media" / "openpose_street_walk.avi"))
    parser.add_argument("--every", type=int, default=12, help="every N-th held-out clip")
    parser.add_argument("--noise-px", type=float, default=1.5)
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.weights:
        model, _ = load_checkpoint(args.weights, "cpu")
    else:
        model, _ = load_pretrained(DEFAULT_LIVE_MODEL, "cpu")
    print(
        "| case | frames | root-relative mm | from 1 s | root mm | root max | root from 1 s "
        "| camera height m (50 / 25) | pitch ° |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    if not args.skip_synthetic:
        rows = synthetic(model, args)
        mean = {k: float(np.mean([r[k] for r in rows])) for k in
                ("rel_mm", "rel_late_mm", "root_mm", "root_max_mm", "root_late_mm")}  # fmt: skip
        mean["frames"] = sum(r["frames"] for r in rows)
        mean["height_m"] = [float(np.mean([r["height_m"][k] for r in rows])) for k in (0, 1)]
        mean["pitch_deg"] = [float(np.mean([r["pitch_deg"][k] for r in rows])) for k in (0, 1)]
        print(line(f"synthetic, {len(rows)} held-out clips (mean)", mean))
        worst = max(rows, key=lambda r: r["rel_mm"])
        print(line(f"synthetic, worst clip ({worst['name']})", worst))
    if not args.skip_real and Path(args.video).is_file():
        for label, r in real(model, args).items():
            print(line(f"{Path(args.video).stem}: {label}", r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
