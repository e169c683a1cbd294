"""Speed of the stages without a clip: the lifter (streaming vs naive, offline batch), the app's
Adapt (in the foreground, or on a background thread as the GUI runs it), and training steps."""

from __future__ import annotations

import copy
import threading
import time

import numpy as np
import torch

from distpose_app.adapt.iso import BACKGROUND_NICE, BACKGROUND_THREADS
from distpose_app.bench.common import BenchSettings, median_ms, sync_device
from distpose_app.core.skeleton import NUM_JOINTS


# -- lifter -----------------------------------------------------------------------------------
def lifter_speed(model, device: str | torch.device, settings: BenchSettings, seed: int = 0) -> dict:
    """Per-frame latency of StreamingLifter vs NaiveLifter (pushes interleaved, so both see the
    same load), and offline batch throughput of the whole network (lifter.inference.lift_sequence).

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
    times: dict[str, list[float]] = {"stream": [], "naive": []}
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
    stream_ms, naive_ms = median_ms(times["stream"]), median_ms(times["naive"])
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
    """Wall time of the app's Adapt (`adapt.adapt_model` with its default method, the lens fit)
    on `device`.

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
            sync_device(device)
            t0 = time.perf_counter()
            result = adapt_model(model, keypoints_2d)
            sync_device(device)
            if i >= settings.iso_warmup:
                seconds.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    assert result is not None  # iso_warmup + iso_repeats >= 1 runs
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
    from distpose_app.training.loop import TrainConfig, meta_step, supervised_step
    from distpose_app.training.windows import WindowSampler

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
            "step_ms": median_ms(sup),
            "batch_windows": config.batch_windows,
            "chunk_frames": config.chunk_frames,
        },  # fmt: skip
        "meta": {
            "frames_per_s": meta_frames / float(np.median(met)),
            "step_ms": median_ms(met),
            "tasks_per_batch": config.tasks_per_batch,
            "windows_per_task": config.support_windows + config.query_windows,
            "chunk_frames": config.chunk_frames,
        },  # fmt: skip
    }
