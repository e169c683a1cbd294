"""Virtual webcams in the mocap world: their distribution (`CameraConfig`), sampling one that keeps
the subject in frame (`sample_camera`), and projecting camera-frame joints through pinhole
intrinsics and lenses (`project_views`).

A virtual webcam is placed like a real one: 1.2-3.5 m away, 0.5-2 m high, anywhere around the
subject, aimed roughly at it, with a 50-120 degree horizontal field of view and a common image
size, and the person fully in frame in every frame. Camera coordinates: metres, x right, y down,
z forward. See docs/data.md for the distributions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CameraConfig:
    """Distribution of virtual webcams. Distances and heights in metres, angles in degrees."""

    # Webcam range: a user stands 1.2-3.5 m from the camera (the camera steps back, see
    # grow_distance, only when a clip's motion would leave the image).
    distance_m: tuple[float, float] = (1.2, 3.5)  # horizontal, camera to the subject's mean
    height_m: tuple[float, float] = (0.5, 2.0)  # above the mocap floor (y = 0)
    hfov_deg: tuple[float, float] = (50.0, 120.0)
    image_sizes: tuple[tuple[int, int], ...] = ((640, 480), (800, 600), (1280, 720), (1920, 1080))
    # The camera looks at the subject's mean position, then turns by up to these angles so that
    # the subject need not sit in the image centre (uniform in +-value).
    jitter_yaw_deg: float = 30.0
    jitter_pitch_deg: float = 15.0
    roll_deg: float = 3.0  # webcams stand roughly level
    margin: float = 0.02  # fraction of the image width kept free at every border
    min_depth_m: float = 0.3  # every joint at least this far in front of the camera
    max_tries: int = 60
    grow_distance: float = 1.1  # per failed try: distance *= grow, jitter *= shrink
    shrink_jitter: float = 0.85


@dataclass
class VirtualCamera:
    """A calibrated camera in the mocap world: x_cam = R @ x_world + t (metres).

    intrinsics: `distpose_app.lens.Intrinsics`; R (3, 3) world -> camera rotation; t (3,) metres;
    lens: a `distpose_app.lens.models` lens, or None for an ideal pinhole.
    """

    intrinsics: Any
    R: np.ndarray
    t: np.ndarray
    lens: Any = None

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """World (..., 3) metres, Y up -> camera (..., 3) metres, x right, y down, z forward."""
        return np.asarray(points, float) @ self.R.T + self.t

    @property
    def position(self) -> np.ndarray:
        """Camera centre in world coordinates, (3,) metres."""
        return -self.R.T @ self.t

    def project(self, points_world: np.ndarray, distorted: bool = True) -> np.ndarray:
        """World (..., 3) metres -> pixels (..., 2), through the lens unless `distorted`=False."""
        return project_views(
            self.world_to_camera(points_world),
            intrinsics_array(self.intrinsics),
            self.lens if distorted else None,
        )


def intrinsics_array(intrinsics: Any) -> np.ndarray:
    """An Intrinsics object -> (4,) array fx, fy, cx, cy in pixels."""
    return np.array([intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy], float)


def look_at_rotation(camera_position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World -> camera rotation (3, 3) of a level camera at `camera_position` looking at `target`
    (both (3,) world metres, Y up): rows are the camera's right, down and forward axes."""
    forward = np.asarray(target, float) - np.asarray(camera_position, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)  # degenerate only when looking straight up or down
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def _roll(angle: float) -> np.ndarray:
    """Rotation (3, 3) about the camera's optical axis by `angle` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def sample_intrinsics(rng: np.random.Generator, config: CameraConfig = CameraConfig()) -> Any:
    """A random `Intrinsics`: an image size from config.image_sizes and a horizontal field of
    view uniform in config.hfov_deg, principal point at the image centre, square pixels."""
    from distpose_app.lens.models import Intrinsics

    width, height = config.image_sizes[rng.integers(len(config.image_sizes))]
    hfov = rng.uniform(*config.hfov_deg)
    return Intrinsics.from_hfov(hfov, width, height)


def in_frame(
    pixels: np.ndarray, depth: np.ndarray, width: int, height: int, config: CameraConfig
) -> bool:
    """True when every point (pixels (..., 2), depth (...) metres) is in front of the camera and
    inside the image with config.margin * width pixels to spare."""
    m = config.margin * width
    return bool(
        np.all(depth > config.min_depth_m)
        and np.all(np.isfinite(pixels))
        and np.all((pixels[..., 0] >= m) & (pixels[..., 0] <= width - m))
        and np.all((pixels[..., 1] >= m) & (pixels[..., 1] <= height - m))
    )


def sample_camera(
    rng: np.random.Generator,
    positions_world: np.ndarray,
    config: CameraConfig = CameraConfig(),
    intrinsics: Any = None,
    lens: Any = None,
) -> VirtualCamera:
    """A random webcam that sees every joint of every frame (deterministic given `rng`).

    positions_world: (F, 17, 3) metres, Y up, floor at y = 0. intrinsics: an `Intrinsics`, or
    None to sample one (`sample_intrinsics`). lens: checked through when given (so a pincushion
    lens cannot push joints out of the image), else a pinhole. The camera stands at a horizontal
    distance from the subject's mean position, a height and a yaw drawn from `config`, looks at
    the mean position and turns by a random yaw/pitch/roll. When a joint leaves the image or
    comes closer than config.min_depth_m, it retries with a larger distance and a smaller turn.
    """
    positions_world = np.asarray(positions_world, float)
    if intrinsics is None:
        intrinsics = sample_intrinsics(rng, config)
    K = intrinsics_array(intrinsics)
    width, height = int(intrinsics.width), int(intrinsics.height)
    target = positions_world.reshape(-1, 3).mean(axis=0)
    # Subsample long sequences for the tries, then check the chosen camera on every frame.
    step = max(1, len(positions_world) // 200)
    coarse = positions_world[::step]

    distance = rng.uniform(*config.distance_m)
    camera_height = rng.uniform(*config.height_m)
    azimuth = rng.uniform(0.0, 2 * np.pi)
    jitter = 1.0
    for _ in range(config.max_tries):
        position = target + distance * np.array([np.sin(azimuth), 0.0, np.cos(azimuth)])
        position[1] = camera_height
        # Turn the line of sight in azimuth (about the vertical) and elevation, so that the
        # horizon stays level apart from a small roll.
        look = target - position
        azimuth_look = np.arctan2(look[0], look[2])
        elevation = np.arctan2(look[1], np.hypot(look[0], look[2]))
        azimuth_look += np.radians(rng.uniform(-1, 1) * config.jitter_yaw_deg * jitter)
        elevation += np.radians(rng.uniform(-1, 1) * config.jitter_pitch_deg * jitter)
        direction = np.array(
            [
                np.cos(elevation) * np.sin(azimuth_look),
                np.sin(elevation),
                np.cos(elevation) * np.cos(azimuth_look),
            ]
        )
        roll = np.radians(rng.uniform(-1, 1) * config.roll_deg)
        R = _roll(roll) @ look_at_rotation(position, position + direction)
        camera = VirtualCamera(intrinsics, R, -R @ position, lens)
        for points in (coarse, positions_world):
            cam = camera.world_to_camera(points)
            # Depth first: points behind the camera must not reach the lens model.
            if not np.all(cam[..., 2] > config.min_depth_m):
                break
            if not in_frame(project_views(cam, K, lens), cam[..., 2], width, height, config):
                break
        else:
            return camera
        distance *= config.grow_distance
        jitter *= config.shrink_jitter
    raise ValueError(
        f"no camera keeps the subject in frame after {config.max_tries} tries "
        f"(distance reached {distance:.1f} m): is the sequence in metres?"
    )


# ---------------------------------------------------------------------------------------
# Projection (vectorised; the training loop re-projects through fresh lenses every batch)
# ---------------------------------------------------------------------------------------
def _groups(index: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(value, positions where index == value) for every value, in O(N log N)."""
    order = np.argsort(index, kind="stable")
    values, starts = np.unique(index[order], return_index=True)
    return list(zip(values.tolist(), np.split(order, starts[1:]), strict=True))


def project_views(
    positions_3d: np.ndarray,
    intrinsics: np.ndarray,
    lenses: Any = None,
    sequence: np.ndarray | None = None,
) -> np.ndarray:
    """Camera-frame joints -> pixels through pinhole intrinsics and optional lenses.

    positions_3d: (M, ..., 3) metres, camera coordinates (z > 0).
    intrinsics: (4,) fx, fy, cx, cy pixels for all points; (M, 4) one row per item of the first
        axis (frames, or training windows); or (S, 4) per sequence when `sequence` is given.
    lenses: None (pinhole), one lens for all, or a sequence of lenses (None allowed) with one
        entry per item of the first axis, or per sequence when `sequence` is given.
    sequence: (M,) int sequence index of every item of the first axis, or None.
    Returns (M, ..., 2) pixels: K applied to lens.distort(x/z, y/z) (OpenCV's convention).
    """
    positions_3d = np.asarray(positions_3d, float)
    xy = positions_3d[..., :2] / positions_3d[..., 2:3]
    intrinsics = np.asarray(intrinsics, float)
    if sequence is not None:
        sequence = np.asarray(sequence)
        intrinsics = intrinsics[sequence] if intrinsics.ndim == 2 else intrinsics
        item_of = sequence
    else:
        item_of = None
    if lenses is not None and not hasattr(lenses, "distort"):
        lens_list = list(lenses)
        index = item_of if item_of is not None else np.arange(len(xy))
        distorted = xy.copy()
        for value, rows in _groups(index):
            if lens_list[value] is not None:
                distorted[rows] = lens_list[value].distort(xy[rows])
        xy = distorted
    elif lenses is not None:
        xy = lenses.distort(xy)
    if intrinsics.ndim == 2:  # one row per item of the first axis: broadcast over the rest
        intrinsics = intrinsics.reshape(intrinsics.shape[:1] + (1,) * (xy.ndim - 2) + (4,))
    return xy * intrinsics[..., :2] + intrinsics[..., 2:]
