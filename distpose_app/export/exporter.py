"""`export_recording`: clean a Recording up (`motion.prepare_motion`: gaps, One Euro, root
trajectory, world frame on the floor, rigid bones, planted feet) and write BVH and/or CSV files,
each with a JSON sidecar."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from distpose_app import __version__
from distpose_app.core.errors import DistposeError
from distpose_app.core.fileio import write_atomic
from distpose_app.core.skeleton import BONE_NAMES, JOINT_NAMES, PARENTS

from .bvh_writer import BVH_JOINT_NAMES, bvh_text
from .csv_writer import csv_text
from .motion import Motion, prepare_motion
from .recording import UNIT_SCALES, ExportOptions, Recording, write_sidecar
from .targets import ExistingFilesError, check_targets

AXES = {
    "X": "subject's left when facing the camera (the camera's x made horizontal, image right)",
    "Y": "up (the floor's normal; minus the camera's y without world alignment)",
    "Z": "towards the camera, horizontal: a subject facing the camera faces +Z",
}


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
        "world": world_info(motion, options),
        "timing": timing_info(recording, motion),
        "frames_summary": {
            "tracked": int(motion.valid.sum()),
            "interpolated": int(motion.interpolated.sum()),
            "gaps": int(motion.gap.sum()),
        },
    }
    info["seen"] = seen_summary(recording, fmt)
    info["contacts"] = contacts_summary(motion, fmt)
    if fmt == "bvh":
        info["channel_order"] = options.channel_order
        info["gap_handling"] = "gaps longer than max_gap_s hold the last tracked pose"
    else:
        info["gap_handling"] = (
            "gaps longer than max_gap_s have tracked=0, interpolated=0 and empty position cells"
        )
    return info


def world_info(motion: Motion, options: ExportOptions) -> dict:
    """The sidecar's "world" entry: the transform from camera space, where the camera stands,
    whether the root travels, and why not when it does not."""
    info = {
        "rotation_from_camera": np.round(motion.camera_to_world, 9).tolist(),
        "translation_m": np.round(motion.translation_m, 9).tolist(),
        "meaning": "world = rotation_from_camera @ camera_point + translation_m (metres), "
        "before the root lock",
        "root_locked": motion.root_locked,
        "root_motion": (
            "the root travels as the person did in front of the camera"
            if not motion.root_locked
            else "locked by the root_lock option: motion in place, height kept"
            if motion.has_trajectory
            else "none: the recording is root-relative (no trajectory), so motion is in place"
        ),
        "feet_planted": motion.feet_planted,
    }
    if motion.world is not None:
        info["floor"] = (
            "Y = 0 at the planted ankles (median; the lower ankle's when few are planted); the "
            "origin lies on "
            "it below the camera, which looks towards -Z"
        )
        info["camera"] = motion.world.camera_info()
    else:
        info["floor"] = None
        info["camera"] = {"position_m": [0.0, 0.0, 0.0], "note": "camera axes, no alignment"}
    return info


def timing_info(recording: Recording, motion: Motion) -> dict:
    """The sidecar's "timing" entry: the frames' rate and clock, the source's and the lifter's
    rates (from the recording's metadata["timing"])."""
    t = recording.timestamps_s
    meta = dict((recording.metadata or {}).get("timing") or {})
    info = {
        "frame_rate_hz": 1.0 / motion.frame_time_s,
        "first_timestamp_s": float(t[0]) if len(t) else None,
        "timestamps": "the CSV's timestamp_s is on the source's clock (a video: frame index / "
        "its frame rate), so that rows line up with the source's frames",
    }
    info.update(meta)
    return info


def contacts_summary(motion: Motion, fmt: str) -> dict:
    """The sidecar's "contacts" entry: the frames with each foot planted and where they are."""
    contacts = motion.contacts if motion.contacts is not None else np.zeros((0, 2), bool)
    info: dict[str, Any] = {
        "meaning": "a foot is in contact when its ankle is near the floor and still (in the "
        "image where its 2D was seen); planted feet are held still when feet_planted is true",
        "frames": {"RightFoot": int(contacts[:, 0].sum()), "LeftFoot": int(contacts[:, 1].sum())},
    }
    if fmt == "csv":
        info["columns"] = "RightFoot_contact, LeftFoot_contact: 1 planted, 0 not"
    else:
        info["columns"] = None
    return info


def seen_summary(recording: Recording, fmt: str) -> dict:
    """The sidecar's "seen" entry: what the per-joint seen flags mean, where the file keeps them
    (fmt "csv": the <joint>_seen columns; "bvh": nowhere, the format has no place for them)
    and, per joint (BVH names), the fraction of tracked frames in which it was seen."""
    tracked, seen = recording.tracked, recording.seen
    assert tracked is not None and seen is not None  # Recording.__post_init__ fills them
    n = int(tracked.sum())
    fraction = seen[tracked].mean(axis=0) if n else np.zeros(len(BVH_JOINT_NAMES))
    info = {
        "meaning": (
            "a joint is seen in a frame when the 2D detector found it inside the image with a "
            "confidence of at least the pipeline's threshold (0.5 by default; 0.3 for a joint "
            "seen in the frame before or at a segment's start); the lifter "
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
    result: dict[str, Any] = {"bvh": None, "bvh_sidecar": None, "csv": None, "csv_sidecar": None}
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
        # Recording.__post_init__ fills them.
        assert recording.confidence is not None and recording.seen is not None
        report(0.7, f"writing {csv_target.name}")
        text = csv_text(
            motion.csv_positions,
            recording.timestamps_s,
            recording.confidence,
            motion.valid,
            motion.interpolated,
            recording.seen & motion.valid[:, None],
            motion.contacts,
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
