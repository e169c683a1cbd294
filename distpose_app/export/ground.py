"""The floor and the world frame: the ground plane under a recorded person (through where the
feet stand still, tilted towards the body's up direction wherever the planted feet do not spread
far enough to fix it), and the rigid transform from camera space to a world with Y up, the floor
at height 0, Z pointing back towards the camera and the origin on the floor below the camera."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .contacts import CONTACT_HEIGHT_M, FEET, detect_contacts

THORAX = 8
# How far the planted feet must spread (metres, standard deviation along a direction) before
# they, rather than the body's up direction, set the floor's tilt about that direction: half
# way at this spread. A walk of a few steps spreads them by ~1 m, a person standing still by
# ~0.1 m (the stance width, where a few centimetres of noise would tilt the floor by degrees).
FLOOR_STIFFNESS_M = 0.2
# Below this share of frames with a planted foot, the floor goes through the lower ankle.
MIN_CONTACT_SHARE = 0.25
# The first floor's contacts: feet still in the image within this height (metres) of the
# lowest ankles under the body's up. The body's up is off by a few degrees, and the lifter's
# size error changes with the view, so across a walk of a few metres the feet on that first
# floor drift up or down by 10-15 cm; with the strict height only the steps at one end were
# found, the floor's tilt stayed the body's and the far steps were never planted (held-out
# walks: most of the remaining foot skating).
FIRST_FLOOR_HEIGHT_M = 0.25


def _unit(v: np.ndarray) -> np.ndarray | None:
    n = float(np.linalg.norm(v))
    return v / n if np.isfinite(n) and n > 1e-9 else None


def body_up(positions: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray | None:
    """The person's mean up direction: the mean unit vector from the ankles' midpoint to the
    thorax over the valid frames. positions (F, 17, 3) metres (any axes); valid (F,) bool.
    Returns (3,) unit, or None when no frame gives one. (Measured on held-out mocap: closer to
    the true vertical than the spine alone, which leans forward in a walk.)"""
    P = np.asarray(positions, dtype=np.float64)
    ok = np.isfinite(P).all(axis=(1, 2)) if valid is None else np.asarray(valid, bool)
    if not ok.any():
        return None
    v = P[ok, THORAX] - 0.5 * (P[ok, FEET[0]] + P[ok, FEET[1]])
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    keep = n[:, 0] > 1e-9
    return _unit((v[keep] / n[keep]).sum(axis=0)) if keep.any() else None


def ground_normal(
    points: np.ndarray, prior: np.ndarray, stiffness_m: float = FLOOR_STIFFNESS_M
) -> np.ndarray:
    """The floor's up direction through planted foot positions points (N, 3) metres, pulled
    towards `prior` (3,) unit: n minimises mean((n . (p - mean p))^2) + s^2 |n - prior|^2
    (s = stiffness_m), i.e. n ~ (C + s^2 I)^-1 prior with C the points' covariance, then
    normalised. Along directions where the points spread much more than s the floor follows
    them; along the others the prior stays. Returns (3,) unit."""
    prior = np.asarray(prior, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64)
    pts = pts[np.isfinite(pts).all(-1)]
    if len(pts) < 3:
        return prior
    C = np.cov(pts.T, bias=True)
    unit = _unit(np.linalg.solve(C + stiffness_m**2 * np.eye(3), prior))
    if unit is None:
        return prior
    return unit if unit @ prior > 0 else -unit


@dataclass
class WorldFrame:
    """Camera space -> world: world = rotation @ (camera point - origin).

    rotation (3, 3): rows are the world's X, Y (up), Z axes in camera axes (x right, y down,
    z forward); Z is the camera's backward direction made horizontal, so a person facing the
    camera faces +Z and X is the camera's right made horizontal. origin (3,) metres: the world
    origin in camera space, on the floor. method: how up was found ("feet": the planted feet's
    plane, "body": the body's up direction alone, "camera": nothing to go by, the camera taken
    as level). contact_frames: frames with a planted foot used for the floor.
    """

    rotation: np.ndarray
    origin: np.ndarray
    method: str
    contact_frames: int = 0

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) camera metres -> (..., 3) world metres."""
        return (np.asarray(points, dtype=np.float64) - self.origin) @ self.rotation.T

    @property
    def camera_position(self) -> np.ndarray:
        """(3,) world metres: where the camera stands."""
        return self.rotation @ -self.origin

    def camera_info(self) -> dict:
        """The camera's pose in the world, for the sidecar: position (m), the rotation taking
        camera axes to world axes, its height above the floor, its pitch (degrees, positive:
        looking down) and roll (degrees, positive: the image turned clockwise)."""
        forward = self.rotation @ np.array([0.0, 0.0, 1.0])
        right = self.rotation @ np.array([1.0, 0.0, 0.0])
        pitch = np.degrees(np.arcsin(np.clip(-forward[1], -1.0, 1.0)))
        roll = np.degrees(np.arcsin(np.clip(-right[1], -1.0, 1.0)))
        return {
            "position_m": self.camera_position,
            "rotation_camera_to_world": self.rotation,
            "height_m": float(self.camera_position[1]),
            "pitch_deg": float(pitch),
            "roll_deg": float(roll),
            "up_from": self.method,
        }


def level_rotation(up: np.ndarray) -> np.ndarray:
    """Rows X, Y, Z of the world in camera axes for the world up `up` (3,) unit (camera axes):
    Z = the camera's backward direction (0, 0, -1) made perpendicular to up, X = Y x Z. A camera
    looking straight down or up takes its image-up direction (0, -1, 0) instead."""
    up = np.asarray(up, dtype=np.float64)
    back = np.array([0.0, 0.0, -1.0])
    z = _unit(back - (back @ up) * up)
    if z is None or abs(back @ up) > 0.99:
        other = np.array([0.0, -1.0, 0.0])
        z = _unit(other - (other @ up) * up)
    assert z is not None  # up is unit: it cannot be along both the back and image-up axes
    x = np.cross(up, z)
    return np.stack([x, up, z])


def estimate_world(
    positions: np.ndarray,
    timestamps_s: np.ndarray,
    valid: np.ndarray | None = None,
    stiffness_m: float = FLOOR_STIFFNESS_M,
    rays: np.ndarray | None = None,
) -> tuple[WorldFrame, np.ndarray]:
    """The world frame of a recording.

    positions (F, 17, 3) metres in camera space (global: root trajectory included; a
    root-relative recording also works, its feet just never spread); timestamps_s (F,);
    valid (F,) bool; rays (F, 2, 2) the ankles' image rays (see `contacts.detect_contacts`) or
    None. Up starts as the body's up direction (`body_up`); contacts are found with
    it (first with the generous FIRST_FLOOR_HEIGHT_M, then the strict contact height), and the
    plane through the planted feet (`ground_normal`) refines it, twice. The floor
    height is the median height of the planted feet (of the lower ankle when fewer than
    MIN_CONTACT_SHARE of the frames have a planted foot),
    and the origin lies on the floor below the camera: the world depends on the whole take's
    floor, not on any one frame's estimate (a 25 fps and a 50 fps copy of a video get the same
    world), and the camera stands at (0, height, 0), looking towards -Z.
    Returns (WorldFrame, contacts (F, 2) bool found on the way).
    """
    P = np.asarray(positions, dtype=np.float64)
    t = np.asarray(timestamps_s, dtype=np.float64)
    F = len(P)
    valid = np.isfinite(P).all(axis=(1, 2)) if valid is None else np.asarray(valid, bool)
    contacts = np.zeros((F, 2), bool)
    prior = body_up(P, valid)
    method = "body"
    if prior is None:
        prior, method = np.array([0.0, -1.0, 0.0]), "camera"
    up = prior
    feet = P[:, list(FEET)]
    for height_m in (FIRST_FLOOR_HEIGHT_M, CONTACT_HEIGHT_M):
        if not valid.any():
            break
        heights = feet[valid] @ up
        floor = float(np.percentile(heights, 5))
        contacts = detect_contacts(
            feet, t, valid, floor_m=floor, up=up, rays=rays, depth=feet[..., 2],
            height_m=height_m, grow_height_m=2.0 * height_m,
        )  # fmt: skip
        if contacts.sum() >= 3:
            up = ground_normal(feet[contacts], prior, stiffness_m)
            method = "feet"
    rotation = level_rotation(up)
    floor = 0.0
    if valid.any():
        heights = feet[valid] @ up
        # few contacts (a moving camera, a shaky detector): the lower ankle, which in a walk or
        # a stance is on the floor nearly all the time, tells the floor more robustly
        if contacts.any(axis=1).sum() >= MIN_CONTACT_SHARE * valid.sum():
            floor = float(np.median(feet[contacts] @ up))
        else:
            floor = float(np.median(heights.min(axis=1)))
    origin = floor * up  # the camera's foot on the floor (the camera is at 0, 0, 0)
    return WorldFrame(rotation, origin, method, int(contacts.any(axis=1).sum())), contacts
