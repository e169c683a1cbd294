"""`export_recording`: clean a Recording up (gaps, One Euro, world alignment, rigid bones) and
write BVH and/or CSV files, each with a JSON sidecar."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from distpose_app import __version__
from distpose_app.core.errors import DistposeError
from distpose_app.core.skeleton import BONE_NAMES, JOINT_NAMES, PARENTS

from . import skeleton_fit as fit
from .bvh_writer import BVH_JOINT_NAMES, bvh_text
from .csv_writer import csv_text
from .filters import one_euro_filter
from .recording import UNIT_SCALES, ExportOptions, Recording, write_atomic, write_sidecar
from .targets import ExistingFilesError, check_targets

AXES = {
    "X": "subject's left when facing the camera (the camera's x, image right)",
    "Y": "up (minus the camera's y)",
    "Z": "towards the camera: a subject facing the camera faces +Z",
}


@dataclass
class Motion:
    """A cleaned-up recording, ready to write.

    positions: (F, 17, 3) metres, world axes, finite (long gaps hold the last pose).
    csv_positions: (F, 17, 3) metres, NaN on frames kept as gaps.
    rotations: (F, 17, 3, 3) world rotations of the fitted skeleton.
    bone_lengths: (16,) metres. rest_directions: (17, 3) unit (`fit.torso_directions`).
    frame_time_s: seconds (median timestamp difference).
    valid / interpolated / gap: (F,) bool: tracked frames, filled short gaps, kept gaps.
    camera_to_world: (3, 3) rotation; translation_m: (3,) (per-frame root lock not included).
    """

    positions: np.ndarray
    csv_positions: np.ndarray
    rotations: np.ndarray
    bone_lengths: np.ndarray
    rest_directions: np.ndarray
    frame_time_s: float
    valid: np.ndarray
    interpolated: np.ndarray
    gap: np.ndarray
    camera_to_world: np.ndarray
    translation_m: np.ndarray


def prepare_motion(recording: Recording, options: ExportOptions | None = None) -> Motion:
    """Apply the clean-up options to a recording (see docs/export.md for the order)."""
    options = options or ExportOptions()
    options.validate()
    t = recording.timestamps_s
    P = fit.camera_to_world(recording.positions)
    valid = fit.valid_frames(P, recording.tracked)
    P = np.where(valid[:, None, None], P, np.nan)
    P, interpolated = fit.fill_short_gaps(P, t, valid, options.max_gap_s)
    present = valid | interpolated
    if options.one_euro:
        P = one_euro_filter(
            P, t, options.min_cutoff_hz, options.beta, options.d_cutoff_hz, valid=present
        )
    A = fit.upright_rotation(P, present) if options.align_world else np.eye(3)
    P = P @ A.T
    lengths = fit.robust_bone_lengths(P, present)
    directions = fit.torso_directions(P, present)
    held = fit.hold_gaps(P, present)
    if not present.any():  # nobody was ever tracked: a standing T-pose keeps the file valid
        held = np.broadcast_to(fit.rest_pose(lengths), P.shape).copy()
    fitted, rotations = fit.fit_skeleton(held, lengths, directions)
    csv_positions = fitted if options.rigid else fit.hold_gaps(P, present)
    shift = np.zeros(3)
    if options.align_world and present.any():
        feet = fitted[present][:, list(fit.FEET), 1]
        shift[1] = -feet.min()
        shift[[0, 2]] = -fitted[present][:, 0, [0, 2]].mean(axis=0)
    fitted = fitted + shift
    csv_positions = csv_positions + shift
    if options.root_lock:
        drift = fitted[:, :1].copy()
        drift[..., 1] = 0.0  # height kept: jumps and squats still move the hips
        fitted, csv_positions = fitted - drift, csv_positions - drift
    csv_positions = np.where(present[:, None, None], csv_positions, np.nan)
    return Motion(
        positions=fitted,
        csv_positions=csv_positions,
        rotations=rotations,
        bone_lengths=lengths,
        rest_directions=directions,
        frame_time_s=fit.median_frame_time(t),
        valid=valid,
        interpolated=interpolated,
        gap=~present,
        camera_to_world=A @ np.diag([1.0, -1.0, -1.0]),
        translation_m=shift,
    )


def sidecar_info(
    recording: Recording, motion: Motion, options: ExportOptions, fmt: str, path: Path
) -> dict:
    """The JSON sidecar's content for one exported file (fmt "bvh" or "csv")."""
    meta = recording.metadata or {}
    F = recording.num_frames
    lens = meta.get("lens") or {"state": "unadapted"}
    info = {
        "format": fmt,
        "file": path.name,
        "distpose_version": __version__,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "units": options.units if fmt == "bvh" else "m",
        "angle_units": "deg" if fmt == "bvh" else None,
        "axes": AXES,
        "up_axis": "+Y",
        "forward_axis": "+Z",
        "frame_rate_hz": 1.0 / motion.frame_time_s,
        "frame_time_s": motion.frame_time_s,
        "frames": F,
        "duration_s": float(recording.timestamps_s[-1] - recording.timestamps_s[0]) if F else 0,
        "skeleton": {
            "names": list(BVH_JOINT_NAMES),
            "h36m_names": list(JOINT_NAMES),
            "parents": list(PARENTS),
            "bone_lengths_m": dict(zip(BONE_NAMES, np.round(motion.bone_lengths, 6).tolist())),
        },
        "source": meta.get("source", "unknown"),
        "lens": lens,
        "model": meta.get("model", {"name": "unknown", "version": "unknown"}),
        "options": options.to_dict(),
        "world": {
            "rotation_from_camera": np.round(motion.camera_to_world, 9).tolist(),
            "translation_m": np.round(motion.translation_m, 9).tolist(),
            "root_locked": options.root_lock,
        },
        "frames_summary": {
            "tracked": int(motion.valid.sum()),
            "interpolated": int(motion.interpolated.sum()),
            "gaps": int(motion.gap.sum()),
        },
    }
    info["seen"] = seen_summary(recording, fmt)
    if fmt == "bvh":
        info["channel_order"] = options.channel_order
        info["gap_handling"] = "gaps longer than max_gap_s hold the last tracked pose"
    else:
        info["gap_handling"] = (
            "gaps longer than max_gap_s have tracked=0, interpolated=0 and empty position cells"
        )
    return info


def seen_summary(recording: Recording, fmt: str) -> dict:
    """The sidecar's "seen" entry: what the per-joint seen flags mean, where the file keeps them
    (fmt "csv": the <joint>_seen columns; "bvh": nowhere, the format has no place for them)
    and, per joint (BVH names), the fraction of tracked frames in which it was seen."""
    tracked = recording.tracked
    n = int(tracked.sum())
    fraction = recording.seen[tracked].mean(axis=0) if n else np.zeros(len(BVH_JOINT_NAMES))
    info = {
        "meaning": (
            "a joint is seen in a frame when the 2D detector found it inside the image with a "
            "confidence of at least the pipeline's threshold (0.5 by default); the lifter "
            "still estimates unseen joints from the seen ones, so their positions are guesses"
        ),
        "fraction_of_tracked_frames": dict(zip(BVH_JOINT_NAMES, np.round(fraction, 4).tolist())),
        "tracked_frames": n,
    }
    if fmt == "csv":
        info["columns"] = "<joint>_seen: 1 seen, 0 unseen (0 on untracked and interpolated rows)"
    else:
        info["columns"] = None
        info["note"] = (
            "BVH cannot carry per-joint flags: unseen joints are animated like seen ones; "
            "export a CSV too to keep the flags"
        )
    return info


def export_recording(
    recording: Recording,
    bvh_path: str | os.PathLike | None = None,
    csv_path: str | os.PathLike | None = None,
    options: ExportOptions | None = None,
    progress: Callable[[float, str], None] | None = None,
    inputs: Iterable[str | os.PathLike | None] = (),
    overwrite: bool = False,
) -> dict:
    """Clean up `recording` and write a BVH and/or a CSV file, each with `<file>.json` beside it.

    Files are written atomically: a failure never leaves a partial file under the chosen name.
    progress: optional callback (fraction in [0, 1], message). inputs: the files the take came
    from (video, weights, calibration, recovery file), which are never written. overwrite: replace
    existing files (False: ExistingFilesError naming them; the CLI's --force, or the app after
    asking through `targets.existing_targets`). Raises DistposeError for bad options, an empty
    recording, a missing / unwritable folder, two outputs on one path (sidecars included) or an
    output on an input (naming the path).
    Returns {"bvh", "bvh_sidecar", "csv", "csv_sidecar": Path or None, "frames": int,
    "frame_time_s": float, "bone_lengths_m": (16,) array, "interpolated_frames": int,
    "gap_frames": int}.
    """
    options = options or ExportOptions()
    options.validate()
    report = progress or (lambda fraction, message: None)
    if bvh_path is None and csv_path is None:
        raise DistposeError("nothing to export: give a BVH path, a CSV path, or both")
    existing = check_targets(bvh_path, csv_path, inputs)
    if existing and not overwrite:
        raise ExistingFilesError(existing)
    bvh_target = None if bvh_path is None else Path(bvh_path)
    csv_target = None if csv_path is None else Path(csv_path)
    if recording.num_frames == 0:
        raise DistposeError("the recording has no frames to export")
    report(0.0, "cleaning up")
    motion = prepare_motion(recording, options)
    result = {"bvh": None, "bvh_sidecar": None, "csv": None, "csv_sidecar": None}
    if bvh_target is not None:
        report(0.4, f"writing {bvh_target.name}")
        text = bvh_text(
            motion.positions,
            motion.rotations,
            motion.bone_lengths,
            motion.frame_time_s,
            motion.rest_directions,
            options.channel_order,
            UNIT_SCALES[options.units],
        )
        result["bvh"] = write_atomic(bvh_target, text)
        info = sidecar_info(recording, motion, options, "bvh", bvh_target)
        result["bvh_sidecar"] = write_sidecar(bvh_target, info)
    if csv_target is not None:
        report(0.7, f"writing {csv_target.name}")
        text = csv_text(
            motion.csv_positions,
            recording.timestamps_s,
            recording.confidence,
            motion.valid,
            motion.interpolated,
            recording.seen & motion.valid[:, None],
        )
        result["csv"] = write_atomic(csv_target, text)
        info = sidecar_info(recording, motion, options, "csv", csv_target)
        result["csv_sidecar"] = write_sidecar(csv_target, info)
    report(1.0, "done")
    result.update(
        frames=recording.num_frames,
        frame_time_s=motion.frame_time_s,
        bone_lengths_m=motion.bone_lengths,
        interpolated_frames=int(motion.interpolated.sum()),
        gap_frames=int(motion.gap.sum()),
    )
    return result
