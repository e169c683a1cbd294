"""Measure the proportions behind `skeleton.mediapipe_to_h36m`'s joint-definition factors.

The training mocap's joints and MediaPipe's landmarks are different points on the body (wider
shoulders and hips, ears far above the rig's head joint). This prints, as shares of the trunk
(shoulder midpoint to hip midpoint), the mocap rig's proportions (every 10th frame of the
Bandai-Namco archive) and MediaPipe's own (its world landmarks over a video with the whole body
in view), and the factors = mocap / MediaPipe that skeleton.py uses.

    .venv/bin/python scripts/measure_mapping.py [--video ../shared/media/openpose_street_walk.avi]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distpose_app.core import skeleton as S  # noqa: E402


def proportions(shoulders_l, shoulders_r, hips_l, hips_r, up) -> dict:
    """Medians of width / trunk for (N, 3) points; up: (N,) heights of interest above the
    shoulder midpoint, as a dict name -> (N,) metres."""
    s_mid, h_mid = 0.5 * (shoulders_l + shoulders_r), 0.5 * (hips_l + hips_r)
    trunk = np.linalg.norm(s_mid - h_mid, axis=-1)
    out = {
        "shoulder width": np.median(np.linalg.norm(shoulders_l - shoulders_r, axis=-1) / trunk),
        "hip width": np.median(np.linalg.norm(hips_l - hips_r, axis=-1) / trunk),
    }
    out.update({k: np.median(np.linalg.norm(v - s_mid, axis=-1) / trunk) for k, v in up.items()})
    return out


def mocap(archive: str, cache: str) -> dict:
    from distpose_app.data.mocap import load_bandai

    p = np.concatenate([s.positions[::10] for s in load_bandai(archive, cache, progress=False)])
    return proportions(p[:, 11], p[:, 14], p[:, 4], p[:, 1],
                       {"thorax": p[:, 8], "neck": p[:, 9], "crown": p[:, 10]})  # fmt: skip


def mediapipe(video: str) -> dict:
    import cv2
    import mediapipe as mp

    pose = mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1)
    cap, rows = cv2.VideoCapture(video), []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        result = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        if result.pose_world_landmarks is not None:
            rows.append([[m.x, m.y, m.z] for m in result.pose_world_landmarks.landmark])
    if not rows:
        raise SystemExit(f"{video}: no person found")
    w = np.array(rows)
    ears = 0.5 * (w[:, S.MP_LEFT_EAR] + w[:, S.MP_RIGHT_EAR])
    print(f"{video}: {len(w)} frames with a person")
    return proportions(w[:, S.MP_LEFT_SHOULDER], w[:, S.MP_RIGHT_SHOULDER], w[:, S.MP_LEFT_HIP],
                       w[:, S.MP_RIGHT_HIP], {"ears": ears})  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", default="../shared/media/openpose_street_walk.avi")
    p.add_argument("--archive", default="../shared/data/bandai-namco-motion.tar.xz")
    p.add_argument("--cache", default=".cache")
    args = p.parse_args()
    rig, det = mocap(args.archive, args.cache), mediapipe(args.video)
    print("share of the trunk      mocap  MediaPipe  factor (skeleton.py)")
    for key, used in [("shoulder width", S.SHOULDER_WIDTH_FACTOR), ("hip width",
                      S.HIP_WIDTH_FACTOR)]:  # fmt: skip
        print(f"{key:22s} {rig[key]:6.3f} {det[key]:9.3f}  {rig[key] / det[key]:.2f} ({used})")
    for key, used in [("thorax", S.THORAX_FRACTION), ("neck", S.NECK_FRACTION),
                      ("crown", S.HEAD_TOP_FRACTION)]:  # fmt: skip
        print(f"{key + ' above shoulders':22s} {rig[key]:6.3f} {det['ears']:9.3f}  "
              f"{rig[key] / det['ears']:.2f} ({used}; MediaPipe column: the ears)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
