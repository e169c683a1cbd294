"""`distpose process INPUT`: the live pipeline without a window over a video file (or a camera),
optionally adapting to the unknown lens first (ISO on the whole input's 2D), writing BVH / CSV.

Two passes: MediaPipe runs once over the input and its 2D is kept (no images); then the 2D is
lifted, after an optional adaptation on all of it. Lifting is cheap next to detection. The lifter
runs at its own frame rate (lifter.MODEL_FPS): the 2D of a video at another rate is resampled
to it, and the lifted motion back to the video's frames, so that the exports have one row per
video frame on the video's clock. Root motion is on (the body placed where the camera saw it);
--root-lock exports it in place. Joints
the camera did not see follow the live pipeline's rules (live/tracking.py): the CSV's <joint>_seen
columns flag them, and the log names the joints seen in fewer than half the tracked frames.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from distpose_app.core import validate as v

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT", help="video file, or a camera index (0, 1, ...)")
    parser.add_argument(
        "--adapt",
        nargs="?",
        const="lens",
        choices=("lens", "bn", "weights", "lens+bn"),
        help="adapt to the unknown lens first, on the whole input's 2D: lens (the default "
        "when METHOD is left out: fit an undistortion in front of the lifter), bn or weights "
        "(the paper's ISO on batch norm or all weights), lens+bn",
    )
    parser.add_argument("--bvh", metavar="OUT", help="write the motion as BVH")
    parser.add_argument("--csv", metavar="OUT", help="write the joints as CSV (one row a frame)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace --bvh / --csv files (and their .json sidecars) that already exist",
    )
    parser.add_argument(
        "--device", default="auto", help="lifter device: auto (default), cpu or cuda"
    )
    parser.add_argument(
        "--weights", metavar="PATH", help="lifter checkpoint (default: the shipped live model)"
    )
    parser.add_argument(
        "--lens",
        metavar="SPEC",
        help="the camera's known lens (undistorts the 2D before lifting), e.g. brown:-0.2,0.05",
    )
    parser.add_argument(
        "--hfov",
        type=v.hfov_degrees,
        default=70.0,
        help="horizontal field of view, degrees (default 70): sets how far away the person is "
        "(the root trajectory) and, with --lens, the undistortion",
    )
    parser.add_argument(
        "--frames",
        type=v.positive_int,
        metavar="N",
        help="process at most N frames (a camera: required)",
    )
    parser.add_argument(
        "--root-lock",
        action="store_true",
        help="export the motion in place: the root stays above the origin (height kept); by "
        "default the root travels as the person did in front of the camera",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _log(message: str) -> None:
    print(f"distpose process: {message}", file=sys.stderr)


def detect_all(source, frames: int | None, quiet: bool = False, pictures=None):
    """Pass 1: MediaPipe over `source` (opened here, closed at the end). pictures: a
    `lens.plumb_line.PictureSampler` offered every frame (for Adapt's straight-edge check).

    Returns (keypoints (F, 17, 2) pixels NaN where no person, confidence (F, 17), timestamps_s
    (F,), timings {"capture": s, "mediapipe": s} totals, error: SourceError | None (the input
    failed part-way, e.g. a truncated file; the frames before it are kept))."""
    import numpy as np

    from distpose_app.core.progress import Progress
    from distpose_app.core.skeleton import NUM_JOINTS
    from distpose_app.live.capture import SourceError
    from distpose_app.live.detect import PoseDetector

    source.open()
    total = getattr(source, "frame_count", 0) or 0
    if frames is not None:
        total = min(total, frames) if total else frames
    keypoints: list[np.ndarray | None] = []
    confidence: list[np.ndarray] = []
    timestamps: list[float] = []
    timings = {"capture": 0.0, "mediapipe": 0.0}
    error = None
    try:
        with (
            PoseDetector(static_image_mode=False) as detector,
            Progress(total, "detecting", enabled=not quiet) as bar,
        ):
            while frames is None or len(timestamps) < frames:
                t = time.perf_counter()
                try:
                    frame = source.read()
                except SourceError as exc:
                    error = exc
                    break
                if frame is None:
                    if source.is_live:
                        error = SourceError(f"{source.name} stopped delivering frames")
                    break
                t1 = time.perf_counter()
                if pictures is not None:
                    pictures.offer(frame.image)
                detection = detector.detect(frame.image)
                t2 = time.perf_counter()
                timings["capture"] += t1 - t
                timings["mediapipe"] += t2 - t1
                if detection is None:
                    keypoints.append(np.full((NUM_JOINTS, 2), np.nan))
                    confidence.append(np.zeros(NUM_JOINTS))
                else:
                    keypoints.append(detection.keypoints_2d)
                    confidence.append(detection.confidence)
                timestamps.append(frame.timestamp_s)
                bar.update(1, postfix=f"{1000 * (t2 - t1):.0f} ms/frame")
    finally:
        source.close()
    shape = (len(timestamps), NUM_JOINTS)
    return (
        np.array(keypoints, dtype=np.float64).reshape(shape + (2,)),
        np.array(confidence, dtype=np.float64).reshape(shape),
        np.array(timestamps, dtype=np.float64),
        timings,
        error,
    )


def to_lifter_rate(keypoints, confidence, timestamps):
    """The detected 2D at the lifter's frame rate: (keypoints (T, 17, 2) pixels NaN where
    unseen, confidence (T, 17), times (T,) s, source rate Hz). A source at the lifter's rate
    (within 1 %) is returned as it is; otherwise the 2D is interpolated at MODEL_FPS from the
    first frame's time on (a joint between a seen and an unseen frame takes the nearer)."""
    import numpy as np

    from distpose_app.core.timing import frame_rate, grid_times, interpolate_at, same_rate
    from distpose_app.lifter import MODEL_FPS

    rate = frame_rate(timestamps, default=MODEL_FPS)
    if len(timestamps) < 2 or same_rate(rate, MODEL_FPS):
        return keypoints, confidence, timestamps, rate
    times = grid_times(timestamps[0], timestamps[-1], MODEL_FPS)
    seen = np.isfinite(keypoints).all(-1)
    kp, ok = interpolate_at(keypoints, seen, timestamps, times)
    conf, _ = interpolate_at(np.where(seen, confidence, 0.0), seen, timestamps, times)
    return kp, np.where(ok, conf, 0.0), times, rate


def lift_all(pipeline, keypoints, confidence, timestamps):
    """Pass 2: every frame's 2D through `pipeline` (recording), then flush the lookahead.
    Returns the Recording (one row per input frame)."""
    import numpy as np

    pipeline.reset()
    pipeline.recorder.start(pipeline.recorder.metadata)
    for i in range(len(timestamps)):
        kp = keypoints[i] if np.isfinite(keypoints[i]).any() else None
        pipeline.process_keypoints(kp, confidence[i], timestamps[i], i)
    pipeline.flush()
    return pipeline.recorder.stop()


def rarely_seen(recording, share: float = 0.5) -> list[str]:
    """H36M names of the joints seen in fewer than `share` of the recording's tracked frames."""
    from distpose_app.core.skeleton import JOINT_NAMES

    tracked = recording.tracked
    if not tracked.any():
        return []
    fraction = recording.seen[tracked].mean(axis=0)
    return [name for name, f in zip(JOINT_NAMES, fraction) if f < share]


def _check_outputs(args: argparse.Namespace, inputs: list) -> None:
    from distpose_app.core.errors import DistposeError
    from distpose_app.export.targets import ExistingFilesError, check_targets

    existing = check_targets(args.bvh, args.csv, inputs)
    if existing and not args.force:
        raise DistposeError(f"{ExistingFilesError(existing)}; give --force to replace")


def run(args: argparse.Namespace) -> int:
    from distpose_app.core.errors import DistposeError

    if args.frames is not None and args.frames < 1:
        raise DistposeError(f"--frames must be at least 1, got {args.frames}")
    is_camera = args.input.strip().isdigit()
    if is_camera and args.frames is None:
        raise DistposeError("a camera needs --frames N (how many frames to capture)")
    if args.weights:
        v.check_input_file(args.weights, "--weights")
    # Outputs are checked before hours of work: never onto the input, never two on one path,
    # never over an existing file without --force.
    inputs = ([] if is_camera else [args.input]) + [args.weights]
    _check_outputs(args, inputs)

    from distpose_app.lens.strings import parse_lens
    from distpose_app.live.capture import open_source

    # Cheap checks first, so a typo fails in a second, before torch and MediaPipe load.
    known_lens = parse_lens(args.lens, max_radius=None) if args.lens else None
    source = open_source(args.input)
    source.open()  # a missing, empty or broken video is reported here, naming the file

    import numpy as np
    import torch

    from distpose_app.lifter.model import (
        DEFAULT_LIVE_MODEL,
        load_checkpoint,
        load_pretrained,
        resolve_device,
    )
    from distpose_app.live.pipeline import LivePipeline

    torch.set_num_threads(min(torch.get_num_threads(), 4))
    try:
        device = resolve_device(args.device)
        if args.weights:
            model, meta = load_checkpoint(args.weights, device)
            model_name = Path(args.weights).stem
        else:
            model, meta = load_pretrained(DEFAULT_LIVE_MODEL, device)
            model_name = DEFAULT_LIVE_MODEL
    except BaseException:
        source.close()
        raise
    log.info("%s: %dx%d at %g fps; lifter %s on %s", args.input, *source.size, source.fps,
             model_name, device)  # fmt: skip

    from distpose_app.lens.plumb_line import PictureSampler

    # frames spread over the input for Adapt's straight-edge check; a known lens needs none
    pictures = PictureSampler(keep=8, every=15, recent=False)
    keypoints, confidence, timestamps, det_times, error = detect_all(
        source, args.frames, args.quiet, pictures if args.adapt and not known_lens else None
    )
    n = len(timestamps)
    if n == 0:
        raise error or DistposeError(f"{args.input}: no frames could be read")
    found = int((keypoints == keypoints).all(-1).any(-1).sum())  # NaN != NaN: no person
    log.info("detected %d frames, %d with a person", n, found)
    from distpose_app.export import ExportOptions, resample_recording
    from distpose_app.lifter import MODEL_FPS

    # the detections stay at the source's rate; what the lifter sees is at its own
    lift_kp, lift_conf, lift_t, source_fps = to_lifter_rate(keypoints, confidence, timestamps)
    resampled = lift_t is not timestamps

    pipeline = LivePipeline(
        model, str(device), size=source.size, known_lens=known_lens, hfov_deg=args.hfov,
        buffer_frames=n,
    )  # fmt: skip
    pipeline.recorder.recovery_dir = None  # offline: the input itself is the backup
    adaptation = None
    if args.adapt:
        from distpose_app.adapt import adapt_model, adaptation_message
        from distpose_app.core.progress import Progress

        lift_all(pipeline, lift_kp, lift_conf, lift_t)  # fills the Adapt buffer
        buffer = pipeline.adapt_buffer()
        try:
            with Progress(1, "adapting", enabled=not args.quiet) as bar:

                def step(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                # a camera's whole picture is centred on its lens: no centre shifts tried
                result = adapt_model(pipeline.model_copy(), buffer, args.adapt, progress=step,
                                     pictures=pictures.pictures(),
                                     whole_picture=is_camera)  # fmt: skip
        except DistposeError as exc:
            _log(f"not adapted, nothing changed: {exc}")
        else:
            adaptation = result.summary()
            b, a = result.before, result.after
            _log(adaptation_message(result))
            _log(
                f"skeleton: left/right symmetry {b['symmetry_mm']:.1f} -> "
                f"{a['symmetry_mm']:.1f} mm, bone-length constancy {b['consistency_pct']:.1f} "
                f"-> {a['consistency_pct']:.1f} %"
            )
            if result.accepted:
                pipeline.set_model_state(result.state_dict)

    pipeline.recorder.metadata = {
        "source": str(args.input),
        "lens": {
            "state": "known" if known_lens else ("adapted" if pipeline.is_adapted else "unadapted"),
            "known": known_lens.spec() if known_lens else None,
            "adaptation": adaptation,
        },
        "model": {"name": model_name, "version": meta.get("version", meta.get("created", ""))},
        "timing": {
            "source_frame_rate_hz": source_fps,
            "lifter_frame_rate_hz": MODEL_FPS,
            "resampled": bool(resampled),
        },
    }
    pipeline.stats.reset()
    recording = lift_all(pipeline, lift_kp, lift_conf, lift_t)
    if resampled:  # back to one row per source frame, on the source's clock
        recording = resample_recording(recording, timestamps)
    lifter = pipeline.stats.summary().get("lifter", {"mean_ms": float("nan")})
    tracked = int(np.count_nonzero(recording.tracked))
    _log(
        f"{n} frames, {tracked} with a person; per frame: capture "
        f"{1000 * det_times['capture'] / n:.1f} ms, mediapipe "
        f"{1000 * det_times['mediapipe'] / n:.1f} ms, lifter {lifter['mean_ms']:.2f} ms "
        f"({device.type})"
    )
    unseen = rarely_seen(recording)
    if unseen:
        _log(f"seen in under half the tracked frames (estimated, flagged): {', '.join(unseen)}")
    if args.bvh or args.csv:
        from distpose_app.export import export_recording

        options = ExportOptions(root_lock=args.root_lock)
        if args.bvh and tracked == 0:
            _log("warning: no person found: no BVH written")
        written = export_recording(
            recording, args.bvh if tracked else None, args.csv, options, inputs=inputs,
            overwrite=args.force,
        ) if (args.csv or tracked) else {}  # fmt: skip
        for key in ("bvh", "csv"):
            if written.get(key):
                _log(f"wrote {written[key]}")
    if error is not None:
        raise DistposeError(f"{error} (the {n} frames before it were processed and exported)")
    return 0
