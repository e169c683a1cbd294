"""The real-clip figures of a lifter, beside MediaPipe's own 3D.

    python scripts/real_media_check.py --weights pretrained/meta.pt [--json out.json]

Upper-body clip (`mediapipe_gesture_upper_body.mp4`): among (frame, side) cases where the 2D
wrist is seen above the 2D shoulder, the share whose lifted 3D wrist is above the 3D shoulder
(camera axes, y down; target >= 90%). Street walk (`openpose_street_walk.avi`): the raw bone-length
variation over time (std / mean of each bone's length over the frames, averaged over the 8 limb
bones, and over all 16; the lifter's direct output, no smoothing, no rigid bones; target: limbs
<= half of MediaPipe's own 3D, 14.5% on this clip) and the stance knee's flexion at mid-stance
(events from the 2D ankles: `plausibility.mid_stance_frames`; near straight is the target).

MediaPipe runs once per video (tracking mode, the app's settings); its landmarks are cached under
--cache before any mapping (scripts/mediapipe_cache.py), then mapped to H36M-17 with the mapping
in core/skeleton.py. A joint below --threshold confidence or outside the image is unseen (NaN).
Lifting is offline (`evaluation.protocol.lift`: the clip resampled to the model's 30 fps and
back).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distpose_app.core import paths  # noqa: E402

# The targets.
RAISED_SHARE_TARGET = 0.90
BONE_VARIATION_VS_MEDIAPIPE_TARGET = 0.5
LIMBS = ("RHip-RKnee", "RKnee-RFoot", "LHip-LKnee", "LKnee-LFoot", "LShoulder-LElbow",
         "LElbow-LWrist", "RShoulder-RElbow", "RElbow-RWrist")  # fmt: skip


def limb_bone_indices() -> list[int]:
    """Indices into skeleton.BONES of the 8 limb bones: thighs, shins, upper arms, forearms."""
    from distpose_app.core.skeleton import BONE_NAMES

    return [BONE_NAMES.index(name) for name in LIMBS]


def parse_args(argv=None) -> argparse.Namespace:
    media = paths.SHARED / "media"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=str(paths.PRETRAINED_DIR / "meta.pt"))
    p.add_argument("--upper", default=str(media / "mediapipe_gesture_upper_body.mp4"))
    p.add_argument("--walk", default=str(media / "openpose_street_walk.avi"))
    p.add_argument("--threshold", type=float, default=0.5, help="confidence below = unseen")
    p.add_argument("--cache", default=str(paths.CACHE_DIR), help="MediaPipe detections cache")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def detections(video: str, cache: str, threshold: float) -> dict:
    """MediaPipe on `video` (cached), mapped to H36M-17: keypoints (T, 17, 2) px with NaN where
    unseen, raw keypoints (T, 17, 2) px, world (T, 17, 3) m (MediaPipe's 3D), fps, size."""
    from mediapipe_cache import mediapipe_video

    from distpose_app.core.skeleton import mediapipe_to_h36m

    d = mediapipe_video(video, cache)
    kp, conf = mediapipe_to_h36m(d["landmarks"], d["visibility"])
    world, _ = mediapipe_to_h36m(d["world"])
    w, h = d["width"], d["height"]
    inside = (kp[..., 0] >= 0) & (kp[..., 0] < w) & (kp[..., 1] >= 0) & (kp[..., 1] < h)
    masked = np.where((inside & (conf >= threshold))[..., None], kp, np.nan)
    return {"keypoints": masked, "raw": kp, "world": world, "fps": d["fps"], "width": w,
            "height": h, "frames": int(d["frames_read"]), "kept": len(d["kept"])}  # fmt: skip


def lift(model, det: dict) -> np.ndarray:
    from distpose_app.evaluation.protocol import lift as lift_sequence
    from distpose_app.lens.screen import normalize_screen_coordinates

    norm = normalize_screen_coordinates(det["keypoints"], det["width"], det["height"])
    return lift_sequence(model, norm, det["fps"])


def bone_variation(poses: np.ndarray, bones) -> float:
    """Mean over `bones` of (std / mean) of each bone's length over time, frames with NaN out."""
    from distpose_app.core.skeleton import bone_lengths

    lengths = bone_lengths(np.asarray(poses, float))[:, list(bones)]
    lengths = lengths[np.isfinite(lengths).all(-1)]
    return float(np.mean(lengths.std(0) / lengths.mean(0)))


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from distpose_app.core import skeleton
    from distpose_app.evaluation import plausibility as pl
    from distpose_app.lifter.model import load_checkpoint

    model, _ = load_checkpoint(args.weights)
    model.eval()
    out: dict = {
        "weights": str(args.weights),
        "mapping": {k: getattr(skeleton, k) for k in ("SHOULDER_WIDTH_FACTOR", "HIP_WIDTH_FACTOR",
                    "THORAX_FRACTION", "NECK_FRACTION", "HEAD_TOP_FRACTION", "SPINE_FRACTION")},
        "threshold": args.threshold,
    }  # fmt: skip

    up = detections(args.upper, args.cache, args.threshold)
    poses = lift(model, up)
    out["upper"] = {
        "video": args.upper, "frames": up["frames"], "frames_with_person": up["kept"],
        "lifter": pl.raised_hands(up["keypoints"], poses),
        "mediapipe_3d": pl.raised_hands(up["keypoints"], up["world"]),
    }  # fmt: skip

    walk = detections(args.walk, args.cache, args.threshold)
    poses = lift(model, walk)
    all_bones, limbs = range(len(skeleton.BONES)), limb_bone_indices()
    ankles = walk["raw"][:, [3, 6], 1]  # right, left ankle image y
    body_px = np.nanmedian(np.nanmax(walk["raw"][..., 1], -1) - np.nanmin(walk["raw"][..., 1], -1))
    events = pl.mid_stance_frames(ankles, walk["fps"], min_separation=0.05 * body_px)
    knee = {"lifter": pl.stance_knee_flexion(poses, events),
            "mediapipe_3d": pl.stance_knee_flexion(walk["world"], events)}  # fmt: skip
    out["walk"] = {
        "video": args.walk, "frames": walk["frames"], "frames_with_person": walk["kept"],
        "bone_variation": {
            name: {"all": bone_variation(p, all_bones), "limbs": bone_variation(p, limbs)}
            for name, p in (("lifter", poses), ("mediapipe_3d", walk["world"]))
        },
        "mid_stance_events": [[int(t), "right" if s == 0 else "left"] for t, s in events],
        "stance_knee_flexion_deg": {
            k: {"median": float(np.median(v)) if len(v) else None,
                "values": [round(float(x), 1) for x in v]} for k, v in knee.items()
        },
    }  # fmt: skip

    u, w = out["upper"], out["walk"]
    share = u["lifter"]["share"]
    met = share is not None and share >= RAISED_SHARE_TARGET
    print(f"weights: {args.weights}")
    print(f"upper-body clip: 2D wrist above shoulder in {u['lifter']['raised_2d']} (frame, side) "
          f"cases; 3D wrist above too: lifter {_pct(share)}, MediaPipe 3D "
          f"{_pct(u['mediapipe_3d']['share'])} (target >= {RAISED_SHARE_TARGET:.0%}: "
          f"{'met' if met else 'missed'})")  # fmt: skip
    bv = w["bone_variation"]
    ratio = bv["lifter"]["limbs"] / bv["mediapipe_3d"]["limbs"]
    out["walk"]["limb_variation_vs_mediapipe"] = ratio
    print(f"street walk: raw bone-length variation (std/mean over time), 8 limb bones: lifter "
          f"{_pct(bv['lifter']['limbs'])}, MediaPipe 3D {_pct(bv['mediapipe_3d']['limbs'])} "
          f"(ratio {ratio:.2f}, target <= {BONE_VARIATION_VS_MEDIAPIPE_TARGET}: "
          f"{'met' if ratio <= BONE_VARIATION_VS_MEDIAPIPE_TARGET else 'missed'}); all 16 "
          f"bones: lifter {_pct(bv['lifter']['all'])}, MediaPipe 3D "
          f"{_pct(bv['mediapipe_3d']['all'])}")  # fmt: skip
    sk = w["stance_knee_flexion_deg"]
    print(f"street walk: {len(events)} mid-stance events; stance knee flexion, median: lifter "
          f"{_deg(sk['lifter']['median'])}, MediaPipe 3D {_deg(sk['mediapipe_3d']['median'])} "
          "(0 = straight)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
        print(f"wrote {args.json}")
    return 0


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _deg(x) -> str:
    return "n/a" if x is None else f"{x:.1f}°"


if __name__ == "__main__":
    sys.exit(main())
