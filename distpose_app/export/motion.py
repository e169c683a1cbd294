"""From a Recording to the motion the files carry (`prepare_motion`): gaps bridged, the pose
smoothed (One Euro), the root trajectory smoothed with look-ahead, the world frame on the floor,
the rigid skeleton, foot contacts and planted feet, and the optional root lock. See
docs/export.md and docs/root_motion.md for the order and the reasons."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import skeleton_fit as fit
from .contacts import FEET, PLANT_CONTACT, detect_contacts, plant_feet
from .filters import one_euro_filter
from .ground import WorldFrame, estimate_world
from .recording import ExportOptions, Recording
from .trajectory import smooth_trajectory

# The camera's own axes turned upright (X = x, Y = -y, Z = -z): the world without align_world.
CAMERA_AXES = np.diag([1.0, -1.0, -1.0])


@dataclass
class Motion:
    """A cleaned-up recording, ready to write.

    positions: (F, 17, 3) metres, world axes, finite (long gaps hold the last pose).
    csv_positions: (F, 17, 3) metres, NaN on frames kept as gaps.
    rotations: (F, 17, 3, 3) world rotations of the fitted skeleton.
    bone_lengths: (16,) metres. rest_directions: (17, 3) unit (`fit.torso_directions`).
    frame_time_s: seconds (median timestamp difference).
    valid / interpolated / gap: (F,) bool: tracked frames, filled short gaps, kept gaps.
    camera_to_world: (3, 3) rotation and translation_m (3,): world = R @ camera + t (before the
        root lock, which moves every frame on its own).
    world: the WorldFrame (floor, camera pose), or None without align_world.
    root_camera: (F, 3) metres, camera axes: the smoothed root trajectory (NaN on gaps; zeros
        for a root-relative recording).
    contacts: (F, 2) bool, right and left foot planted (False on gaps).
    has_trajectory: the recording placed the body in camera space (else it was root-relative
        and the export is in place whatever the options say).
    root_locked: the exported root stays above the origin (root_lock, or no trajectory).
    feet_planted: planted feet were held still (`contacts.plant_feet`).
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
    world: WorldFrame | None = None
    root_camera: np.ndarray | None = None
    contacts: np.ndarray | None = None
    has_trajectory: bool = False
    root_locked: bool = False
    feet_planted: bool = False


def has_trajectory(positions: np.ndarray, valid: np.ndarray) -> bool:
    """True when some valid frame's root (joint 0) is off the camera's origin: the recording
    carries where the body was, not only its root-relative shape. positions (F, 17, 3)."""
    roots = np.asarray(positions)[np.asarray(valid, bool), 0]
    return bool(len(roots) and np.abs(roots).max() > 1e-6)


def _ankle_rays(recording: Recording, present: np.ndarray) -> np.ndarray | None:
    """(F, 2, 2) image rays of the ankles (NaN where unseen), or None without rays."""
    if recording.rays is None:
        return None
    rays = recording.rays[:, list(FEET)].copy()
    rays[~present] = np.nan
    return rays


def prepare_motion(recording: Recording, options: ExportOptions | None = None) -> Motion:
    """Apply the clean-up options to a recording (see docs/export.md for the order)."""
    options = options or ExportOptions()
    options.validate()
    t = recording.timestamps_s
    P = np.asarray(recording.positions, dtype=np.float64)
    valid = fit.valid_frames(P, recording.tracked)
    P = np.where(valid[:, None, None], P, np.nan)
    trajectory = has_trajectory(P, valid)
    P, interpolated = fit.fill_short_gaps(P, t, valid, options.max_gap_s)
    present = valid | interpolated
    root = P[:, 0].copy()
    relative = P - root[:, None, :]
    if options.one_euro:  # on the root-relative pose: walking speed must not open the filter
        relative = one_euro_filter(
            relative, t, options.min_cutoff_hz, options.beta, options.d_cutoff_hz, valid=present
        )
    if trajectory and options.smooth_root:
        smooth = smooth_trajectory(root, t, present)
        root = np.where(np.isfinite(smooth), smooth, root)
    elif not trajectory:
        root = np.where(present[:, None], 0.0, np.nan)
    camera = relative + root[:, None, :]

    rays = _ankle_rays(recording, present)
    if options.align_world:
        world, _ = estimate_world(camera, t, present, rays=rays)
        A, shift = world.rotation, -world.rotation @ world.origin
    else:
        world, A, shift = None, CAMERA_AXES, np.zeros(3)
    W = camera @ A.T + shift
    lengths = fit.robust_bone_lengths(W, present)
    directions = fit.torso_directions(W, present)
    held = fit.hold_gaps(W, present)
    if not present.any():  # nobody was ever tracked: a standing T-pose keeps the file valid
        held = np.broadcast_to(fit.rest_pose(lengths), W.shape).copy()
    fitted, rotations = fit.fit_skeleton(held, lengths, directions)

    contacts = np.zeros((len(W), 2), bool)
    if options.align_world:
        contacts = detect_contacts(
            fitted[:, list(FEET)], t, present,
            rays=rays, depth=camera[:, list(FEET), 2], **PLANT_CONTACT,
        )  # fmt: skip
    planted = bool(
        options.plant_feet and options.align_world and trajectory and not options.root_lock
        and contacts.any()
    )  # fmt: skip
    body_shift = np.zeros((len(W), 3))
    if planted:
        feet_held, body_shift = plant_feet(fitted, contacts, lengths, t, present)
        fitted, rotations = fit.fit_skeleton(feet_held, lengths, directions)
    csv_positions = fitted if options.rigid else fit.hold_gaps(W, present) + body_shift[:, None]
    locked = options.root_lock or not trajectory
    if locked and present.any():
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
        camera_to_world=A,
        translation_m=shift,
        world=world,
        root_camera=root,
        contacts=contacts & present[:, None],
        has_trajectory=trajectory,
        root_locked=bool(locked),
        feet_planted=planted,
    )
