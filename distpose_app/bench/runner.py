"""The whole `distpose bench` run (`run_bench`): every stage's speed on this machine, and
MediaPipe's own 3D beside our lifter by label-free statistics.

Conventions: times are medians of per-call wall times (time.perf_counter) after warm-up calls;
the ratios that matter (streaming vs naive lifter, pipeline vs MediaPipe, frame rate with vs
without a background adaptation) are measured in one run, interleaved or back to back, so that
load from other processes affects both sides alike. The top-level JSON keys (REQUIRED_KEYS) are
for the default live model on the CPU; `models`, `clips`, `training`, `gpu` hold the rest.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from distpose_app.bench.clips import (
    COMPARISON_CLIPS,
    ClipSpec,
    adapt_rounds,
    adaptable_buffer,
    compare_3d,
    demo_keypoints,
    lifter_only_pass,
    mediapipe_pass,
    pipeline_pass,
    resolve_clip,
)
from distpose_app.bench.common import BenchSettings, load_average, log, machine_info
from distpose_app.bench.report import check_targets
from distpose_app.bench.speed import iso_speed, lifter_speed, training_speed
from distpose_app.core import paths

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
# The live model: meta-trained when shipped, else the lens-augmented one.
LIVE_MODEL_ORDER = ("meta", "augmented")
NO_CUDA = "unmeasured (no CUDA device)"


def default_live_model(pretrained_dir: Path | None = None) -> str | None:
    """Name of the live model in pretrained/ (LIVE_MODEL_ORDER first, else the first shipped
    one), or None when none is shipped."""
    folder = Path(pretrained_dir or paths.PRETRAINED_DIR)
    names = sorted(p.stem for p in folder.glob("*.pt"))
    for name in LIVE_MODEL_ORDER:
        if name in names:
            return name
    return names[0] if names else None


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

    log(f"lifters on the CPU: {', '.join(models)}")
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
        log(f"MediaPipe on {spec.name}")
        detected = mediapipe_pass(spec, settings)
        report["mediapipe_ms_per_frame"] = detected["ms_per_frame"]

    from distpose_app.lens.screen import normalize_screen_coordinates

    if detected is not None:
        kp, conf, size = detected["keypoints"], detected["confidence"], detected["size"]
    else:
        kp, conf, size = demo_keypoints(settings)
    pipe: dict = {}
    if detected is not None:
        log("live pipeline (MediaPipe + lifter) without / with background adaptations")
        first = pipeline_pass(model, spec, settings)
        buffer = adaptable_buffer(first.pop("buffer"), model)
        pipe.update(adapt_rounds(model, spec, settings, buffer, first))
        off = pipe["without_adapt"]
        ms_off = float(np.mean([p["ms_per_frame"] for p in off]))
        mp_in = float(np.mean([p["mediapipe_ms"] for p in off]))
        # Same passes, same frames: the pipeline's wall time over its own MediaPipe stage.
        pipe["overhead_ratio"] = ms_off / mp_in - 1.0
        pipe["overhead_vs_bare_mediapipe"] = ms_off / detected["ms_per_frame"] - 1.0
    else:
        buffer = normalize_screen_coordinates(kp, *size).astype(np.float32)
    buffer = adaptable_buffer(buffer, model)

    # Lifter-only: the 2D precomputed, so the adaptation competes with nothing but the lifter.
    log("lifter-only pipeline without / with a background adaptation")
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

    log("adaptation (the app's default method) on the CPU")
    report["iso"] = {n: {"cpu": iso_speed(m, buffer, "cpu", settings)} for n, m in models.items()}
    report["iso_seconds"] = report["iso"][live]["cpu"]["seconds"]
    if torch.get_num_threads() > 1:  # the remedy for thread contention on few cores
        for n, m in models.items():
            report["iso"][n]["cpu_1_thread"] = iso_speed(m, buffer, "cpu", settings, threads=1)
        report["iso_seconds_1_thread"] = report["iso"][live]["cpu_1_thread"]["seconds"]

    log("training throughput on the CPU")
    report["training"] = training_speed(model.config, settings)
    report["train_frames_per_s"] = report["training"]["supervised"]["frames_per_s"]
    report["meta_train_frames_per_s"] = report["training"]["meta"]["frames_per_s"]

    report["clips"] = {}
    if detected is not None:
        log(f"MediaPipe 3D vs our lifter on {spec.name}")
        report["clips"][spec.name] = compare_3d(models, detected)
        if settings.comparison_clips and clip is None and spec.path is not None:
            for name in COMPARISON_CLIPS:
                path = spec.path.parent / name
                if name != spec.name and path.is_file():
                    log(f"MediaPipe 3D vs our lifter on {name}")
                    other = mediapipe_pass(ClipSpec(name, path), settings)
                    report["clips"][name] = compare_3d(models, other)
                    report["clips"][name]["mediapipe_ms_per_frame"] = other["ms_per_frame"]

    if want_gpu:
        log(f"GPU: {torch.cuda.get_device_name(gpu_device)}")
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
    report["load_average_end"] = load_average()
    report["targets"] = check_targets(report)
    return report
