"""Rotation maths shared by the stages (numpy, float64, right-handed, column vectors): Euler
angles as BVH means them, rotations about an axis, the smallest rotation between two directions
and the chordal mean of rotations.

These are numpy formulas rather than `scipy.spatial.transform.Rotation` because they broadcast
over any leading shape (frames x joints in the exporter) and keep the exporter's and the pose
editor's output bit for bit; tests/test_rotations.py checks them against SciPy.
"""

from __future__ import annotations

import numpy as np

AXIS_INDEX = {"X": 0, "Y": 1, "Z": 2}
EPS = 1e-9  # vectors shorter than this have no direction


def check_order(order: str) -> tuple[int, int, int]:
    order = order.upper()
    if len(order) != 3 or set(order) != {"X", "Y", "Z"}:
        raise ValueError(f"Euler order must be a permutation of 'XYZ', got {order!r}")
    return AXIS_INDEX[order[0]], AXIS_INDEX[order[1]], AXIS_INDEX[order[2]]


def axis_rotation(angle: np.ndarray, axis: int) -> np.ndarray:
    """Right-handed rotation by `angle` (..., radians) about axis 0/1/2 -> (..., 3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(np.shape(angle) + (3, 3))
    a, b = (axis + 1) % 3, (axis + 2) % 3
    out[..., axis, axis] = 1.0
    out[..., a, a] = c
    out[..., b, b] = c
    out[..., a, b] = -s
    out[..., b, a] = s
    return out


def euler_to_matrix(angles: np.ndarray, order: str) -> np.ndarray:
    """Rotation matrices from intrinsic Euler angles, as BVH means them.

    angles: (..., 3) radians, angles[..., k] about axis order[k]. order: e.g. "ZXY" (the BVH
    channel order). Returns (..., 3, 3) R = R_order[0] @ R_order[1] @ R_order[2].
    """
    axes = check_order(order)
    angles = np.asarray(angles, dtype=np.float64)
    r = axis_rotation(angles[..., 0], axes[0])
    r = r @ axis_rotation(angles[..., 1], axes[1])
    return r @ axis_rotation(angles[..., 2], axes[2])


def matrix_to_euler(matrix: np.ndarray, order: str, eps: float = 1e-9) -> np.ndarray:
    """Intrinsic Euler angles of rotation matrices: the inverse of `euler_to_matrix`.

    matrix: (..., 3, 3) rotations. Returns (..., 3) radians with the first and third angle in
    (-pi, pi] and the middle one in [-pi/2, pi/2]. At gimbal lock (middle angle +-90 deg) the
    third angle is set to 0 and the first carries the whole remaining rotation (never NaN).
    """
    i, j, k = check_order(order)
    # Sign of the axis permutation: +1 for the cyclic orders XYZ, YZX, ZXY.
    s = 1.0 if (j - i) % 3 == 1 else -1.0
    m = np.asarray(matrix, dtype=np.float64)
    sin_b = np.clip(s * m[..., i, k], -1.0, 1.0)
    beta = np.arcsin(sin_b)
    cos_b = np.sqrt(np.maximum(1.0 - sin_b**2, 0.0))
    regular = cos_b > eps
    alpha = np.where(
        regular,
        np.arctan2(-s * m[..., j, k], m[..., k, k]),
        # Locked: with the third angle 0, column j of R is R_i(alpha) e_j.
        np.arctan2(s * m[..., k, j], m[..., j, j]),
    )
    gamma = np.where(regular, np.arctan2(-s * m[..., i, j], m[..., i, i]), 0.0)
    return np.stack([alpha, beta, gamma], axis=-1)


def rotation_about_axis(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: unit axis (3,), angle (...) radians -> (..., 3, 3)."""
    angle = np.asarray(angle, dtype=np.float64)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def normalise(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) -> (unit vectors (..., 3) with zeros where undefined, ok (...) bool)."""
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    ok = np.isfinite(norm[..., 0]) & (norm[..., 0] > EPS)
    unit = np.where(ok[..., None], v / np.where(ok[..., None], norm, 1.0), 0.0)
    return unit, ok


def smallest_rotation(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector u onto unit vector v (Rodrigues).

    u: (3,) or (..., 3), v: (..., 3), both unit. Returns (..., 3, 3). For v = -u it turns by
    180 degrees about an axis perpendicular to u.
    """
    u = np.broadcast_to(u, v.shape)
    axis = np.cross(u, v)
    c = np.clip(np.sum(u * v, axis=-1), -1.0, 1.0)
    s = np.linalg.norm(axis, axis=-1)
    # For (nearly) opposite vectors the axis is ill-defined: any perpendicular one works.
    flip = c < -1.0 + 1e-12
    helper = np.where(np.abs(u[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    perp, _ = normalise(np.cross(u, helper))
    k = np.where((s > EPS)[..., None], axis / np.maximum(s, EPS)[..., None], perp)
    theta = np.arctan2(s, c)
    theta = np.where(flip, np.pi, theta)
    K = np.zeros(v.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
    K[..., 1, 0], K[..., 2, 0], K[..., 2, 1] = k[..., 2], -k[..., 1], k[..., 0]
    sin, cos = np.sin(theta)[..., None, None], np.cos(theta)[..., None, None]
    return np.eye(3) + sin * K + (1 - cos) * (K @ K)


def chordal_mean(rotations: np.ndarray) -> np.ndarray:
    """Chordal mean of (N, 3, 3) rotations -> (3, 3): the projection of their mean onto SO(3)."""
    u, _, vt = np.linalg.svd(rotations.mean(axis=0))
    return u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
