"""Root motion on a real clip: does the exported person walk where the video's person walks?

Runs `distpose process` on a video (default: ../shared/media/openpose_street_walk.avi, 50 fps)
and on a copy at half the frame rate written here with OpenCV (every 2nd frame), then checks
the exports in plain Python, parsing the BVH with `distpose_app.data.bvh` (the same checks
`scripts/blender_check.py` makes inside Blender):

- walking direction: the root's horizontal displacement goes the way the person goes in the
  image (sideways: the hips' image x; towards or away: the body's image size) and the pelvis
  faces the way it moves: the mean facing over the whole take against the displacement from
  the first to the last second (`facing_vs_heading_deg`), per 0.4 s the facing and velocity yaw
  from the camera (0: facing it, 90: its right, 180: back turned) and the speed, and the median
  angle between facing and velocity where the root moves at 1 m/s or more (walking);
- upright: the mean angle of the spine (Hips -> Spine1) to +Y;
- on the floor: the median height of the ankles on the CSV's contact frames (near 0 by the
  floor's construction) and of the lower ankle over all frames (independent of contacts);
- the BVH (forward kinematics) matches the CSV, mm;
- half frame rate: the exports of the two versions at the same timestamps: mean root-relative
  joint distance and mean root distance, mm.

    python scripts/street_walk_check.py [--video PATH] [--weights pretrained/meta.pt] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distpose_app.cli import process  # noqa: E402
from distpose_app.data.bvh import forward_kinematics, read_bvh  # noqa: E402
from distpose_app.export import BVH_JOINT_NAMES  # noqa: E402
from distpose_app.export.trajectory import local_linear_rate  # noqa: E402
from distpose_app.live.capture import open_source  # noqa: E402

XYZ = [f"{n}_{a}" for n in BVH_JOINT_NAMES for a in "xyz"]


def half_rate_copy(video: Path, out: Path) -> Path:
    """Every 2nd frame of `video` written at half its frame rate (MJPG AVI)."""
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps / 2.0, size)
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % 2 == 0:
            writer.write(frame)
        index += 1
    capture.release()
    writer.release()
    return out


def export(video: Path, folder: Path, weights: str | None, extra=()) -> tuple[Path, Path]:
    bvh, csv = folder / f"{video.stem}.bvh", folder / f"{video.stem}.csv"
    parser = argparse.ArgumentParser()
    process.add_arguments(parser)
    argv = [
        str(video),
        "--bvh",
        str(bvh),
        "--csv",
        str(csv),
        "--device",
        "cpu",
        "--quiet",
        "--force",
    ]
    argv += ["--weights", weights] if weights else []
    if process.run(parser.parse_args(argv + list(extra))) != 0:
        raise SystemExit(f"distpose process failed on {video}")
    return bvh, csv


def image_motion(video: Path) -> dict:
    """The person's motion in the image: the hips' x displacement (pixels, first to last
    tracked frame, averaged over the first and last 10) and the body's image height ratio."""
    keypoints, confidence, _, _, _ = process.detect_all(open_source(str(video)), None, True)
    hips = 0.5 * (keypoints[:, 1] + keypoints[:, 4])  # H36M right and left hip
    height = np.linalg.norm(0.5 * (keypoints[:, 11] + keypoints[:, 14])
                            - 0.5 * (keypoints[:, 3] + keypoints[:, 6]), axis=-1)  # fmt: skip
    ok = np.flatnonzero(np.isfinite(hips).all(-1) & np.isfinite(height))
    head, tail = ok[:10], ok[-10:]
    return {
        "hips_dx_px": float(hips[tail, 0].mean() - hips[head, 0].mean()),
        "size_ratio": float(height[tail].mean() / height[head].mean()),
    }


def check_export(bvh_path: Path, csv_path: Path, image: dict) -> dict:
    table = pd.read_csv(csv_path)
    tracked = table["tracked"].to_numpy() == 1
    xyz = table[XYZ].to_numpy().reshape(len(table), 17, 3)
    bvh = read_bvh(bvh_path)
    fk, _ = forward_kinematics(bvh)
    order = [bvh.names.index(name) for name in BVH_JOINT_NAMES]
    fk = np.asarray(fk)[:, order] / 100.0  # centimetres
    present = tracked | (table["interpolated"].to_numpy() == 1)
    bvh_vs_csv = np.abs(fk[present] - xyz[present]).max()
    P = xyz[present]
    root = P[:, 0]
    move = root[-10:].mean(0) - root[:10].mean(0)
    left = P[:, 4] - P[:, 1]  # right hip -> left hip
    up = np.array([0.0, 1.0, 0.0])
    facing = np.cross(left, up)
    facing = facing[:, [0, 2]] / np.linalg.norm(facing[:, [0, 2]], axis=-1, keepdims=True)
    heading = move[[0, 2]] / np.linalg.norm(move[[0, 2]])
    # per 0.4 s: the pelvis' facing and the root's velocity (0.2 s centred fit) as yaw from the
    # camera (+Z: 0 faces the camera, 90 faces its right, 180 turns its back), and the speed
    t = table["timestamp_s"].to_numpy()[present]
    velocity = np.stack([local_linear_rate(root[:, a], np.ones(len(root), bool), t, 0.2)
                         for a in (0, 2)], -1)  # fmt: skip
    speed = np.linalg.norm(velocity, axis=-1)
    facing_yaw = np.degrees(np.arctan2(facing[:, 0], facing[:, 1]))
    velocity_yaw = np.degrees(np.arctan2(velocity[:, 0], velocity[:, 1]))
    windows = []
    for start in np.arange(t[0], t[-1], 0.4):
        w = (t >= start) & (t < start + 0.4)
        windows.append([round(float(start), 1), round(float(np.median(facing_yaw[w])), 1),
                        round(float(np.median(velocity_yaw[w])), 1),
                        round(float(np.median(speed[w])), 2)])  # fmt: skip
    fast = speed >= 1.0  # walking (the hand-held camera alone moves her root by up to ~0.8 m/s)
    off = np.abs((facing_yaw - velocity_yaw + 180.0) % 360.0 - 180.0)
    spine = P[:, 8] - P[:, 0]
    tilt = np.degrees(np.arccos(spine[:, 1] / np.linalg.norm(spine, axis=-1)))
    contact = table[["RightFoot_contact", "LeftFoot_contact"]].to_numpy()[present] == 1
    planted = P[:, [3, 6], 1][contact]
    lower = P[:, [3, 6], 1].min(axis=1)  # the lower ankle: on the floor in a walk
    sidecar = json.loads(Path(str(bvh_path) + ".json").read_text())
    return {
        "frames": int(len(table)),
        "tracked": int(tracked.sum()),
        "displacement_m": np.round(move, 3).tolist(),
        "distance_m": float(np.linalg.norm(move[[0, 2]])),
        "sideways_agrees": bool(np.sign(move[0]) == np.sign(image["hips_dx_px"])),
        "depthwise_agrees": bool(np.sign(move[2]) == np.sign(np.log(image["size_ratio"]))),
        "facing_vs_heading_deg": float(np.degrees(np.arccos(np.clip(
            (facing.mean(0) / np.linalg.norm(facing.mean(0))) @ heading, -1, 1)))),
        "facing_velocity_yaw_speed_per_0.4s": windows,
        "fast_frames": int(fast.sum()),
        "facing_vs_velocity_deg_median_fast": float(np.median(off[fast])) if fast.any() else None,
        "spine_tilt_deg_mean": float(tilt.mean()),
        "spine_tilt_deg_max": float(tilt.max()),
        "planted_frames": int(contact.sum()),
        "planted_height_median_cm": float(100 * np.median(planted)) if planted.size else None,
        "lower_ankle_height_median_cm": float(100 * np.median(lower)),
        "bvh_vs_csv_mm": float(1000 * bvh_vs_csv),
        "root_locked": sidecar["world"]["root_locked"],
        "camera": {k: sidecar["world"]["camera"][k] for k in ("height_m", "pitch_deg", "roll_deg")},
        "frame_rate_hz": sidecar["frame_rate_hz"],
    }  # fmt: skip


def compare(csv_full: Path, csv_half: Path) -> dict:
    """Exports of the full- and half-rate videos at their common timestamps."""
    full, half = pd.read_csv(csv_full), pd.read_csv(csv_half)
    index = {round(t, 4): i for i, t in enumerate(full["timestamp_s"])}
    pairs = [(index[round(t, 4)], j) for j, t in enumerate(half["timestamp_s"])
             if round(t, 4) in index]  # fmt: skip
    a = full[XYZ].to_numpy().reshape(len(full), 17, 3)[[i for i, _ in pairs]]
    b = half[XYZ].to_numpy().reshape(len(half), 17, 3)[[j for _, j in pairs]]
    ok = np.isfinite(a).all(axis=(1, 2)) & np.isfinite(b).all(axis=(1, 2))
    a, b = a[ok], b[ok]
    t = half["timestamp_s"].to_numpy()[[j for _, j in pairs]][ok]
    rel = np.linalg.norm((a - a[:, :1]) - (b - b[:, :1]), axis=-1).mean(axis=1)
    root = np.linalg.norm(a[:, 0] - b[:, 0], axis=-1)
    late = t >= t[0] + 1.0
    return {
        "frames_compared": int(ok.sum()),
        "root_relative_mm": float(1000 * rel.mean()),
        "root_mean_mm": float(1000 * root.mean()),
        "root_max_mm": float(1000 * root.max()),
        "from_1s_root_relative_mm": float(1000 * rel[late].mean()),
        "from_1s_root_mean_mm": float(1000 * root[late].mean()),
    }


def main(argv=None) -> int:
    shared = Path(os.environ.get("DISTPOSE_SHARED", "../shared"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", default=str(shared / "media" / "openpose_street_walk.avi"))
    parser.add_argument("--weights", default=None, help="default: the shipped live model")
    parser.add_argument("--out", default=None, help="folder for the files (default: a new one)")
    args = parser.parse_args(argv)
    video = Path(args.video)
    if not video.is_file():
        raise SystemExit(f"{video} not found")
    folder = Path(args.out or tempfile.mkdtemp(prefix="street-walk-"))
    folder.mkdir(parents=True, exist_ok=True)
    half = half_rate_copy(video, folder / f"{video.stem}_half.avi")
    image = image_motion(video)
    bvh, csv = export(video, folder, args.weights)
    bvh_half, csv_half = export(half, folder, args.weights)
    report = {
        "video": str(video),
        "files": str(folder),
        "image": image,
        "full_rate": check_export(bvh, csv, image),
        "half_rate": check_export(bvh_half, csv_half, image),
        "full_vs_half": compare(csv, csv_half),
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
