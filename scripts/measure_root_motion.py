"""Root motion, floor and foot contact on held-out mocap, where the truth is known.

The held-out Bandai styles (elderly, old) through the evaluation's 90° 1280x720 webcam
(`distpose evaluate`'s data, from the cache), with detector-like 2D noise, go through the real
path: `LivePipeline.process_keypoints` (lifter at 30 fps, root solve from the 2D) -> the recorded
`Recording` -> `export.prepare_motion` (trajectory smoothing, world frame, contacts, planting).
Per group of clips it prints:

- trajectory error: the root's camera-space track, first frame aligned to the truth, mean
  distance to the truth, as a share of the distance the true root travelled (clips travelling
  at least 1 m), for the recorded (raw) root and the exported (smoothed) one;
- depth error: mean |z - z_true| of the root, mm (not aligned: the lifter's body size sets it);
- up error: angle between the export's up and the true vertical, degrees;
- foot skating: mean horizontal speed (cm/s) of an exported foot on the frames where the true
  foot is planted (true ankle within 3 cm of its lowest height and slower than 0.1 m/s), with
  and without planting; and the recall / precision of the detected contacts against those;
- global joint error: mean distance of every exported joint to the truth in camera space,
  first frame's root aligned, mm, with and without planting (planting must not cost accuracy).

    python scripts/measure_root_motion.py                 # the true field of view (90°)
    python scripts/measure_root_motion.py --hfov 70       # a wrong assumed field of view
    python scripts/measure_root_motion.py --every 4       # a quarter of the clips, faster
    python scripts/measure_root_motion.py --every 3 --offset 1   # the clips between
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distpose_app.cli.evaluate import EVAL_HFOV_DEG, EVAL_SIZE  # noqa: E402
from distpose_app.data.cameras import CameraConfig  # noqa: E402
from distpose_app.data.synthetic import NoiseConfig, add_detector_noise, load_or_build  # noqa: E402
from distpose_app.export import ExportOptions, prepare_motion  # noqa: E402
from distpose_app.export.contacts import foot_speed_height  # noqa: E402
from distpose_app.lens.models import Intrinsics  # noqa: E402
from distpose_app.lifter.model import load_checkpoint  # noqa: E402
from distpose_app.live.pipeline import LivePipeline  # noqa: E402

FPS = 30.0
FEET = [3, 6]
GROUPS = {
    "walk": ("walk", "walk-back", "walk-left", "walk-right", "dash"),
    "walk-turn": ("walk-turn-left", "walk-turn-right"),
    "run": ("run",),
}


def group_of(name: str) -> str:
    content = name.split("/")[0].split("_")[1]
    return next((g for g, members in GROUPS.items() if content in members), "in place")


def true_contacts(world: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(F, 2) bool: the true ankle within 3 cm of its lowest height in the clip and slower than
    0.1 m/s horizontally. world (F, 17, 3) metres, Y up."""
    speed, height = foot_speed_height(world[:, FEET], t, np.ones(len(t), bool), smooth_s=0.0)
    return (speed < 0.1) & (height < world[:, FEET, 1].min() + 0.03)


def lift_clip(pipeline: LivePipeline, px: np.ndarray, t: np.ndarray):
    pipeline.reset()
    pipeline.recorder.start({})
    for k in range(len(px)):
        pipeline.process_keypoints(px[k], None, float(t[k]), k)
    pipeline.flush()
    return pipeline.recorder.stop()


def to_camera(motion, positions: np.ndarray) -> np.ndarray:
    """Exported world positions (F, J, 3) back to camera space (before any root lock)."""
    return (positions - motion.translation_m) @ motion.camera_to_world


def clip_figures(motion, planted_free, recording, truth_cam, truth_world, t) -> dict:
    root = truth_cam[:, 0]
    path = float(np.linalg.norm(np.diff(root, axis=0), axis=1).sum())
    out = {"distance_m": path}
    for key, est in (("raw", recording.positions[:, 0]), ("smoothed", motion.root_camera)):
        ok = np.isfinite(est).all(-1)
        first = np.flatnonzero(ok)[0]
        aligned = est - est[first] + root[first]
        out[f"traj_err_{key}_m"] = float(np.linalg.norm(aligned - root, axis=1)[ok].mean())
    ok = np.isfinite(motion.root_camera).all(-1)
    out["depth_err_m"] = float(np.abs(motion.root_camera[ok, 2] - root[ok, 2]).mean())
    gt = true_contacts(truth_world, t) & ok[:, None]
    for key, m in (("planted", motion), ("unplanted", planted_free)):
        speed, _ = foot_speed_height(m.positions[:, FEET], t, ok, smooth_s=0.0)
        out[f"skate_{key}_m_s"] = float(speed[gt].mean()) if gt.any() else float("nan")
        cam = to_camera(m, m.positions)
        first = np.flatnonzero(ok)[0]
        cam = cam - cam[first, :1] + truth_cam[first, :1]
        out[f"global_err_{key}_m"] = float(np.linalg.norm(cam - truth_cam, axis=-1)[ok].mean())
    det = motion.contacts
    out["contact_true"] = int(gt.sum())
    out["contact_hit"] = int((det & gt).sum())
    out["contact_detected"] = int(det.sum())
    planted_height = motion.positions[:, FEET, 1][det]
    out["planted_height_m"] = float(np.median(planted_height)) if det.any() else float("nan")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="pretrained/meta.pt")
    parser.add_argument("--archive", default=os.environ.get(
        "DISTPOSE_ARCHIVE", str(Path(os.environ.get("DISTPOSE_SHARED", "../shared"))
                                / "data" / "bandai-namco-motion.tar.xz")))  # fmt: skip
    parser.add_argument("--cache", default=os.environ.get("DISTPOSE_CACHE", ".cache"))
    parser.add_argument(
        "--hfov",
        type=float,
        default=None,
        help="assumed horizontal field of view, degrees (default: the true one)",
    )
    parser.add_argument("--noise-px", type=float, default=1.5)
    parser.add_argument("--every", type=int, default=1, help="use every N-th clip")
    parser.add_argument("--offset", type=int, default=0, help="starting at this clip")
    parser.add_argument("--json", help="write the per-clip figures here")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    camera = CameraConfig(hfov_deg=(EVAL_HFOV_DEG, EVAL_HFOV_DEG), image_sizes=(EVAL_SIZE,))
    data = load_or_build(args.archive, "test", 1, seed=1, camera=camera, cache_dir=args.cache)
    noise = NoiseConfig(sigma_px=args.noise_px)
    noisy, _ = add_detector_noise(np.random.default_rng(7), data.keypoints_2d_ideal,
                                  data.sequence, noise)  # fmt: skip
    model, _ = load_checkpoint(args.weights, "cpu")
    width, height = (int(v) for v in data.image_size[0])
    if args.hfov is None:
        intrinsics, hfov = Intrinsics.from_array(data.intrinsics[0], data.image_size[0]), None
    else:
        intrinsics, hfov = None, args.hfov
    pipeline = LivePipeline(model, "cpu", size=(width, height), intrinsics=intrinsics,
                            hfov_deg=hfov or 70.0)  # fmt: skip
    pipeline.recorder.recovery_dir = None
    rows = []
    start = time.monotonic()
    slices = data.sequence_slices()
    for i in range(args.offset, len(slices), args.every):
        sl = slices[i]
        truth_cam = data.positions_3d[sl].astype(np.float64)
        truth_world = (truth_cam - data.translation[i]) @ data.rotation[i]
        t = np.arange(len(truth_cam)) / FPS
        recording = lift_clip(pipeline, noisy[sl].astype(np.float64), t)
        if not recording.tracked.any():
            continue
        motion = prepare_motion(recording, ExportOptions())
        unplanted = prepare_motion(recording, ExportOptions(plant_feet=False))
        figures = clip_figures(motion, unplanted, recording, truth_cam, truth_world, t)
        up_true = data.rotation[i] @ np.array([0.0, 1.0, 0.0])  # world up in camera axes
        up_est = motion.world.rotation[1]
        figures["up_err_deg"] = float(np.degrees(np.arccos(np.clip(up_est @ up_true, -1, 1))))
        figures["up_from"] = motion.world.method
        figures["group"] = group_of(str(data.names[i]))
        figures["name"] = str(data.names[i])
        rows.append(figures)
    seconds = time.monotonic() - start

    print(f"{len(rows)} clips of {len(slices)} ({seconds:.0f} s), weights {args.weights}, "
          f"field of view {'true (90°)' if args.hfov is None else f'assumed {args.hfov:g}°'}, "
          f"noise {args.noise_px:g} px")  # fmt: skip
    header = (
        "group",
        "clips",
        "dist m",
        "traj raw %",
        "traj %",
        "depth mm",
        "up °",
        "skate cm/s",
        "unplanted",
        "recall",
        "precision",
        "joints mm",
        "unplanted mm",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for group in (*GROUPS, "in place", "all"):
        sel = [r for r in rows if group in (r["group"], "all")]
        if not sel:
            continue
        moving = [r for r in sel if r["distance_m"] >= 1.0]
        dist = sum(r["distance_m"] for r in moving)

        def share(key, moving=moving, dist=dist):
            return 100 * sum(r[key] for r in moving) / dist if moving else float("nan")

        true_n = sum(r["contact_true"] for r in sel)
        hit = sum(r["contact_hit"] for r in sel)
        det = sum(r["contact_detected"] for r in sel)

        def weighted(key, sel=sel, true_n=true_n):  # frame-weighted over true contacts
            pairs = [(r[key], r["contact_true"]) for r in sel if r["contact_true"]]
            return 100 * sum(v * n for v, n in pairs) / true_n if true_n else float("nan")

        print("| " + " | ".join([
            group, str(len(sel)), f"{np.mean([r['distance_m'] for r in sel]):.2f}",
            f"{share('traj_err_raw_m'):.1f}", f"{share('traj_err_smoothed_m'):.1f}",
            f"{1000 * np.mean([r['depth_err_m'] for r in sel]):.0f}",
            f"{np.mean([r['up_err_deg'] for r in sel]):.1f}",
            f"{weighted('skate_planted_m_s'):.1f}", f"{weighted('skate_unplanted_m_s'):.1f}",
            f"{hit / true_n:.2f}" if true_n else "-", f"{hit / det:.2f}" if det else "-",
            f"{1000 * np.mean([r['global_err_planted_m'] for r in sel]):.0f}",
            f"{1000 * np.mean([r['global_err_unplanted_m'] for r in sel]):.0f}",
        ]) + " |")  # fmt: skip
    heights = [r["planted_height_m"] for r in rows if np.isfinite(r["planted_height_m"])]
    print(
        f"median height of planted feet: {100 * np.median(heights):.1f} cm; up from the "
        f"feet in {np.mean([r['up_from'] == 'feet' for r in rows]):.0%} of the clips"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
