"""Measure the proportions behind `skeleton.mediapipe_to_h36m`'s joint-definition factors.

The training mocap's joints and MediaPipe's landmarks are different points on the body (wider
shoulders and hips, ears far above the rig's head joint). This prints, as shares of the trunk
(shoulder midpoint to hip midpoint), the proportions of each reference skeleton (every 10th frame
of the Bandai-Namco archive; every 10th frame of all five Human3.6M training subjects, whose
joint definitions come from its marker-based body model) and MediaPipe's own (its world landmarks
over a video with the whole body in view, cached), and the factors = reference / MediaPipe that
skeleton.py uses. Spine: where the reference's spine joint projects onto pelvis -> thorax.

    .venv/bin/python scripts/measure_mapping.py [--video ../shared/media/openpose_street_walk.avi]
        [--reference bandai h36m]
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


def _reference(p: np.ndarray) -> dict:
    """Proportions of H36M-17 joints (N, 17, 3) metres, and the spine joint's place on the
    pelvis -> thorax segment (projection, as a fraction)."""
    out = proportions(p[:, 11], p[:, 14], p[:, 4], p[:, 1],
                      {"thorax": p[:, 8], "neck": p[:, 9], "crown": p[:, 10]})  # fmt: skip
    axis = p[:, 8] - p[:, 0]
    spine = np.sum((p[:, 7] - p[:, 0]) * axis, -1) / np.sum(axis * axis, -1)
    out["spine"] = float(np.median(spine))
    return out


def bandai(archive: str, cache: str) -> dict:
    from distpose_app.data.mocap import load_bandai

    p = np.concatenate([s.positions[::10] for s in load_bandai(archive, cache, progress=False)])
    return _reference(p)


def h36m(path: str) -> dict:
    """Every 10th frame of the Human3.6M training subjects (S1, S5, S6, S7, S8)."""
    with np.load(path, allow_pickle=False) as d:
        p = d["world_3d"][::10].astype(np.float64)
    return _reference(p)


def mediapipe(video: str, cache: str) -> dict:
    from mediapipe_cache import mediapipe_video

    w = mediapipe_video(video, cache)["world"]
    w = w[np.isfinite(w).all(axis=(1, 2))]
    ears = 0.5 * (w[:, S.MP_LEFT_EAR] + w[:, S.MP_RIGHT_EAR])
    print(f"{video}: {len(w)} frames with a person")
    return proportions(w[:, S.MP_LEFT_SHOULDER], w[:, S.MP_RIGHT_SHOULDER], w[:, S.MP_LEFT_HIP],
                       w[:, S.MP_RIGHT_HIP], {"ears": ears})  # fmt: skip


def main() -> int:
    from distpose_app.core import paths

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", default=str(paths.SHARED / "media" / "openpose_street_walk.avi"))
    p.add_argument("--archive", default=str(paths.DEFAULT_ARCHIVE))
    p.add_argument("--h36m", default=str(paths.DEFAULT_H36M))
    p.add_argument("--reference", nargs="+", choices=("bandai", "h36m"), default=["bandai", "h36m"])
    p.add_argument("--cache", default=str(paths.CACHE_DIR))
    args = p.parse_args()
    det = mediapipe(args.video, args.cache)
    refs = {}
    if "bandai" in args.reference:
        refs["bandai"] = bandai(args.archive, args.cache)
    if "h36m" in args.reference:
        refs["h36m"] = h36m(args.h36m)
    names = list(refs)
    print("share of the trunk (shoulder midpoint to hip midpoint); factor = reference / MediaPipe")
    print(f"{'':22s} {'MediaPipe':>9s} " + " ".join(f"{n:>8s} {'factor':>7s}" for n in names)
          + "  skeleton.py now")  # fmt: skip
    rows = [("shoulder width", "shoulder width", S.SHOULDER_WIDTH_FACTOR),
            ("hip width", "hip width", S.HIP_WIDTH_FACTOR),
            ("thorax above shoulders", "thorax", S.THORAX_FRACTION),
            ("neck above shoulders", "neck", S.NECK_FRACTION),
            ("crown above shoulders", "crown", S.HEAD_TOP_FRACTION)]  # fmt: skip
    for label, key, used in rows:
        mp_key = key if key in det else "ears"  # heights are shares of MediaPipe's ear height
        cells = " ".join(f"{refs[n][key]:8.3f} {refs[n][key] / det[mp_key]:7.2f}" for n in names)
        print(f"{label:22s} {det[mp_key]:9.3f} {cells}  {used}")
    cells = " ".join(f"{refs[n]['spine']:8.3f} {refs[n]['spine']:7.2f}" for n in names)
    print(f"{'spine on hip->thorax':22s} {'':>9s} {cells}  {S.SPINE_FRACTION}")
    print("(heights: the MediaPipe column is its ear midpoint's height above the shoulders)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
