"""From noisy joint positions to a skeleton a BVH can carry: world axes, gaps, robust bone
lengths, and per-joint rotations with a twist reference for every segment.

World axes (BVH and CSV): X = the camera's x (the subject's left when they face the camera),
Y = up (minus the camera's y), Z = towards the camera (minus the camera's z). A subject facing
the camera therefore faces +Z, the usual BVH convention, and Blender's default importer shows
them upright in its front view, seen from where the webcam was.

A BVH joint's single rotation moves all its children together, so the pelvis (Hips with both hip
joints and the spine) and the upper chest (Spine1 with the neck and both shoulders) are fitted
as rigid bodies; every other bone keeps its measured direction and gets the recording's
constant (median, left = right) length.
"""

from __future__ import annotations

import numpy as np

from distpose_app.core.rotations import normalise, smallest_rotation
from distpose_app.core.skeleton import BONES, NUM_JOINTS, PARENTS, SYMMETRIC_BONE_PAIRS

# Unit direction of the bone from each joint's parent to the joint in the T-pose rest (world
# axes: +X subject's left, +Y up, +Z forward). Row 0 (the root) is unused.
_L, _R, _UP, _DOWN = (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, -1.0, 0.0)
REST_DIRECTIONS = np.array(
    [(0.0, 0.0, 0.0), _R, _DOWN, _DOWN, _L, _DOWN, _DOWN, _UP, _UP, _UP, _UP]
    + [_L, _L, _L, _R, _R, _R]
)

# Typical adult bone lengths (metres), one per BONES entry: used only when a recording has no
# usable frame at all, so that the BVH is still a valid standing skeleton.
DEFAULT_BONE_LENGTHS = np.array(
    [0.13, 0.45, 0.44, 0.13, 0.45, 0.44, 0.23, 0.25, 0.12, 0.115, 0.15, 0.28, 0.25]
    + [0.15, 0.28, 0.25]
)

HIP, RHIP, LHIP, SPINE, THORAX, NECK = 0, 1, 4, 7, 8, 9
LSHOULDER, LELBOW, LWRIST, RSHOULDER, RELBOW, RWRIST = 11, 12, 13, 14, 15, 16
FEET = (3, 6)
CHILDREN: tuple[tuple[int, ...], ...] = tuple(
    tuple(c for c in range(NUM_JOINTS) if PARENTS[c] == j) for j in range(NUM_JOINTS)
)


# ---------------------------------------------------------------------------------------
# Axes, gaps
# ---------------------------------------------------------------------------------------
def camera_to_world(points: np.ndarray) -> np.ndarray:
    """Camera axes (x right, y down, z forward) -> world axes (X = x, Y = -y, Z = -z).

    (..., 3) -> (..., 3), same units. A proper rotation (180 degrees about x).
    """
    return np.asarray(points, dtype=np.float64) * np.array([1.0, -1.0, -1.0])


def valid_frames(positions: np.ndarray, tracked: np.ndarray | None = None) -> np.ndarray:
    """(F, J, 3) -> (F,) bool: tracked and every coordinate finite."""
    ok = np.isfinite(positions).all(axis=(1, 2))
    return ok if tracked is None else ok & np.asarray(tracked, dtype=bool)


def invalid_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """(F,) bool -> [(start, stop)] half-open index ranges of consecutive invalid frames."""
    padded = np.concatenate([[False], ~np.asarray(valid, dtype=bool), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def median_frame_time(timestamps_s: np.ndarray, default: float = 1.0 / 30.0) -> float:
    """Median positive difference of (F,) timestamps (s); `default` when there is none."""
    diffs = np.diff(np.asarray(timestamps_s, dtype=np.float64))
    diffs = diffs[np.isfinite(diffs) & (diffs > 0)]
    return float(np.median(diffs)) if diffs.size else default


def fill_short_gaps(
    positions: np.ndarray, timestamps_s: np.ndarray, valid: np.ndarray, max_gap_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate (in time) untracked stretches bounded on both sides by valid frames
    and lasting at most `max_gap_s` seconds; leave the others untouched.

    A gap's duration is the time without a valid frame minus one frame time, i.e. about
    (number of missing frames) x (frame time): one missing frame at 30 fps lasts 33 ms.
    positions (F, J, 3); timestamps_s (F,) s; valid (F,) bool.
    Returns (positions (F, J, 3), interpolated (F,) bool).
    """
    out = np.array(positions, dtype=np.float64, copy=True)
    t = np.asarray(timestamps_s, dtype=np.float64)
    interpolated = np.zeros(len(out), dtype=bool)
    frame_time = median_frame_time(t)
    for start, stop in invalid_runs(valid):
        if start == 0 or stop == len(out):
            continue  # nothing to interpolate towards: kept as a gap
        t0, t1 = t[start - 1], t[stop]
        duration = t1 - t0 - frame_time
        if not (np.isfinite(duration) and t1 > t0) or duration > max_gap_s + 1e-9:
            continue
        w = ((t[start:stop] - t0) / (t1 - t0))[:, None, None]
        if not np.isfinite(w).all():  # broken timestamps inside the gap: use frame indices
            w = (np.arange(start, stop) - (start - 1))[:, None, None] / (stop - start + 1)
        out[start:stop] = (1 - w) * out[start - 1] + w * out[stop]
        interpolated[start:stop] = True
    return out, interpolated


def hold_gaps(positions: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace invalid frames by the last valid one (the first valid one before it starts).

    (F, J, 3) -> (F, J, 3); unchanged (NaN stays) when no frame is valid.
    """
    return _fill_along_time(np.asarray(positions, dtype=np.float64), valid, None)


def _fill_along_time(values: np.ndarray, ok: np.ndarray, default) -> np.ndarray:
    """values (F, ...) with (F,) ok: invalid entries take the last valid entry before them,
    else the first valid one after; `default` (broadcastable) when none is valid."""
    ok = np.asarray(ok, dtype=bool)
    if ok.all():
        return values
    if not ok.any():
        if default is None:
            return values
        return np.broadcast_to(default, values.shape).copy()
    idx = np.where(ok, np.arange(len(ok)), -1)
    idx = np.maximum.accumulate(idx)
    idx[idx < 0] = np.flatnonzero(ok)[0]
    return values[idx]


# ---------------------------------------------------------------------------------------
# Bone lengths, rest pose
# ---------------------------------------------------------------------------------------
def robust_bone_lengths(positions: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Median length of every bone over the valid frames, left and right made equal.

    positions (F, 17, 3) metres; valid (F,) bool (default: finite frames).
    Returns (16,) metres in BONES order; DEFAULT_BONE_LENGTHS where no frame measures a bone.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if valid is None:
        valid = valid_frames(positions)
    parents = [p for p, _ in BONES]
    children = [c for _, c in BONES]
    vectors = positions[valid][:, children] - positions[valid][:, parents]
    lengths = np.linalg.norm(vectors, axis=-1)
    lengths = np.where(np.isfinite(lengths), lengths, np.nan)
    if lengths.shape[0]:
        with np.errstate(all="ignore"):
            median = np.nanmedian(lengths, axis=0) if np.isfinite(lengths).any() else None
    else:
        median = None
    if median is None:
        median = DEFAULT_BONE_LENGTHS.copy()
    median = np.where(np.isfinite(median), median, DEFAULT_BONE_LENGTHS)
    for left, right in SYMMETRIC_BONE_PAIRS:
        median[left] = median[right] = 0.5 * (median[left] + median[right])
    return median


def joint_lengths(bone_lengths: np.ndarray) -> np.ndarray:
    """(16,) bone lengths in BONES order -> (17,): length of the bone ending at each joint."""
    out = np.zeros(NUM_JOINTS)
    for (_, child), length in zip(BONES, bone_lengths):
        out[child] = length
    return out


def rest_offsets(bone_lengths: np.ndarray, directions: np.ndarray | None = None) -> np.ndarray:
    """Rest offsets of every joint from its parent: (16,) lengths -> (17, 3), same units.

    directions: (17, 3) unit rest directions (default REST_DIRECTIONS, the plain T-pose; see
    `torso_directions`). Row 0 (the root) is zero.
    """
    directions = REST_DIRECTIONS if directions is None else directions
    return directions * joint_lengths(bone_lengths)[:, None]


def rest_pose(bone_lengths: np.ndarray, directions: np.ndarray | None = None) -> np.ndarray:
    """The rest pose standing on the floor (feet at Y = 0): (16,) lengths -> (17, 3) metres."""
    offsets = rest_offsets(bone_lengths, directions)
    pose = np.zeros((NUM_JOINTS, 3))
    for j in range(1, NUM_JOINTS):
        pose[j] = pose[PARENTS[j]] + offsets[j]
    pose[:, 1] -= pose[list(FEET), 1].min()
    return pose


# ---------------------------------------------------------------------------------------
# Rotations
# ---------------------------------------------------------------------------------------
def frame_from_axes(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation whose first column is along `x` and second along `y` made orthogonal to x.

    x, y: (..., 3). Returns (R (..., 3, 3), ok (...) bool); R is the identity where x or y is
    degenerate (zero, NaN, or x and y parallel).
    """
    ex, ok_x = normalise(x)
    ey, ok_y = normalise(y - np.sum(y * ex, axis=-1, keepdims=True) * ex)
    ok = ok_x & ok_y
    ez = np.cross(ex, ey)
    R = np.stack([ex, ey, ez], axis=-1)
    return np.where(ok[..., None, None], R, np.eye(3)), ok


def upright_rotation(positions: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Rotation that makes the mean spine direction (pelvis to thorax) point along +Y.

    positions (F, 17, 3) world axes; valid (F,) bool. Returns (3, 3); the identity when no
    frame gives a spine. The smallest such rotation, so the facing direction is kept.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if valid is None:
        valid = valid_frames(positions)
    spine, ok = normalise(positions[valid, THORAX] - positions[valid, HIP])
    if not ok.any():
        return np.eye(3)
    mean, ok_mean = normalise(spine[ok].sum(axis=0))
    if not ok_mean:
        return np.eye(3)
    return smallest_rotation(mean, np.array([0.0, 1.0, 0.0]))


def _pelvis_frame(P: np.ndarray, hip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pelvis frame: X along the hip line (right to left hip), Y towards the spine."""
    return frame_from_axes(P[:, LHIP] - P[:, RHIP], P[:, SPINE] - hip)


def _chest_frame(P: np.ndarray, thorax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chest frame: X along the shoulder line (right to left shoulder), Y towards the neck."""
    return frame_from_axes(P[:, LSHOULDER] - P[:, RSHOULDER], P[:, NECK] - thorax)


def torso_directions(positions: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Rest directions with the recording's own pelvis and chest shape.

    The children of the two branching joints (hips and spine under the pelvis; neck and
    shoulders under the chest) move as one rigid body in a BVH, so their rest directions are
    the median directions in the pelvis / chest frame over the valid frames, made left-right
    symmetric (e.g. hip joints a little below the pelvis centre, shoulders a little behind the
    neck). Every limb keeps the T-pose direction. positions (F, 17, 3); valid (F,) bool.
    Returns (17, 3) unit vectors; REST_DIRECTIONS where nothing is measured.
    """
    P = np.asarray(positions, dtype=np.float64)
    if valid is None:
        valid = valid_frames(P)
    P = P[np.asarray(valid, dtype=bool)]
    out = REST_DIRECTIONS.copy()
    for joint, frame_fn, (left, right, centre) in (
        (HIP, _pelvis_frame, (LHIP, RHIP, SPINE)),
        (THORAX, _chest_frame, (LSHOULDER, RSHOULDER, NECK)),
    ):
        if not len(P):
            break
        frame, ok = frame_fn(P, P[:, joint])
        local = (
            np.swapaxes(frame, -1, -2)[:, None]
            @ (P[:, [left, right, centre]] - P[:, None, joint])[..., None]
        )
        unit, ok_dir = normalise(local[..., 0])
        keep = ok & ok_dir.all(axis=1)
        if not keep.any():
            continue
        median = np.median(unit[keep], axis=0)  # (3 children, 3)
        mirror = np.array([-1.0, 1.0, 1.0])
        side = 0.5 * (median[0] + median[1] * mirror)
        side[0] = max(side[0], 0.0)  # the left child stays on the left
        for child, vec in ((left, side), (right, side * mirror), (centre, median[2] * mirror)):
            if child == centre:
                vec = np.array([0.0, vec[1], vec[2]])  # symmetric: no sideways lean at rest
            unit_vec, good = normalise(vec)
            if good:
                out[child] = unit_vec
    return out


def fit_skeleton(
    positions: np.ndarray, bone_lengths: np.ndarray, directions: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the constant-length skeleton to every frame and give each joint's world rotation.

    positions: (F, 17, 3) metres, world axes, finite (fill gaps first; NaN frames are kept
    finite by holding the neighbouring rotations). bone_lengths: (16,) metres, BONES order.
    directions: (17, 3) rest directions (`torso_directions`; default the plain T-pose).
    Returns (fitted positions (F, 17, 3) metres, rotations (F, 17, 3, 3)): rotation j maps
    the T-pose rest (`rest_offsets`) of joint j's children onto the fitted bones, so that
    forward kinematics with these rotations reproduces the fitted positions exactly.

    Twist references: the hip line for the pelvis (and, through it, the thighs), the shoulder
    line for the chest, the elbow plane for the upper arms (blended towards the chest's frame as
    the elbow straightens and the plane vanishes). Other bones take the smallest rotation from
    their parent's frame (no added twist); leaf joints copy their parent's rotation. A frame
    where a direction is undefined (zero-length or NaN) holds the nearest defined frame's local
    rotation, so the result is never NaN.
    """
    P = np.asarray(positions, dtype=np.float64)
    F = P.shape[0]
    directions = REST_DIRECTIONS if directions is None else np.asarray(directions)
    offsets = rest_offsets(bone_lengths, directions)
    Q = np.zeros_like(P)
    R = np.zeros((F, NUM_JOINTS, 3, 3))
    eye = np.eye(3)

    def held_local(local: np.ndarray, ok: np.ndarray) -> np.ndarray:
        return _fill_along_time(local, ok, eye)

    Q[:, HIP] = np.where(np.isfinite(P[:, HIP]), P[:, HIP], 0.0)
    for j in range(NUM_JOINTS):
        parent_R = R[:, PARENTS[j]] if j else np.broadcast_to(eye, (F, 3, 3))
        children = CHILDREN[j]
        if j in (HIP, THORAX):
            frame_fn = _pelvis_frame if j == HIP else _chest_frame
            frame, ok = frame_fn(P, Q[:, j])
            local = held_local(np.swapaxes(parent_R, -1, -2) @ frame, ok)
            R[:, j] = parent_R @ local
        elif not children:
            R[:, j] = parent_R  # leaf: nothing measures its orientation
        else:
            (child,) = children
            rest_dir = REST_DIRECTIONS[child]
            target = np.swapaxes(parent_R, -1, -2) @ (P[:, child] - Q[:, j])[..., None]
            direction, ok = normalise(target[..., 0])
            direction = _fill_along_time(direction, ok, rest_dir)
            local = smallest_rotation(rest_dir, direction)
            R[:, j] = parent_R @ local
            if j in (LSHOULDER, RSHOULDER):
                R[:, j] = _upper_arm_frame(j, R[:, j], parent_R, Q[:, j], P, offsets)
        for c in children:
            Q[:, c] = Q[:, j] + R[:, j] @ offsets[c]
    return Q, R


def _upper_arm_frame(
    shoulder: int,
    swing_R: np.ndarray,
    parent_R: np.ndarray,
    shoulder_pos: np.ndarray,
    P: np.ndarray,
    offsets: np.ndarray,
) -> np.ndarray:
    """Twist the upper arm so that its local Y is the elbow's hinge axis (the normal of the
    plane through shoulder, elbow and wrist); the bone direction is kept.

    When the elbow straightens the plane vanishes (and a slightly over-stretched elbow would
    flip it), so the reference blends into the previous frame's twist (held in the chest's
    frame, drawn gently towards the untwisted swing frame): the twist never jumps.
    """
    elbow, wrist = shoulder + 1, shoulder + 2
    side = -1.0 if shoulder == LSHOULDER else 1.0  # left arm: hinge = -(upper x fore) = +Y
    sign_x = REST_DIRECTIONS[elbow][0]
    upper = swing_R[:, :, 0] * sign_x  # unit bone direction (rest is along +-X)
    elbow_pos = shoulder_pos + swing_R @ offsets[elbow]
    fore, _ = normalise(P[:, wrist] - elbow_pos)
    hinge = side * np.cross(upper, fore)
    sin_bend = np.linalg.norm(hinge, axis=-1)
    hinge_unit, _ = normalise(hinge)
    # Below ~5 degrees of bend the plane is noise; above ~45 degrees it is trusted fully. The
    # wide ramp spreads the twist that an elbow reveals as it starts to bend over many frames.
    w = np.clip((sin_bend - 0.09) / (0.71 - 0.09), 0.0, 1.0)
    out = swing_R.copy()
    held = None  # previous frame's Y axis in the chest's frame
    for t in range(len(out)):
        prior = swing_R[t, :, 1] if held is None else parent_R[t] @ held + 0.1 * swing_R[t, :, 1]
        ref = w[t] * hinge_unit[t] + (1 - w[t]) * prior
        frame, ok = frame_from_axes(sign_x * upper[t], ref)
        if ok:
            out[t] = frame
        held = parent_R[t].T @ out[t, :, 1]
    return out


def local_rotations(global_rotations: np.ndarray) -> np.ndarray:
    """(F, 17, 3, 3) world rotations -> (F, 17, 3, 3) local = parent^-1 . global (root: global)."""
    G = np.asarray(global_rotations)
    parent = G[:, [max(p, 0) for p in PARENTS]]
    local = np.swapaxes(parent, -1, -2) @ G
    local[:, 0] = G[:, 0]
    return local
