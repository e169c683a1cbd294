"""Benchmarks behind `distpose bench`: every stage's speed on this machine, and MediaPipe's own 3D
beside our lifter by label-free statistics.

Conventions: times are medians of per-call wall times (time.perf_counter) after warm-up calls;
the ratios that matter (streaming vs naive lifter, pipeline vs MediaPipe, frame rate with vs
without a background adaptation) are measured in one run, interleaved or back to back, so that
load from other processes affects both sides alike. The top-level JSON keys (REQUIRED_KEYS) are
for the default live model on the CPU; `models`, `clips`, `training`, `gpu` hold the rest.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from distpose_app.adapt.iso import BACKGROUND_NICE, BACKGROUND_THREADS
from distpose_app.core import metrics, paths
from distpose_app.core.errors import DistposeError
from distpose_app.core.fileio import to_jsonable
from distpose_app.core.skeleton import NUM_JOINTS, bone_lengths

REQUIRED_KEYS = (
    "lifter_ms_per_frame",
    "lifter_naive_ms_per_frame",
    "mediapipe_ms_per_frame",
    "pipeline_fps",
    "pipeline_overhead_ratio",
    "iso_seconds",
    "adapt_fps_ratio",
    "train_frames_per_s",
    "machine",
)
# The live model: meta-trained when shipped, else the lens-augmented one (issue 3's choice).
LIVE_MODEL_ORDER = ("meta", "augmented")
DEFAULT_CLIP = "openpose_street_walk.avi"
COMPARISON_CLIPS = ("openpose_street_walk.avi", "mediapipe_gesture_upper_body.mp4")
SYNTHETIC = "demo"  # --clip value for the procedural source (no MediaPipe figures)
TARGETS = {  # key: (comparison, bound), from the issue
    "lifter_ms_per_frame": ("<=", 1.0),
    "pipeline_overhead_ratio": ("<=", 0.10),
    "iso_seconds": ("<=", 3.0),
    "iso_seconds_1_thread": ("<=", 3.0),
    "adapt_fps_ratio": (">=", 0.8),
}
NO_CUDA = "unmeasured (no CUDA device)"


@dataclass
class BenchSettings:
    """How much to measure. `quick()` keeps a whole run under ~30 s (tests); the default takes a
    few minutes on a 2-core CPU."""

    lifter_pushes: int = 300  # timed pushes per lifter (after RF + lifter_warmup)
    lifter_warmup: int = 30
    batch_frames: int = 5000  # frames per offline batch (lift_sequence)
    batch_repeats: int = 5
    clip_frames: int | None = None  # frames of a clip to use (None: all)
    clip_warmup: int = 10  # first frames of each pass not timed (detector start, caches)
    adapt_rounds: int = 3  # interleaved rounds of passes with / without adaptation
    iso_repeats: int = 3
    iso_warmup: int = 1
    train_steps: int = 6
    train_warmup: int = 1
    train_batch: int | None = None  # None: TrainConfig's default
    meta_tasks: int | None = None
    lifter_only_seconds: float = 4.0  # lifter-only passes loop the 2D for at least this long
    comparison_clips: bool = True  # also detect the second real clip
    adapt_variants: bool = True  # also measure the remedies in ADAPT_VARIANTS (real clip only)

    @classmethod
    def quick(cls) -> BenchSettings:
        return cls(lifter_pushes=30, lifter_warmup=5, batch_frames=400, batch_repeats=2,
                   clip_frames=20, clip_warmup=3, adapt_rounds=1, iso_repeats=1, iso_warmup=1,
                   train_steps=1, train_warmup=1, train_batch=16, meta_tasks=2,
                   lifter_only_seconds=0.3, comparison_clips=False,
                   adapt_variants=False)  # fmt: skip


# -- helpers ----------------------------------------------------------------------------------
def default_live_model(pretrained_dir: Path | None = None) -> str | None:
    """Name of the live model in pretrained/ (LIVE_MODEL_ORDER first, else the first shipped
    one), or None when none is shipped."""
    folder = Path(pretrained_dir or paths.PRETRAINED_DIR)
    names = sorted(p.stem for p in folder.glob("*.pt"))
    for name in LIVE_MODEL_ORDER:
        if name in names:
            return name
    return names[0] if names else None


def machine_info(device: str = "cpu") -> dict:
    """Processor, cores, memory, library versions and the CUDA device (if any) as strings."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "processor": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": device,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_start": _load_average(),
    }
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        from importlib.metadata import version

        info["mediapipe"] = version("mediapipe")
    except Exception:  # not installed: the clip sections are skipped anyway
        info["mediapipe"] = None
    return info


def _median_ms(seconds) -> float:
    return 1000.0 * float(np.median(seconds))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _log(message: str) -> None:
    import sys

    print(f"distpose bench: {message}", file=sys.stderr, flush=True)


# -- lifter -----------------------------------------------------------------------------------
def lifter_speed(model, device: str | torch.device, settings: BenchSettings, seed: int = 0) -> dict:
    """Per-frame latency of StreamingLifter vs NaiveLifter (pushes interleaved, so both see the
    same load), and offline batch throughput of the whole network (adapt.lift_sequence).

    model: a TemporalModel (copied onto `device`). Inputs are random normalised 2D: the speed
    does not depend on the values. Returns {stream_ms, naive_ms (median ms per frame),
    naive_over_stream, batch_fps (frames/s), receptive_field, channels}.
    """
    from distpose_app.lifter.inference import lift_sequence
    from distpose_app.lifter.model import NaiveLifter, StreamingLifter

    device = torch.device(device)
    model = copy.deepcopy(model).to(device).eval()
    rf = model.receptive_field
    rng = np.random.default_rng(seed)
    lead = rf + settings.lifter_warmup
    frames = rng.uniform(-1, 1, (lead + settings.lifter_pushes, NUM_JOINTS, 2)).astype(np.float32)
    stream, naive = StreamingLifter(model, device), NaiveLifter(model, device)
    times = {"stream": [], "naive": []}
    for i, k in enumerate(frames):
        for name, lifter in (("stream", stream), ("naive", naive)):
            t0 = time.perf_counter()
            lifter.push(k)  # returns a numpy array: the device work is finished
            if i >= lead:
                times[name].append(time.perf_counter() - t0)
    seq = rng.uniform(-1, 1, (settings.batch_frames, NUM_JOINTS, 2)).astype(np.float32)
    lift_sequence(model, seq[: 4 * rf])  # warm-up
    batch = []
    for _ in range(settings.batch_repeats):
        t0 = time.perf_counter()
        lift_sequence(model, seq)
        batch.append(time.perf_counter() - t0)
    stream_ms, naive_ms = _median_ms(times["stream"]), _median_ms(times["naive"])
    return {
        "stream_ms": stream_ms,
        "naive_ms": naive_ms,
        "naive_over_stream": naive_ms / stream_ms,
        "batch_fps": settings.batch_frames / float(np.median(batch)),
        "receptive_field": rf,
        "channels": model.channels,
    }


# -- Adapt -------------------------------------------------------------------------------------
def iso_speed(model, keypoints_2d: np.ndarray, device: str | torch.device,
              settings: BenchSettings, threads: int | None = None) -> dict:  # fmt: skip
    """Wall time of the app's Adapt (`adapt.adapt_model` with its default method, the lens fit
    since issue 8) on `device`.

    keypoints_2d (T, 17, 2) normalised screen coordinates (T >= adapt.MIN_ADAPT_FRAMES).
    threads: torch intra-op threads for the calling thread meanwhile (None: as it is).
    Returns {seconds (median), runs, frames, steps, accepted (last run), threads}.
    """
    from distpose_app.adapt.iso import DEFAULT_ADAPTATION, adapt_model

    device = torch.device(device)
    model = copy.deepcopy(model).to(device).eval()
    seconds, result = [], None
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        for i in range(settings.iso_warmup + settings.iso_repeats):
            _sync(device)
            t0 = time.perf_counter()
            result = adapt_model(model, keypoints_2d)
            _sync(device)
            if i >= settings.iso_warmup:
                seconds.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return {
        "threads": threads or before,
        "seconds": float(np.median(seconds)),
        "runs": len(seconds),
        "frames": int(len(keypoints_2d)),
        "steps": int(result.steps),
        "method": DEFAULT_ADAPTATION,
        "accepted": bool(result.accepted),
    }


class BackgroundAdapt:
    """Adaptations (the app's default method) back to back on a thread (as the GUI's Adapt task
    runs beside the live thread) until the `with` block ends; the last one is cancelled.
    `seconds` holds the wall time of each completed adaptation.

    threads, nice: as `adapt.lower_background_priority`, which the app's Adapt task calls with
    the defaults (threads=0 and nice=0 measure an unthrottled adaptation)."""

    def __init__(
        self,
        model,
        keypoints_2d: np.ndarray,
        threads: int = BACKGROUND_THREADS,
        nice: int = BACKGROUND_NICE,
    ):
        self.model, self.keypoints = model, keypoints_2d
        self.threads, self.nice = threads, nice
        self.seconds: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench adapt", daemon=True)
        self.error: BaseException | None = None

    @property
    def completed(self) -> int:
        return len(self.seconds)

    def _loop(self) -> None:
        from distpose_app.adapt.iso import adapt_model, lower_background_priority

        try:
            lower_background_priority(self.threads, self.nice)
            while not self._stop.is_set():
                t0 = time.perf_counter()
                result = adapt_model(self.model, self.keypoints, should_cancel=self._stop.is_set)
                if result.reason != "cancelled":
                    self.seconds.append(time.perf_counter() - t0)
        except BaseException as exc:  # reported by __exit__: a bench must not hide a failure
            self.error = exc

    def __enter__(self) -> BackgroundAdapt:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error


# -- training ---------------------------------------------------------------------------------
def synthetic_training_set(frames: int = 600, sequences: int = 2):
    """Camera-frame 3D of the demo person (distpose_app.live.demo), as the training data format:
    an object with positions_3d (N, 17, 3) metres, sequence (N,), intrinsics (S, 4) fx, fy, cx,
    cy pixels and image_size (S, 2) pixels. Speed only: the motion's realism does not matter."""
    from types import SimpleNamespace

    from distpose_app.live.demo import DemoSource

    source = DemoSource(size=(1280, 720), draw=False)
    k = source.intrinsics
    t = np.arange(frames * sequences) / source.fps
    cam, _ = source.pose_at(t)
    seq = np.repeat(np.arange(sequences), frames)
    return SimpleNamespace(
        positions_3d=cam.astype(np.float32),
        sequence=seq,
        intrinsics=np.tile([k.fx, k.fy, k.cx, k.cy], (sequences, 1)).astype(np.float64),
        image_size=np.tile([k.width, k.height], (sequences, 1)).astype(np.float64),
    )


def training_speed(model_config: dict, settings: BenchSettings, seed: int = 0) -> dict:
    """Training throughput on the CPU for an architecture (TemporalModel(**model_config)):
    supervised steps (the `augmented` recipe: a fresh lens per window) and first-order MAML
    steps (`meta`), with TrainConfig's defaults unless `settings` shrinks the batch.

    Frames are output frames through forward and backward: batch_windows * chunk_frames per
    supervised step; tasks * (support + query windows) * chunk_frames per meta step.
    Returns {supervised: {...}, meta: {...}} with frames_per_s, step_ms and the batch.
    """
    from distpose_app.adapt.iso import select_parameters
    from distpose_app.data.lens_sampler import LensSampler
    from distpose_app.lifter.model import TemporalModel
    from distpose_app.training.loop import TrainConfig, WindowSampler, meta_step, supervised_step

    torch.manual_seed(seed)
    config = TrainConfig(mode="augmented")
    if settings.train_batch:
        config.batch_windows = settings.train_batch
    if settings.meta_tasks:
        config.tasks_per_batch = settings.meta_tasks
    model = TemporalModel(**{**model_config, "dropout": config.dropout})
    window = model.receptive_field - 1 + config.chunk_frames
    data = synthetic_training_set(frames=max(300, 4 * window))
    sampler = WindowSampler(data.positions_3d, data.sequence, data.intrinsics, data.image_size,
                            window, np.random.default_rng(seed))  # fmt: skip
    lens_sampler = LensSampler()
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, amsgrad=True)
    group = {id(p) for p in select_parameters(model, config.inner_params)}
    inner_names = [n for n, p in model.named_parameters() if id(p) in group]

    def timed(step) -> list[float]:
        out = []
        for i in range(settings.train_warmup + settings.train_steps):
            t0 = time.perf_counter()
            step()
            if i >= settings.train_warmup:
                out.append(time.perf_counter() - t0)
        return out

    sup = timed(lambda: supervised_step(model, optimiser, sampler, lens_sampler, config, window))
    met = timed(lambda: meta_step(model, optimiser, sampler, lens_sampler, config, window,
                                  inner_names))  # fmt: skip
    sup_frames = config.batch_windows * config.chunk_frames
    meta_frames = config.tasks_per_batch * (config.support_windows + config.query_windows)
    meta_frames *= config.chunk_frames
    return {
        "supervised": {
            "frames_per_s": sup_frames / float(np.median(sup)),
            "step_ms": _median_ms(sup),
            "batch_windows": config.batch_windows,
            "chunk_frames": config.chunk_frames,
        },  # fmt: skip
        "meta": {
            "frames_per_s": meta_frames / float(np.median(met)),
            "step_ms": _median_ms(met),
            "tasks_per_batch": config.tasks_per_batch,
            "windows_per_task": config.support_windows + config.query_windows,
            "chunk_frames": config.chunk_frames,
        },  # fmt: skip
    }


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
    if spec.synthetic:
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
    if spec.synthetic:
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
    return {
        "ms_per_frame": _median_ms(times),
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
    ms = _median_ms(wall)
    return {
        "ms_per_frame": ms,
        "fps": 1000.0 / ms,
        "mediapipe_ms": None if spec.synthetic else _median_ms(mp),
        "lifter_ms": _median_ms(lift),
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
    wall = []
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
    ms = _median_ms(wall)
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


# -- the whole run ----------------------------------------------------------------------------
def load_models(weights: str | None) -> tuple[str, dict]:
    """(live model name, {name: model in eval mode on the CPU}): `weights` alone when given,
    else every shipped model. Raises WeightsError when there is none."""
    from distpose_app.core.errors import WeightsError
    from distpose_app.lifter.model import available_pretrained, load_checkpoint, load_pretrained

    if weights:
        model, _ = load_checkpoint(weights, "cpu")
        return Path(weights).stem, {Path(weights).stem: model}
    live = default_live_model()
    if live is None:
        raise WeightsError(f"no shipped models in {paths.PRETRAINED_DIR}; pass --weights PATH")
    return live, {name: load_pretrained(name, "cpu")[0] for name in available_pretrained()}


def run_bench(settings: BenchSettings, weights: str | None = None, clip: str | None = None,
              device: str = "auto", shared_dir: Path | None = None) -> dict:  # fmt: skip
    """Measure everything; returns the JSON-able report (REQUIRED_KEYS plus `models`, `clips`,
    `pipeline`, `iso`, `training`, `gpu`, `targets`, `live_model`, `settings`)."""
    from distpose_app.lifter.model import resolve_device

    gpu_device = resolve_device(device)
    want_gpu = gpu_device.type == "cuda"
    live, models = load_models(weights)
    spec = resolve_clip(clip, shared_dir)
    report: dict = {"machine": machine_info("cpu"), "live_model": live,
                    "settings": asdict(settings), "clip": spec.name}  # fmt: skip

    _log(f"lifters on the CPU: {', '.join(models)}")
    report["models"] = {n: {"cpu": lifter_speed(m, "cpu", settings)} for n, m in models.items()}
    cpu = report["models"][live]["cpu"]
    report["lifter_ms_per_frame"] = cpu["stream_ms"]
    report["lifter_naive_ms_per_frame"] = cpu["naive_ms"]
    report["lifter_batch_fps"] = cpu["batch_fps"]

    model = models[live]
    detected = None
    if spec.synthetic:
        report["mediapipe_ms_per_frame"] = None
    else:
        _log(f"MediaPipe on {spec.name}")
        detected = mediapipe_pass(spec, settings)
        report["mediapipe_ms_per_frame"] = detected["ms_per_frame"]

    from distpose_app.lens.screen import normalize_screen_coordinates

    if detected is not None:
        kp, conf, size = detected["keypoints"], detected["confidence"], detected["size"]
    else:
        kp, conf, size = _demo_keypoints(settings)
    pipe: dict = {}
    if detected is not None:
        _log("live pipeline (MediaPipe + lifter) without / with background adaptations")
        first = pipeline_pass(model, spec, settings)
        buffer = _adaptable(first.pop("buffer"), model)
        pipe.update(adapt_rounds(model, spec, settings, buffer, first))
        off = pipe["without_adapt"]
        ms_off = float(np.mean([p["ms_per_frame"] for p in off]))
        mp_in = float(np.mean([p["mediapipe_ms"] for p in off]))
        # Same passes, same frames: the pipeline's wall time over its own MediaPipe stage.
        pipe["overhead_ratio"] = ms_off / mp_in - 1.0
        pipe["overhead_vs_bare_mediapipe"] = ms_off / detected["ms_per_frame"] - 1.0
    else:
        buffer = normalize_screen_coordinates(kp, *size).astype(np.float32)
    buffer = _adaptable(buffer, model)

    # Lifter-only: the 2D precomputed, so the adaptation competes with nothing but the lifter.
    _log("lifter-only pipeline without / with a background adaptation")
    lo_off = lifter_only_pass(model, kp, conf, size, settings.lifter_only_seconds)
    lo_on = lifter_only_pass(model, kp, conf, size, settings.lifter_only_seconds, buffer)
    lo_ratio = lo_off["ms_per_frame"] / lo_on["ms_per_frame"]
    pipe["lifter_only"] = {
        "without_adapt": lo_off,
        "with_adapt": lo_on,
        "adapt_fps_ratio": lo_ratio,
    }
    if detected is not None:
        pipe["source"] = f"LivePipeline.process_frame on {spec.name} (MediaPipe + lifter)"
        report["pipeline_ms_per_frame"] = ms_off
        report["pipeline_overhead_ratio"] = pipe["overhead_ratio"]
        report["adapt_fps_ratio"] = pipe["adapt_fps_ratio"]
    else:
        pipe["source"] = "LivePipeline.process_keypoints on the demo's 2D (no MediaPipe)"
        report["pipeline_ms_per_frame"] = lo_off["ms_per_frame"]
        report["pipeline_overhead_ratio"] = None
        report["adapt_fps_ratio"] = pipe["lifter_only"]["adapt_fps_ratio"]
    report["pipeline_fps"] = 1000.0 / report["pipeline_ms_per_frame"]
    report["pipeline"] = pipe

    _log("adaptation (the app's default method) on the CPU")
    report["iso"] = {n: {"cpu": iso_speed(m, buffer, "cpu", settings)} for n, m in models.items()}
    report["iso_seconds"] = report["iso"][live]["cpu"]["seconds"]
    if torch.get_num_threads() > 1:  # the remedy for thread contention on few cores
        for n, m in models.items():
            report["iso"][n]["cpu_1_thread"] = iso_speed(m, buffer, "cpu", settings, threads=1)
        report["iso_seconds_1_thread"] = report["iso"][live]["cpu_1_thread"]["seconds"]

    _log("training throughput on the CPU")
    report["training"] = training_speed(model.config, settings)
    report["train_frames_per_s"] = report["training"]["supervised"]["frames_per_s"]
    report["meta_train_frames_per_s"] = report["training"]["meta"]["frames_per_s"]

    report["clips"] = {}
    if detected is not None:
        _log(f"MediaPipe 3D vs our lifter on {spec.name}")
        report["clips"][spec.name] = compare_3d(models, detected)
        if settings.comparison_clips and clip is None:
            for name in COMPARISON_CLIPS:
                path = spec.path.parent / name
                if name != spec.name and path.is_file():
                    _log(f"MediaPipe 3D vs our lifter on {name}")
                    other = mediapipe_pass(ClipSpec(name, path), settings)
                    report["clips"][name] = compare_3d(models, other)
                    report["clips"][name]["mediapipe_ms_per_frame"] = other["ms_per_frame"]

    if want_gpu:
        _log(f"GPU: {torch.cuda.get_device_name(gpu_device)}")
        report["gpu"] = {
            "device": torch.cuda.get_device_name(gpu_device),
            "models": {n: lifter_speed(m, gpu_device, settings) for n, m in models.items()},
            "iso": {n: iso_speed(m, buffer, gpu_device, settings) for n, m in models.items()},
        }
        for n in models:
            report["models"][n]["cuda"] = report["gpu"]["models"][n]
            report["iso"][n]["cuda"] = report["gpu"]["iso"][n]
    elif torch.cuda.is_available():
        report["gpu"] = "skipped (--device cpu)"
    else:
        report["gpu"] = NO_CUDA
    report["load_average_end"] = _load_average()
    report["targets"] = check_targets(report)
    return report


def _load_average() -> float | None:
    """1-minute load average: other processes' CPU use pollutes every timing here."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


# How the background adaptation runs: as the app does, then the remedies tried for a missed
# target: (label, BackgroundAdapt options).
ADAPT_VARIANTS = (
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
    off, runs = [first], {label: [] for label, _ in variants}
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


def _adaptable(buffer: np.ndarray, model) -> np.ndarray:
    """The Adapt buffer (T, 17, 2), repeated when a short (quick) pass gave fewer frames than
    iso_adapt accepts: the speed is what is measured here, not the adaptation."""
    from distpose_app.adapt.iso import MIN_ADAPT_FRAMES

    need = max(MIN_ADAPT_FRAMES, model.receptive_field)
    if len(buffer) >= need:
        return buffer
    if len(buffer) == 0:
        return _demo_buffer()
    return np.concatenate([buffer] * -(-need // len(buffer)))


def _demo_keypoints(settings: BenchSettings):
    """(keypoints (F, 17, 2) pixels, confidence (F, 17), size) from the demo source."""
    frames = list(_frames(ClipSpec(SYNTHETIC, None), settings.clip_frames or 300))
    kp = np.stack([f.keypoints_2d for f in frames])
    return kp, np.stack([f.confidence for f in frames]), (1280, 720)


def _demo_buffer() -> np.ndarray:
    """(300, 17, 2) normalised 2D of the demo person: ISO input when a clip has none."""
    from distpose_app.lens.screen import normalize_screen_coordinates

    kp, _, size = _demo_keypoints(BenchSettings(clip_frames=300))
    return normalize_screen_coordinates(kp, *size).astype(np.float32)


def check_targets(report: dict) -> dict:
    """{key: {"value", "target" (e.g. "<= 1.0"), "met" (bool, None when unmeasured)}}."""
    out = {}
    for key, (op, bound) in TARGETS.items():
        value = report.get(key)
        met = None if value is None else (value <= bound if op == "<=" else value >= bound)
        out[key] = {"value": value, "target": f"{op} {bound:g}", "met": met}
    return out


# -- output -----------------------------------------------------------------------------------
def _f(value, fmt: str = ".2f", none: str = "—") -> str:
    return none if value is None or not np.isfinite(value) else format(value, fmt)


def markdown_report(report: dict) -> str:
    """The report as markdown tables (headline with targets, per model, pipeline, training,
    label-free comparison, GPU, machine)."""
    m = report["machine"]
    lines = [
        f"Machine: {m['processor']}, {m['cores']} cores ({m['torch_threads']} torch threads), "
        f"{m.get('memory_gib', '?')} GiB, {m['platform']}; Python {m['python']}, torch "
        f"{m['torch']}, numpy {m['numpy']}, mediapipe {m.get('mediapipe')}. Load average "
        f"(other processes) {m.get('load_average_start')} at the start, "
        f"{report.get('load_average_end')} at the end.",
        f"Live model: `{report['live_model']}`. Clip: {report['clip']}.",
        "",
        "| measure (live model, CPU) | value | target | met |",
        "|---|---|---|---|",
    ]
    t = report["targets"]

    def row(label, key, fmt, unit=""):
        target = t.get(key, {})
        met = {True: "yes", False: "**no**", None: "—"}[target.get("met")]
        value = _f(report.get(key), fmt)
        lines.append(f"| {label} | {value}{unit} | {target.get('target', '')} | {met} |")

    row("lifter, streaming (ms/frame)", "lifter_ms_per_frame", ".3f")
    row("lifter, naive whole window (ms/frame)", "lifter_naive_ms_per_frame", ".3f")
    row("lifter, offline batch (frames/s)", "lifter_batch_fps", ".0f")
    row("MediaPipe pose, video mode (ms/frame)", "mediapipe_ms_per_frame", ".1f")
    row("pipeline (frames/s)", "pipeline_fps", ".1f")
    row("pipeline overhead over MediaPipe (ratio)", "pipeline_overhead_ratio", ".3f")
    row("Adapt, default method (lens) (s)", "iso_seconds", ".2f")
    row("Adapt, default method (lens), 1 torch thread (s)", "iso_seconds_1_thread", ".2f")
    row("frame rate during adaptation / without", "adapt_fps_ratio", ".2f")
    row("supervised training (frames/s)", "train_frames_per_s", ".0f")
    row("meta-training (frames/s)", "meta_train_frames_per_s", ".0f")
    pipe = report["pipeline"]
    lo = pipe["lifter_only"]
    lines += ["", f"Pipeline measured as: {pipe['source']}."]
    if "with_adapt" in pipe:
        off = pipe["without_adapt"]
        lines.append(
            f"Full pipeline: {np.mean([p['fps'] for p in off]):.1f} frames/s without "
            f"adaptation ({len(off)} passes); its MediaPipe stage "
            f"{np.mean([p['mediapipe_ms'] for p in off]):.1f} ms, lifter stage "
            f"{np.mean([p['lifter_ms'] for p in off]):.2f} ms a frame."
        )
    lines.append(
        f"Lifter-only pipeline (2D precomputed): {lo['without_adapt']['fps']:.0f} frames/s "
        f"without, {lo['with_adapt']['fps']:.0f} during adaptation (ratio "
        f"{lo['adapt_fps_ratio']:.2f}; {lo['with_adapt']['adaptations']} adaptations)."
    )
    if "with_adapt" in pipe:
        lines += ["", "| Adapt in the background | frames/s | ratio (median) | ratio per round "
                  "| adaptations done | s each |", "|---|---|---|---|---|---|"]  # fmt: skip
        for v in [pipe["with_adapt"], *pipe.get("variants", [])]:
            per_round = ", ".join(f"{r:.2f}" for r in v["ratios"])
            lines.append(
                f"| {v['label']} | {v['fps_with']:.1f} | {v['adapt_fps_ratio']:.2f} | "
                f"{per_round} | {v['adaptations']} | {_f(v['adapt_seconds'])} |"
            )
    lines += [
        "",
        "| model | device | RF | channels | streaming ms/frame | naive ms/frame | naive/stream "
        "| batch frames/s | Adapt s | Adapt s, 1 thread |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, per_device in report["models"].items():
        for dev, r in per_device.items():
            iso = report["iso"].get(name, {})
            one = iso.get("cpu_1_thread", {}).get("seconds") if dev == "cpu" else None
            lines.append(
                f"| {name} | {dev} | {r['receptive_field']} | {r['channels']} | "
                f"{r['stream_ms']:.3f} | {r['naive_ms']:.3f} | {r['naive_over_stream']:.1f}x | "
                f"{r['batch_fps']:.0f} | {_f(iso.get(dev, {}).get('seconds'))} | {_f(one)} |"
            )
    tr = report["training"]
    lines += [
        "",
        "| training step (CPU) | frames/s | ms/step | batch |",
        "|---|---|---|---|",
        f"| supervised (augmented) | {tr['supervised']['frames_per_s']:.0f} | "
        f"{tr['supervised']['step_ms']:.0f} | {tr['supervised']['batch_windows']} windows x "
        f"{tr['supervised']['chunk_frames']} frames |",
        f"| meta (first-order MAML) | {tr['meta']['frames_per_s']:.0f} | "
        f"{tr['meta']['step_ms']:.0f} | {tr['meta']['tasks_per_batch']} tasks x "
        f"{tr['meta']['windows_per_task']} windows x {tr['meta']['chunk_frames']} frames |",
    ]
    if report["clips"]:
        lines += [
            "",
            "| clip | 3D from | frames | symmetry mm | consistency mm | consistency % "
            "| jitter m/s² | mean bone mm |",
            "|---|---|---|---|---|---|---|---|",
        ]
        notes = []
        for clip, comp in report["clips"].items():
            if comp["basis"] != "common frames":
                have = ", ".join(f"{k} {v}" for k, v in comp["frames_with_pose"].items())
                notes.append(f"{clip}: {comp['basis']}; frames with a pose of {comp['frames']}: "
                             f"{have}.")  # fmt: skip
            for source, s in comp.items():
                if source in ("basis", "frames_with_pose") or not isinstance(s, dict):
                    continue
                label = "MediaPipe world landmarks" if source == "mediapipe" else f"ours: {source}"
                lines.append(
                    f"| {clip} | {label} | {s['frames']} | {_f(s.get('symmetry_mm'), '.1f')} | "
                    f"{_f(s.get('consistency_mm'), '.1f')} | "
                    f"{_f(s.get('consistency_pct'), '.1f')} | {_f(s.get('jitter_m_s2'), '.2f')} "
                    f"| {_f(s.get('mean_bone_mm'), '.0f')} |"
                )
        lines += [""] + notes if notes else []
    else:
        lines += ["", "MediaPipe 3D comparison: skipped (no real clip; synthetic source)."]
    gpu = report["gpu"]
    lines += ["", f"GPU: {gpu if isinstance(gpu, str) else gpu['device']}"]
    return "\n".join(lines) + "\n"


def report_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=to_jsonable) + "\n"
