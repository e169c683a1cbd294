"""Lift the real photo and the upper-body clip of ../shared/media, render the 3D views and check
that the poses are plausible (docs/plausibility.md).

    python scripts/render_views.py --weights pretrained/meta.pt --out docs/img \
        --json docs/img/views.json

Photo (a person sitting): MediaPipe in static-image mode, once; the single frame is lifted as a
still sequence (`lift_sequence` replicates it over the receptive field). Clip (upper body,
25 fps): MediaPipe in tracking mode on every frame, frames without a person dropped, then lifted
at the model's 30 fps and resampled back (`evaluate.lift`). In both, a joint with confidence
below --threshold or outside the image is unseen (NaN in the lifter's input; a model trained
before masking gets zeros there). Writes photo_views.png, clip_views.png and the JSON; prints
the bone-ratio and knee-flexion table. The mocap's ratio range comes from the Bandai-Namco
archive (all recorded frames from the cache, plus every pose_edit family of the first
--edited-files files); without the archive the range is left out.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distpose_app.core import paths  # noqa: E402
from distpose_app.core.fileio import write_atomic  # noqa: E402
from distpose_app.core.skeleton import BONES, JOINT_NAMES  # noqa: E402
from distpose_app.lifter import MODEL_FPS  # noqa: E402

MAX_PNG_BYTES = 200_000
SEEN, UNSEEN = "tab:blue", "0.75"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    media = paths.SHARED / "media"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=str(paths.PRETRAINED_DIR / "meta.pt"))
    p.add_argument("--out", default="docs/img", help="folder for the PNG files")
    p.add_argument(
        "--json", default=None, help="write the figures here (default: <out>/views.json)"
    )
    p.add_argument("--photo", default=str(media / "mediapipe_pose_test_image.jpg"))
    p.add_argument("--clip", default=str(media / "mediapipe_gesture_upper_body.mp4"))
    p.add_argument("--archive", default=str(paths.SHARED / "data" / "bandai-namco-motion.tar.xz"))
    p.add_argument("--threshold", type=float, default=0.5, help="confidence below = unseen")
    p.add_argument("--edited-files", type=int, default=12,
                   help="archive files whose pose edits join the mocap range")  # fmt: skip
    p.add_argument("--montage", type=int, default=3, help="clip frames shown")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def masked_keypoints(det, width: int, height: int, threshold: float) -> np.ndarray:
    """A Detection -> (17, 2) pixels with NaN where confidence < threshold or outside the image."""
    kp = np.array(det.keypoints_2d, dtype=np.float64)
    inside = (kp[:, 0] >= 0) & (kp[:, 0] < width) & (kp[:, 1] >= 0) & (kp[:, 1] < height)
    kp[~(inside & (det.confidence >= threshold))] = np.nan
    return kp


def detect_photo(path: str, threshold: float):
    """-> (RGB image, masked keypoints (17, 2) px, Detection)."""
    import cv2

    from distpose_app.core.errors import DistposeError
    from distpose_app.live.detect import PoseDetector

    image = cv2.imread(path)
    if image is None:
        raise DistposeError(f"cannot read the photo {path}")
    with PoseDetector(static_image_mode=True) as detector:
        det = detector.detect(image)
    if det is None:
        raise DistposeError(f"{path}: MediaPipe found no person")
    h, w = image.shape[:2]
    return image[..., ::-1], masked_keypoints(det, w, h, threshold), det


def detect_clip(path: str, threshold: float):
    """-> (fps, frame indices (T,), masked keypoints (T, 17, 2) px, detected keypoints (T, 17, 2)
    px, RGB frames at quarter size {index: image}, frames read). Frames without a person are
    left out."""
    import cv2

    from distpose_app.core.errors import DistposeError
    from distpose_app.live.detect import PoseDetector

    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise DistposeError(f"cannot open the clip {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    index, kept, kps, raw, frames = 0, [], [], [], {}
    with PoseDetector(static_image_mode=False) as detector:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            det = detector.detect(frame)
            if det is not None:
                h, w = frame.shape[:2]
                kept.append(index)
                kps.append(masked_keypoints(det, w, h, threshold))
                raw.append(det.keypoints_2d)
                # Keep small copies only: the montage shows a few frames.
                frames[index] = cv2.resize(frame, (w // 4, h // 4))[..., ::-1]
            index += 1
    cap.release()
    if not kept:
        raise DistposeError(f"{path}: MediaPipe found no person in any frame")
    return fps, np.array(kept), np.stack(kps), np.stack(raw), frames, index


def mocap_range(archive: str, edited_files: int):
    """(low (16,), high (16,), description) of the bone ratios over the mocap, or None."""
    from distpose_app.data import mocap, pose_edit
    from distpose_app.evaluation import plausibility

    if not Path(archive).is_file():
        return None
    sequences = mocap.load_bandai(archive, cache_dir=paths.CACHE_DIR, progress=False)
    chunks = [s.positions for s in sequences]
    frames = sum(len(c) for c in chunks)
    edited = []
    if edited_files > 0:
        sources = list(mocap.iter_bandai_bvh(archive, limit=edited_files))
        edited = pose_edit.edited_sequences(sources, pose_edit.FAMILIES)
    low, high = plausibility.ratio_range(chunks + [s.positions for s in edited])
    about = {
        "recorded_sequences": len(sequences),
        "recorded_frames": frames,
        "edited_sequences": len(edited),
        "edited_frames": int(sum(s.num_frames for s in edited)),
    }
    return low, high, about


# ----------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------
def _segments(points: np.ndarray, unseen: np.ndarray, ax, size: float) -> None:
    """Bones and joints of one skeleton in 2D plot coordinates (17, 2); unseen ones dimmed."""
    for p, c in BONES:
        dim = unseen[p] or unseen[c]
        ax.plot(*points[[p, c]].T, color=UNSEEN if dim else SEEN, lw=1.5, zorder=1)
    ax.scatter(*points[~unseen].T, s=size, color=SEEN, zorder=2)
    ax.scatter(*points[unseen].T, s=size, facecolors="white", edgecolors="0.6", zorder=2)


def draw_image(ax, image: np.ndarray, keypoints: np.ndarray, detected: np.ndarray) -> None:
    """The picture with the detected joints: seen ones solid, unseen ones (NaN in `keypoints`)
    hollow at MediaPipe's extrapolated position (`detected`, pixels)."""
    ax.imshow(image)
    unseen = ~np.isfinite(keypoints).all(-1)
    _segments(detected, unseen, ax, 12)
    h, w = image.shape[:2]
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.axis("off")


def draw_3d(ax, pose: np.ndarray, unseen: np.ndarray, view: str, limit: float) -> None:
    """One orthographic view of a root-relative pose (17, 3) in camera axes (x right, y down,
    z forward), drawn with Y up in metres: 'front' as the camera sees it, 'side' with the depth
    (distance from the camera, median removed) across, the camera to the left."""
    up = -pose[:, 1]
    across = pose[:, 0] if view == "front" else pose[:, 2] - np.median(pose[:, 2])
    _segments(np.stack([across, up], -1), unseen, ax, 10)
    ax.set_aspect("equal")
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=7)
    ax.set_xlabel("x (m)" if view == "front" else "z, depth (m)", fontsize=8)
    ax.set_ylabel("y up (m)", fontsize=8)
    ax.set_title(view, fontsize=9)


def save_png(fig, path: Path) -> int:
    """Save a figure as PNG under MAX_PNG_BYTES (a 256-colour palette when the full-colour file
    is larger); returns the file size in bytes. Written atomically."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")
    data = buf.getvalue()
    if len(data) > MAX_PNG_BYTES:
        image = Image.open(io.BytesIO(data)).convert("RGB").quantize(256)
        buf = io.BytesIO()
        image.save(buf, format="png", optimize=True)
        data = buf.getvalue()
    write_atomic(path, data)
    return len(data)


def render(rows, path: Path, title: str) -> int:
    """rows: (label, RGB image, masked keypoints (17,2) px, detected (17,2) px at the image's
    scale, pose (17,3) m) -> one row of image / front / side per entry, saved to path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # One scale for every panel (metres), wide enough for x, y and the median-removed depth.
    spans = [np.abs(np.concatenate([r[4][:, :2], r[4][:, 2:] - np.median(r[4][:, 2])], 1))
             for r in rows]  # fmt: skip
    limit = max(0.5, 1.05 * max(float(np.nanmax(s)) for s in spans))
    fig, axes = plt.subplots(len(rows), 3, figsize=(10, 3.3 * len(rows)), dpi=100, squeeze=False,
                             gridspec_kw={"width_ratios": [1.5, 1, 1]})  # fmt: skip
    for (label, image, keypoints, detected, pose), ax in zip(rows, axes):
        unseen = ~np.isfinite(keypoints).all(-1)
        draw_image(ax[0], image, keypoints, detected)
        ax[0].set_title(label, fontsize=9)
        draw_3d(ax[1], pose, unseen, "front", limit)
        draw_3d(ax[2], pose, unseen, "side", limit)
    fig.suptitle(title + "  (grey / hollow: joints the detector did not see)", fontsize=10)
    fig.tight_layout()
    size = save_png(fig, path)
    plt.close(fig)
    return size


def montage_frames(unseen: np.ndarray, count: int) -> list[int]:
    """`count` evenly spaced positions into the kept frames, one of them the frame with the most
    unseen joints (the hardest view) when it is not among them already. unseen: (T, 17) bool."""
    t = len(unseen)
    picks = [int(round(x)) for x in np.linspace(0.1 * (t - 1), 0.9 * (t - 1), count)]
    worst = int(np.argmax(unseen.sum(-1)))
    if unseen[worst].sum() > unseen[picks].sum(-1).max() and count > 1:
        picks[len(picks) // 2] = worst
    return sorted(set(picks))


# ----------------------------------------------------------------------------------------------
def print_table(results: dict) -> None:
    names = list(results["photo"]["bone_ratios"])
    print(
        f"{'ratio':24s} {'mocap range':>15s} {'photo':>7s} {'dev%':>6s} {'clip':>7s} {'dev%':>6s}"
    )
    for name in names:
        rows = [results[k]["bone_ratios"][name] for k in ("photo", "clip")]
        rng = (f"{rows[0]['mocap_low']:.3f}..{rows[0]['mocap_high']:.3f}"
               if "mocap_low" in rows[0] else "-")  # fmt: skip
        cells = " ".join(
            f"{r['median']:7.3f} {100 * r.get('deviation', np.nan):6.1f}" for r in rows
        )
        print(f"{name:24s} {rng:>15s} {cells}")
    print(f"{'limb ratio':24s} {'literature':>15s}")
    for name in results["photo"]["limb_ratios"]:
        rows = [results[k]["limb_ratios"][name] for k in ("photo", "clip")]
        cells = " ".join(f"{r['median']:7.3f} {100 * r['deviation']:6.1f}" for r in rows)
        print(f"{name:24s} {rows[0]['literature']:15.3f} {cells}")
    for key in ("photo", "clip"):
        k = results[key]["knee_flexion_deg"]
        print(f"{key} knee flexion (deg, median): right {k['right']['median']:.1f}, "
              f"left {k['left']['median']:.1f}")  # fmt: skip
    if "mediapipe_knee_flexion_deg" in results["photo"]:
        r, left = results["photo"]["mediapipe_knee_flexion_deg"]
        print(f"photo knee flexion of MediaPipe's own 3D: right {r:.1f}, left {left:.1f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from distpose_app.evaluation import plausibility
    from distpose_app.evaluation import protocol as evaluate
    from distpose_app.lens.screen import normalize_screen_coordinates
    from distpose_app.lifter.inference import lift_sequence
    from distpose_app.lifter.model import load_checkpoint

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, meta = load_checkpoint(args.weights)
    ranges = mocap_range(args.archive, args.edited_files)
    low, high = (ranges[0], ranges[1]) if ranges else (None, None)
    results: dict = {
        "weights": str(args.weights),
        "in_features": model.in_features,
        "threshold": args.threshold,
        "reference": "trunk = Hip-Spine + Spine-Thorax bone lengths",
        "mocap_range": None if ranges is None else {
            **ranges[2],
            "low": dict(zip(plausibility.RATIO_NAMES, map(float, low))),
            "high": dict(zip(plausibility.RATIO_NAMES, map(float, high))),
        },
        "literature_tolerance": plausibility.LITERATURE_TOLERANCE,
    }  # fmt: skip

    # Photo: one frame, lifted as a still sequence.
    image, kp_px, det = detect_photo(args.photo, args.threshold)
    h, w = image.shape[:2]
    pose = lift_sequence(model, normalize_screen_coordinates(kp_px, w, h)[None])[0]
    photo = plausibility.summarise(pose[None], low, high)
    photo["unseen_joints"] = [JOINT_NAMES[j] for j in np.flatnonzero(~np.isfinite(kp_px[:, 0]))]
    photo["pose_m"] = pose.round(4).tolist()
    if det.world_3d is not None:  # MediaPipe's own 3D: an independent opinion on the knees
        photo["mediapipe_knee_flexion_deg"] = np.degrees(
            plausibility.knee_flexion(det.world_3d)
        ).tolist()
    knees = np.array([photo["knee_flexion_deg"][s]["median"] for s in ("right", "left")])
    photo["knees_flexed"] = bool(np.all(knees > plausibility.SEATED_KNEE_MIN_DEG))
    results["photo"] = photo
    rows = [("photo", image, kp_px, det.keypoints_2d, pose)]
    results["photo"]["png_bytes"] = render(rows, out / "photo_views.png", "Seated photo")

    # Clip: every frame, lifted at the model's rate.
    fps, kept, kps_px, raw_px, frames, read = detect_clip(args.clip, args.threshold)
    ch, cw = next(iter(frames.values())).shape[:2]
    width, height = 4 * cw, 4 * ch
    norm = normalize_screen_coordinates(kps_px, width, height)
    poses = evaluate.lift(model, norm, fps)
    clip = plausibility.summarise(poses, low, high)
    unseen = ~np.isfinite(kps_px).all(-1)
    clip.update(
        fps=fps, frames_read=read, frames_lifted=len(kept), model_fps=MODEL_FPS,
        unseen_fraction={n: float(f) for n, f in zip(JOINT_NAMES, unseen.mean(0))},
    )  # fmt: skip
    picks = montage_frames(unseen, args.montage)
    rows = [
        (f"frame {kept[i]} ({kept[i] / fps:.1f} s)", frames[kept[i]], kps_px[i] / 4,
         raw_px[i] / 4, poses[i])
        for i in picks
    ]  # fmt: skip
    clip["montage_frames"] = [int(kept[i]) for i in picks]
    clip["png_bytes"] = render(rows, out / "clip_views.png", "Upper-body clip")
    results["clip"] = clip

    print_table(results)
    json_path = Path(args.json) if args.json else out / "views.json"
    write_atomic(json_path, json.dumps(results, indent=1))
    print(f"wrote {out / 'photo_views.png'}, {out / 'clip_views.png'}, {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
