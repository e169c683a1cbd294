"""MediaPipe Pose on every frame of a video, cached: the raw 33 landmarks (image pixels and
visibility) and world landmarks, before any mapping to H36M-17, so that changing the mapping's
factors never invalidates the cache. Used by the measuring scripts (not by the app).

The detector settings are those of `live.detect.PoseDetector` (tracking mode, model complexity 1,
smoothed landmarks). The cache file is keyed by the video's name and size and mediapipe's version.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def mediapipe_video(video: str | Path, cache_dir: str | Path) -> dict:
    """-> dict: kept (T,) indices of frames with a person, landmarks (T, 33, 2) pixels,
    visibility (T, 33), world (T, 33, 3) metres (MediaPipe's hip-centred 3D, x right, y down,
    z away; NaN where MediaPipe gave none), fps, width, height, frames_read."""
    import cv2
    import mediapipe as mp

    video = Path(video)
    if not video.is_file():
        raise SystemExit(f"no such video: {video}")
    key = f"mediapipe-{video.stem}-{video.stat().st_size}-{mp.__version__}.npz"
    cache = Path(cache_dir) / key
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as d:
            return {k: d[k] if d[k].ndim else d[k].item() for k in d.files}
    pose = mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1,
                                  smooth_landmarks=True, enable_segmentation=False,
                                  min_detection_confidence=0.5,
                                  min_tracking_confidence=0.5)  # fmt: skip
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    kept, marks, vis, world = [], [], [], []
    index, width, height = 0, 0, 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        height, width = frame.shape[:2]
        result = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        if result.pose_landmarks is not None:
            lm = result.pose_landmarks.landmark
            kept.append(index)
            marks.append([[m.x * width, m.y * height] for m in lm])
            vis.append([m.visibility for m in lm])
            wl = result.pose_world_landmarks
            world.append([[m.x, m.y, m.z] for m in wl.landmark] if wl else np.full((33, 3), np.nan))
        index += 1
    cap.release()
    pose.close()
    if not kept:
        raise SystemExit(f"{video}: MediaPipe found no person")
    out = {
        "kept": np.array(kept), "landmarks": np.array(marks), "visibility": np.clip(vis, 0, 1),
        "world": np.array(world), "fps": float(fps), "width": int(width), "height": int(height),
        "frames_read": int(index),
    }  # fmt: skip
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(cache)
    return out
