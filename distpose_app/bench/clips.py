"""Measurements over a clip (a video or the synthetic demo source): MediaPipe alone, the live
pipeline with and without a background adaptation, the lifter-only pipeline, and MediaPipe's own
3D beside our lifter's by label-free statistics (symmetry, bone-length consistency, jitter)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distpose_app.bench.common import BenchSettings, median_ms
from distpose_app.bench.speed import BackgroundAdapt
from distpose_app.core import metrics, paths
from distpose_app.core.errors import DistposeError
from distpose_app.core.skeleton import NUM_JOINTS, bone_lengths

DEFAULT_CLIP = "openpose_street_walk.avi"
COMPARISON_CLIPS = ("openpose_street_walk.avi", "mediapipe_gesture_upper_body.mp4")
SYNTHETIC = "demo"  # --clip value for the procedural source (no MediaPipe figures)


# -- label-free pose statistics ---------------------------------------------------------------
def mean_joint_acceleration_gappy(positions: np.ndarray, fps: float) -> float:
    """metrics.mean_joint_acceleration over (T, 17, 3) positions whose untracked frames are NaN
    rows: only second differences of three consecutive finite frames count. units/s^2."""
    acc = np.diff(np.asarray(positions, float), n=2, axis=0) * fps**2
    norms = np.linalg.norm(acc, axis=-1)  # (T-2, 17)
    ok = np.isfinite(norms).all(axis=-1)
    return float(np.mean(norms[ok])) if ok.any() else float("nan")


def label_free_stats(positions: np.ndarray, fps: float) -> dict:
    """Statistics needing no ground truth, of root-relative poses (T, 17, 3) metres with NaN rows
    for frames without a pose: symmetry (mean |left - right| bone length, mm), consistency
    (mean per-bone length std over time, mm and % of the length), jitter (mean joint acceleration,
    m/s^2, over runs of consecutive frames), mean bone length (mm) and the frame count."""
    pos = np.asarray(positions, float)
    pos = pos - pos[:, :1]
    keep = np.isfinite(pos).all(axis=(1, 2))
    if keep.sum() < 3:
        return {"frames": int(keep.sum())}
    p = pos[keep]
    return {
        "frames": int(keep.sum()),
        "symmetry_mm": 1000 * metrics.bone_symmetry_error(p),
        "consistency_mm": 1000 * metrics.bone_consistency(p),
        "consistency_pct": 100 * metrics.bone_consistency_ratio(p),
        "jitter_m_s2": mean_joint_acceleration_gappy(pos, fps),
        "mean_bone_mm": 1000 * float(np.mean(bone_lengths(p))),
    }


# -- clips ------------------------------------------------------------------------------------
@dataclass
class ClipSpec:
    """A clip to measure on: a video file, or the synthetic demo source (path None)."""

    name: str
    path: Path | None

    @property
    def synthetic(self) -> bool:
        return self.path is None


def resolve_clip(clip: str | None, shared_dir: Path | None = None) -> ClipSpec:
    """--clip PATH, "demo" (the synthetic source), or None: the street walk from
    <shared>/media, falling back to the synthetic source when it is absent."""
    if clip is not None and clip != SYNTHETIC:
        path = Path(clip)
        if not path.is_file():
            raise DistposeError(f"--clip: video file not found: {path}")
        return ClipSpec(path.name, path)
    if clip is None:
        path = Path(shared_dir or paths.SHARED) / "media" / DEFAULT_CLIP
        if path.is_file():
            return ClipSpec(path.name, path)
    return ClipSpec("synthetic (demo source: procedural motion, no MediaPipe)", None)


def _frames(spec: ClipSpec, limit: int | None):
    """Yield capture.Frame objects of the clip (at most `limit`); the demo's carry their 2D."""
    source: Any
    if spec.path is None:
        from distpose_app.live.demo import DemoSource

        source = DemoSource(size=(1280, 720), frames=limit or 300, noise_px=1.0, draw=False)
    else:
        from distpose_app.live.capture import VideoFileSource

        source = VideoFileSource(spec.path)
    source.open()
    try:
        n = 0
        while limit is None or n < limit:
            frame = source.read()
            if frame is None:
                return
            n += 1
            yield frame
    finally:
        source.close()


def _clip_fps(spec: ClipSpec) -> float:
    if spec.path is None:
        return 30.0
    from distpose_app.live.capture import VideoFileSource

    source = VideoFileSource(spec.path)
    source.open()
    try:
        return source.fps
    finally:
        source.close()


def mediapipe_pass(spec: ClipSpec, settings: BenchSettings) -> dict:
    """MediaPipe alone (video/tracking mode) over a real clip's frames; decoding is not timed.

    Returns {ms_per_frame (median after warm-up), frames, fps (clip Hz), size (w, h),
    keypoints (F, 17, 2) pixels NaN where no person, confidence (F, 17),
    world_3d (F, 17, 3) MediaPipe's metres NaN where none}.
    """
    from distpose_app.live.detect import PoseDetector

    times, kps, confs, worlds, size = [], [], [], [], None
    with PoseDetector(static_image_mode=False) as detector:
        for i, frame in enumerate(_frames(spec, settings.clip_frames)):
            size = frame.image.shape[1::-1]
            t0 = time.perf_counter()
            det = detector.detect(frame.image)
            if i >= settings.clip_warmup:
                times.append(time.perf_counter() - t0)
            nan2, nan3 = np.full((NUM_JOINTS, 2), np.nan), np.full((NUM_JOINTS, 3), np.nan)
            kps.append(nan2 if det is None else det.keypoints_2d)
            confs.append(np.zeros(NUM_JOINTS) if det is None else det.confidence)
            worlds.append(nan3 if det is None or det.world_3d is None else det.world_3d)
    if not times:
        raise DistposeError(f"{spec.name}: too few frames to time (need > {settings.clip_warmup})")
    assert size is not None  # set by every frame read
    return {
        "ms_per_frame": median_ms(times),
        "frames": len(kps),
        "fps": _clip_fps(spec),
        "size": tuple(int(v) for v in size),
        "keypoints": np.array(kps),
        "confidence": np.array(confs),
        "world_3d": np.array(worlds),
    }


def pipeline_pass(model, spec: ClipSpec, settings: BenchSettings, adapt_buffer=None,
                  adapt_options: dict | None = None) -> dict:  # fmt: skip
    """The live pipeline (LivePipeline.process_frame: MediaPipe on the image, or the demo's own
    2D, then the streaming lifter) over the clip's frames at full speed on the CPU, optionally
    with ISO adaptations running on a background thread (adapt_buffer (T, 17, 2) normalised;
    adapt_options: BackgroundAdapt's threads / nice). Decoding is not timed: in the app it runs
    on the capture thread.

    Returns {ms_per_frame, fps (1000 / ms_per_frame), mediapipe_ms (median of the pipeline's own
    MediaPipe stage; None for the demo), lifter_ms (the pipeline's lifter stage, median),
    frames, adaptations (completed in the background), adapt_seconds (their median wall time),
    buffer ((T, 17, 2) for ISO)}.
    """
    from distpose_app.live.pipeline import LivePipeline

    pipeline = LivePipeline(copy.deepcopy(model), "cpu")
    background = None
    if adapt_buffer is not None:
        background = BackgroundAdapt(pipeline.model_copy(), adapt_buffer, **(adapt_options or {}))
    wall, mp, lift = [], [], []
    try:
        if background is not None:
            background.__enter__()
        for i, frame in enumerate(_frames(spec, settings.clip_frames)):
            t0 = time.perf_counter()
            result = pipeline.process_frame(frame)
            if i >= settings.clip_warmup:
                wall.append(time.perf_counter() - t0)
                mp.append(result.timings.get("mediapipe", np.nan))
                lift.append(result.timings["lifter"])
    finally:
        if background is not None:
            background.__exit__(None, None, None)
        pipeline.close()
    ms = median_ms(wall)
    return {
        "ms_per_frame": ms,
        "fps": 1000.0 / ms,
        "mediapipe_ms": None if spec.synthetic else median_ms(mp),
        "lifter_ms": median_ms(lift),
        "frames": len(wall),
        "adaptations": None if background is None else background.completed,
        "adapt_seconds": float(np.median(background.seconds))
        if background and background.seconds
        else None,
        "buffer": pipeline.adapt_buffer(),
    }


def lifter_only_pass(model, keypoints: np.ndarray, confidence: np.ndarray, size, seconds: float,
                     adapt_buffer=None) -> dict:  # fmt: skip
    """LivePipeline.process_keypoints (cleaning, normalising, streaming lifter; no MediaPipe)
    over precomputed 2D (F, 17, 2) pixels, looped for at least `seconds`, optionally with a
    background adaptation. The harshest case for the adaptation ratio: nothing else to wait on.
    Returns {ms_per_frame (median), fps, frames, adaptations}."""
    from distpose_app.live.pipeline import LivePipeline

    pipeline = LivePipeline(copy.deepcopy(model), "cpu", size=tuple(size))
    background = None
    if adapt_buffer is not None:
        background = BackgroundAdapt(pipeline.model_copy(), adapt_buffer)
    wall: list[float] = []
    try:
        if background is not None:
            background.__enter__()
        start = time.perf_counter()
        while time.perf_counter() - start < seconds or len(wall) < 10:
            for kp, conf in zip(keypoints, confidence):
                kp = kp if np.isfinite(kp).any() else None
                t0 = time.perf_counter()
                pipeline.process_keypoints(kp, conf)
                wall.append(time.perf_counter() - t0)
            pipeline.reset()
    finally:
        if background is not None:
            background.__exit__(None, None, None)
    ms = median_ms(wall)
    return {"ms_per_frame": ms, "fps": 1000.0 / ms, "frames": len(wall),
            "adaptations": None if background is None else background.completed}  # fmt: skip


def lift_detections(model, keypoints: np.ndarray, confidence: np.ndarray, size) -> np.ndarray:
    """Our 3D for detected 2D through the live pipeline: keypoints (F, 17, 2) pixels (NaN rows:
    no person), confidence (F, 17) -> (F, 17, 3) metres root-relative, NaN where no pose."""
    from distpose_app.live.pipeline import LivePipeline

    pipeline = LivePipeline(copy.deepcopy(model), "cpu", size=tuple(size))
    out = np.full((len(keypoints), NUM_JOINTS, 3), np.nan)
    results = []
    for kp, conf in zip(keypoints, confidence):
        results.append(pipeline.process_keypoints(kp if np.isfinite(kp).any() else None, conf))
    results += pipeline.flush()
    for r in results:
        if r.pose_3d is not None and r.pose_tracked and 0 <= r.pose_index < len(out):
            out[r.pose_index] = r.pose_3d
    return out


def compare_3d(models: dict, detected: dict) -> dict:
    """MediaPipe's own 3D vs each model's on one clip. detected: a mediapipe_pass result.

    Statistics (label_free_stats) are over the frames where every source has a pose; when there
    are fewer than 3 such frames (e.g. our pipeline finds the hips outside the picture and lifts
    nothing), each source's own frames are used and "basis" says so. Returns {"basis",
    "frames", "frames_compared", "frames_with_pose": {source: n}, "mediapipe": stats,
    <model>: stats, ...}."""
    poses = {"mediapipe": detected["world_3d"]}
    for name, model in models.items():
        poses[name] = lift_detections(model, detected["keypoints"], detected["confidence"],
                                      detected["size"])  # fmt: skip
    has = {name: np.isfinite(p).all(axis=(1, 2)) for name, p in poses.items()}
    both = np.logical_and.reduce(list(has.values()))
    common = int(both.sum()) >= 3
    out = {
        "basis": "common frames" if common else "each source's own frames (few in common)",
        "frames": int(len(both)),
        "frames_compared": int(both.sum()),
        "frames_with_pose": {name: int(h.sum()) for name, h in has.items()},
    }
    for name, p in poses.items():
        keep = both if common else has[name]
        out[name] = label_free_stats(np.where(keep[:, None, None], p, np.nan), detected["fps"])
    return out


# How the background adaptation runs: as the app does, then the remedies tried for a missed
# target: (label, BackgroundAdapt options).
ADAPT_VARIANTS: tuple[tuple[str, dict[str, int]], ...] = (
    ("as the app runs it (1 torch thread, nice +10)", {}),
    ("unthrottled (default torch threads)", {"threads": 0, "nice": 0}),
    ("Adapt thread: 1 torch thread only", {"threads": 1, "nice": 0}),
)


def adapt_rounds(model, spec: ClipSpec, settings: BenchSettings, buffer: np.ndarray,
                 first: dict) -> dict:  # fmt: skip
    """Frame rate with a background adaptation over frame rate without, in interleaved rounds
    so that a change of load from other processes hits both sides: each round runs one pass
    per ADAPT_VARIANTS entry (settings.adapt_variants: else the first only), then one pass
    without; a variant's ratio in a round uses the mean of the passes without just before and
    after it. first: a pass without adaptation (pipeline_pass) that opens the first round.

    Returns {"without_adapt": [passes], "with_adapt": the app's way (fps, adaptations,
    adapt_seconds, ratios), "variants": [{label, adapt_fps_ratio (median over rounds), ratios,
    fps_with, adaptations, adapt_seconds}], "adapt_fps_ratio": the app's way}."""
    variants = ADAPT_VARIANTS if settings.adapt_variants else ADAPT_VARIANTS[:1]
    off = [first]
    runs: dict[str, list[dict]] = {label: [] for label, _ in variants}
    for _ in range(settings.adapt_rounds):
        for label, options in variants:
            on = pipeline_pass(model, spec, settings, adapt_buffer=buffer, adapt_options=options)
            on.pop("buffer")
            runs[label].append(on)
        off.append(pipeline_pass(model, spec, settings))
        off[-1].pop("buffer")
    out = []
    for label, _ in variants:
        passes = runs[label]
        ratios = [0.5 * (off[r]["ms_per_frame"] + off[r + 1]["ms_per_frame"]) / p["ms_per_frame"]
                  for r, p in enumerate(passes)]  # fmt: skip
        secs = [p["adapt_seconds"] for p in passes if p["adapt_seconds"] is not None]
        out.append({"label": label, "adapt_fps_ratio": float(np.median(ratios)), "ratios": ratios,
                    "fps_with": float(np.median([p["fps"] for p in passes])),
                    "adaptations": int(sum(p["adaptations"] for p in passes)),
                    "adapt_seconds": float(np.median(secs)) if secs else None})  # fmt: skip
    return {"without_adapt": off, "with_adapt": out[0], "variants": out[1:],
            "adapt_fps_ratio": out[0]["adapt_fps_ratio"]}  # fmt: skip


def adaptable_buffer(buffer: np.ndarray, model) -> np.ndarray:
    """The Adapt buffer (T, 17, 2), repeated when a short (quick) pass gave fewer frames than
    iso_adapt accepts: the speed is what is measured here, not the adaptation."""
    from distpose_app.adapt.iso import MIN_ADAPT_FRAMES

    need = max(MIN_ADAPT_FRAMES, model.receptive_field)
    if len(buffer) >= need:
        return buffer
    if len(buffer) == 0:
        return _demo_buffer()
    return np.concatenate([buffer] * -(-need // len(buffer)))


def demo_keypoints(settings: BenchSettings):
    """(keypoints (F, 17, 2) pixels, confidence (F, 17), size) from the demo source."""
    frames = list(_frames(ClipSpec(SYNTHETIC, None), settings.clip_frames or 300))
    kp = np.stack([f.keypoints_2d for f in frames])
    return kp, np.stack([f.confidence for f in frames]), (1280, 720)


def _demo_buffer() -> np.ndarray:
    """(300, 17, 2) normalised 2D of the demo person: ISO input when a clip has none."""
    from distpose_app.lens.screen import normalize_screen_coordinates

    kp, _, size = demo_keypoints(BenchSettings(clip_frames=300))
    return normalize_screen_coordinates(kp, *size).astype(np.float32)
