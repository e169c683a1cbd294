"""Mocap -> synthetic webcam training data, the train/val/test split, the cache, and the external
`.npz` format that `distpose evaluate` and users read.

Every mocap sequence (world metres, Y up, from `distpose_app.data.mocap`) is seen by a few random
virtual webcams placed like real ones: 1.5-5 m away, 0.5-2 m high, anywhere around the subject,
aimed roughly at it, with a 50-120 degree horizontal field of view and a common image size, and
the person fully in frame in every frame. Each view gives camera-frame 3D joints (metres; x right,
y down, z forward), their ideal pinhole projection and their projection through a sampled lens
(pixels), optionally with detector-like noise and dropped joints.

Splits are by file: whole styles are held out for testing (`TEST_STYLES`), so no frame of a test
sequence is ever trained on. See docs/data.md for the distributions, counts and the file format.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from distpose_app.core.errors import DataFormatError, DistposeError
from distpose_app.core.skeleton import NUM_JOINTS

# Bump whenever the builder's output for the same parameters changes: it is part of the cache key.
BUILDER_VERSION = 2

# ---------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------
# Held-out styles. "elderly" (dataset 2, all ten contents: walk, walk-turn, run, wave and raise-up
# with either or both hands) and its dataset-1 counterpart "old" (walk, walk-back/left/right, run,
# dash, bow, bye, byebye, guide): 14.7% of the archive's frames, an unseen way of moving (stooped,
# slow) rather than unseen frames of a seen motion.
TEST_STYLES: frozenset[str] = frozenset({"elderly", "old"})
# One training file in VAL_MODULUS goes to validation (early stopping), chosen by a hash of the
# file name so that it never depends on the order or the number of files read.
VAL_MODULUS = 20
SPLITS = ("train", "val", "test")


def _stem(name: str) -> str:
    """File name without folders and extension: 'dataset-2_walk_elderly_001'."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return name[:-4] if name.lower().endswith(".bvh") else name


def _style_of(name: str) -> str:
    """Style from a Bandai-Namco file name `dataset-N_{content}_{style}_{id}`, '' if not one."""
    parts = _stem(name).split("_")
    return parts[2] if len(parts) == 4 else ""


def sequence_bounds(sequence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First frame and end frame (exclusive) of every run of equal ids in `sequence` (N,), in
    frame order: the sequences of a SyntheticSet or an external file. -> (starts, ends) int."""
    sequence = np.asarray(sequence)
    bounds = np.flatnonzero(np.diff(sequence)) + 1
    return np.concatenate([[0], bounds]).astype(int), np.concatenate(
        [bounds, [len(sequence)]]
    ).astype(int)


CLIP_SEPARATOR = "#"
# Training and evaluation cut every file into 3 s clips (see `clips`).
DEFAULT_CLIP_FRAMES = 90


def clips(sequences: Sequence[Any], clip_frames: int, min_frames: int | None = None) -> list:
    """Cut mocap sequences into consecutive clips of `clip_frames` frames (the remainder kept
    when it has at least `min_frames`, default half a clip), named `<file>#<k>`.

    Why: a webcam sees a person for seconds from 1-3 m, not a 10 m walk from far enough away to
    keep all of it in frame. Each clip gets its own virtual cameras, so the person can stand
    close and off-centre, where a lens matters. Clips keep their file's split.
    """
    import dataclasses

    min_frames = clip_frames // 2 if min_frames is None else min_frames
    out = []
    for seq in sequences:
        n = len(seq.positions)
        for k, start in enumerate(range(0, n, clip_frames)):
            part = seq.positions[start : start + clip_frames]
            if len(part) >= min_frames:
                name = f"{seq.name}{CLIP_SEPARATOR}{k:02d}"
                out.append(dataclasses.replace(seq, name=name, positions=part))
    return out


def split_of(sequence: Any) -> str:
    """'train', 'val' or 'test' for a mocap sequence (a `MocapSequence` or its file name).

    Test: every file whose style is in TEST_STYLES. Val: one file in VAL_MODULUS of the rest, by
    a CRC-32 of the file's stem. Train: everything else. Disjoint by file by construction.
    """
    if isinstance(sequence, str):
        name, style = sequence, _style_of(sequence)
    else:
        name = sequence.name
        style = getattr(sequence, "style", "") or _style_of(name)
    if style in TEST_STYLES:
        return "test"
    source_file = _stem(name).split(CLIP_SEPARATOR)[0]  # every clip of a file shares its split
    if zlib.crc32(source_file.encode()) % VAL_MODULUS == 0:
        return "val"
    return "train"


# ---------------------------------------------------------------------------------------
# Virtual cameras
# ---------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------
# Detector-like noise
# ---------------------------------------------------------------------------------------
# Relative noise per joint: 2D detectors are least precise at the extremities (wrists, ankles),
# which also move fastest.
DEFAULT_JOINT_SCALE: tuple[float, ...] = (
    1.0, 1.2, 1.5, 2.0, 1.2, 1.5, 2.0, 1.0, 1.0, 1.2, 1.5, 1.2, 1.5, 2.0, 1.2, 1.5, 2.0,
)  # fmt: skip


@dataclass(frozen=True)
class NoiseConfig:
    """Detector-like 2D noise: per joint and frame an independent Gaussian in x and y with
    std = sigma_px * joint_scale[j] + speed_gain * (2D speed of the joint in px per frame), and
    each joint dropped (mask False) with probability drop_prob."""

    sigma_px: float = 1.5
    joint_scale: tuple[float, ...] = DEFAULT_JOINT_SCALE
    speed_gain: float = 0.1  # motion blur: fast joints are found less precisely
    drop_prob: float = 0.0


def add_detector_noise(
    rng: np.random.Generator,
    keypoints_2d: np.ndarray,
    sequence: np.ndarray,
    noise: NoiseConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy copy of keypoints (N, 17, 2) pixels and a visibility mask (N, 17) bool.

    sequence (N,) int: the speed is a finite difference within a sequence (0 at its first frame).
    Dropped joints keep their (noisy) coordinates; consumers must honour the mask.
    """
    keypoints_2d = np.asarray(keypoints_2d, float)
    speed = np.zeros(keypoints_2d.shape[:2])
    same = np.asarray(sequence)[1:] == np.asarray(sequence)[:-1]
    step = np.linalg.norm(np.diff(keypoints_2d, axis=0), axis=-1)
    speed[1:] = np.where(same[:, None], step, 0.0)
    sigma = noise.sigma_px * np.asarray(noise.joint_scale)[None, :] + noise.speed_gain * speed
    noisy = keypoints_2d + rng.standard_normal(keypoints_2d.shape) * sigma[..., None]
    mask = rng.random(keypoints_2d.shape[:2]) >= noise.drop_prob
    return noisy, mask


# ---------------------------------------------------------------------------------------
# The synthetic set
# ---------------------------------------------------------------------------------------
@dataclass
class SyntheticSet:
    """Views of mocap sequences through virtual webcams. N frames in S views (sequences).

    positions_3d (N, 17, 3) float32 metres, camera coordinates (x right, y down, z forward);
    keypoints_2d (N, 17, 2) float32 pixels through the view's lens (+ noise when configured);
    keypoints_2d_ideal (N, 17, 2) float32 pixels through the pinhole alone (no noise);
    sequence (N,) int32: view index, each view's frames contiguous and in time order;
    intrinsics (S, 4) fx, fy, cx, cy pixels; image_size (S, 2) int width, height;
    lens (S,) str lens specs ('none' for a pinhole); names (S,) str '<file stem>/view<k>';
    rotation (S, 3, 3) and translation (S, 3) metres: world -> camera of each view;
    mask (N, 17) bool visible joints, or None without dropped joints; fps: frames per second.
    """

    positions_3d: np.ndarray
    keypoints_2d: np.ndarray
    keypoints_2d_ideal: np.ndarray
    sequence: np.ndarray
    intrinsics: np.ndarray
    image_size: np.ndarray
    lens: np.ndarray
    names: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    fps: float
    mask: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sequence)

    @property
    def num_sequences(self) -> int:
        return len(self.names)

    def sequence_slices(self) -> list[slice]:
        """Frame range of every view, in view order."""
        starts, ends = sequence_bounds(self.sequence)
        return [slice(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]

    def save(self, path: str | Path) -> None:
        """Write an uncompressed .npz atomically (same folder temporary file, then rename)."""
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "meta"}
        if arrays["mask"] is None:
            del arrays["mask"]
        arrays["fps"] = np.float64(self.fps)
        arrays["meta"] = np.array(json.dumps(self.meta))
        _atomic_savez(path, arrays)

    @classmethod
    def load(cls, path: str | Path) -> SyntheticSet:
        """Read what `save` wrote."""
        with np.load(path, allow_pickle=False) as data:
            kwargs = {k: data[k] for k in data.files if k not in ("fps", "meta")}
            return cls(fps=float(data["fps"]), meta=json.loads(str(data["meta"])), **kwargs)

    def to_external(self, lens: Any = None) -> ExternalData:
        """This set in the external format. keypoints_2d are the pinhole projections (detections
        on undistorted images), or, with `lens`, the projections through that one lens for every
        view (the file then records it under `lens`)."""
        if lens is None:
            keypoints, lens_spec = self.keypoints_2d_ideal, None
        else:
            from distpose_app.lens.models import is_monotonic

            xy = self.positions_3d[..., :2] / self.positions_3d[..., 2:3]
            reach = float(np.hypot(xy[..., 0], xy[..., 1]).max())
            if not is_monotonic(lens, reach):
                raise DistposeError(
                    f"lens {lens.spec()} folds the image within r = {reach:.2f} (normalised), "
                    "where this set has joints: choose a milder lens"
                )
            keypoints = project_views(self.positions_3d, self.intrinsics, lens, self.sequence)
            lens_spec = lens.spec()
        return ExternalData(
            positions_3d=self.positions_3d.astype(np.float64),
            sequence=self.sequence.astype(np.int64),
            fps=float(self.fps),
            intrinsics=self.intrinsics.astype(np.float64),
            image_size=self.image_size.astype(np.int64),
            keypoints_2d=np.asarray(keypoints, np.float64),
            names=self.names,
            lens=lens_spec,
        )


def _sequence_rng(seed: int, name: str) -> np.random.Generator:
    """A generator per (seed, file): a view never changes when other files are added or removed."""
    return np.random.default_rng([seed, zlib.crc32(_stem(name).encode())])


def build_synthetic(
    sequences: Sequence[Any],
    split: str | None = None,
    views_per_sequence: int = 2,
    seed: int = 0,
    lens_sampler: Any = None,
    noise: NoiseConfig | None = None,
    progress: bool = True,
    camera: CameraConfig = CameraConfig(),
) -> SyntheticSet:
    """Build the synthetic set of the mocap `sequences` in `split`.

    sequences: `MocapSequence`s (positions (F, 17, 3) world metres, Y up; fps). split: 'train',
    'val', 'test', or None / 'all' for every sequence given. views_per_sequence: virtual webcams
    per sequence. lens_sampler: a `LensSampler` (each view gets its own lens, sampled to stay
    monotonic over that view's image) or None for pinholes. noise: a NoiseConfig for
    keypoints_2d or None. Deterministic from `seed`: each file's views depend only on the seed
    and the file name.
    """
    from distpose_app.core.progress import Progress

    if split not in (None, "all", *SPLITS):
        raise DistposeError(f"unknown split {split!r}: choose train, val, test or all")
    chosen = [s for s in sequences if split in (None, "all") or split_of(s) == split]
    if not chosen:
        raise DistposeError(f"no sequences in split {split!r}")
    fps = {float(s.fps) for s in chosen}
    if len(fps) != 1:
        raise DistposeError(f"sequences have different frame rates {sorted(fps)}: resample first")

    cols: dict[str, list] = {k: [] for k in ("p3", "k2", "ki", "seq", "K", "size", "lens")}
    cols.update(names=[], R=[], t=[])
    with Progress(len(chosen), f"views of {split or 'all'}", enabled=progress) as bar:
        for seq in chosen:
            rng = _sequence_rng(seed, seq.name)
            world = np.asarray(seq.positions, float)
            for view in range(views_per_sequence):
                intrinsics = sample_intrinsics(rng, camera)
                lens = lens_sampler.sample(rng, intrinsics.corner_radius) if lens_sampler else None
                cam = sample_camera(rng, world, camera, intrinsics, lens)
                p3 = cam.world_to_camera(world)
                K = intrinsics_array(intrinsics)
                cols["p3"].append(p3.astype(np.float32))
                cols["ki"].append(project_views(p3, K).astype(np.float32))
                cols["k2"].append(project_views(p3, K, lens).astype(np.float32))
                cols["seq"].append(np.full(len(p3), len(cols["K"]), np.int32))
                cols["K"].append(K)
                cols["size"].append((int(intrinsics.width), int(intrinsics.height)))
                cols["lens"].append(lens.spec() if lens is not None else "none")
                cols["names"].append(f"{_stem(seq.name)}/view{view}")
                cols["R"].append(cam.R)
                cols["t"].append(cam.t)
            bar.update(postfix=_stem(seq.name))

    sequence = np.concatenate(cols["seq"])
    keypoints_2d = np.concatenate(cols["k2"])
    mask = None
    if noise is not None:
        keypoints_2d, mask = add_detector_noise(
            np.random.default_rng([seed, 1]), keypoints_2d, sequence, noise
        )
        keypoints_2d = keypoints_2d.astype(np.float32)
        mask = mask if noise.drop_prob > 0 else None
    return SyntheticSet(
        positions_3d=np.concatenate(cols["p3"]),
        keypoints_2d=keypoints_2d,
        keypoints_2d_ideal=np.concatenate(cols["ki"]),
        sequence=sequence,
        intrinsics=np.array(cols["K"], np.float64),
        image_size=np.array(cols["size"], np.int32),
        lens=np.array(cols["lens"], dtype=str),
        names=np.array(cols["names"], dtype=str),
        rotation=np.array(cols["R"], np.float64),
        translation=np.array(cols["t"], np.float64),
        fps=fps.pop(),
        mask=mask,
        meta={"split": split or "all", "views_per_sequence": views_per_sequence, "seed": seed},
    )


def _describe(obj: Any) -> Any:
    """A JSON-able description of a config or sampler, for the cache key."""
    if obj is None:
        return None
    if hasattr(obj, "__dataclass_fields__"):
        return {"type": type(obj).__name__, **asdict(obj)}
    state = getattr(obj, "__dict__", None)
    return {"type": type(obj).__name__, "repr": repr(state if state is not None else obj)}


def cache_key(archive: str | Path, **params: Any) -> str:
    """A short hash of the archive (name and size), the builder version and every parameter."""
    archive = Path(archive)
    described = {
        k: v if isinstance(v, int | str | list) else _describe(v) for k, v in params.items()
    }
    payload = {
        "archive": [archive.name, archive.stat().st_size],
        "version": BUILDER_VERSION,
        **described,
    }
    text = json.dumps(payload, sort_keys=True, default=repr)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


# Which poses a set holds (`poses=`): the mocap as recorded ("standing": every Bandai motion is
# done on foot), plus one edited variant per file ("mixed": training; seated twice as often as
# each other family, since most webcam users sit), or plus every family per file ("all":
# evaluation per family). Edits come from `pose_edit` (docs/pose_edit.md).
POSE_SETS = ("standing", "mixed", "all")
MIXED_FAMILY_WEIGHTS = {"seated": 0.4, "crouching": 0.2, "bending_forward": 0.2, "kneeling": 0.2}


def pose_family(name: str) -> str:
    """'standing' or the pose_edit family of a sequence or view name, such as
    'dataset-1_bye_old_001#seated#03/view0'."""
    from distpose_app.data.pose_edit import FAMILIES

    parts = _stem(str(name).split("/view")[0]).split(CLIP_SEPARATOR)
    return next((p for p in parts[1:] if p in FAMILIES), "standing")


def edited_poses(
    archive: str | Path, split: str, poses: str, seed: int = 0, progress: bool = True,
    files: int = 0,
) -> list[Any]:  # fmt: skip
    """Edited variants (MocapSequence, (F, 17, 3) metres) of the archive's files in `split`:
    one family per file for poses="mixed" (drawn by MIXED_FAMILY_WEIGHTS from the file name),
    every family for "all", none for "standing". files: how many files the split holds (for the
    progress bar only)."""
    from distpose_app.core.progress import Progress
    from distpose_app.data import pose_edit

    if poses not in POSE_SETS:
        raise DistposeError(f"unknown pose set {poses!r}: choose from {POSE_SETS}")
    if poses == "standing":
        return []
    names, weights = list(MIXED_FAMILY_WEIGHTS), np.array(list(MIXED_FAMILY_WEIGHTS.values()))
    out: list[Any] = []
    with Progress(files, f"pose edits of {split}", enabled=progress) as bar:
        for name, bvh in pose_edit.iter_bandai_bvh(archive):
            if split not in (None, "all") and split_of(name) != split:
                continue
            if poses == "all":
                families = pose_edit.FAMILIES
            else:
                families = (str(_sequence_rng(seed, name).choice(names, p=weights)),)
            out += pose_edit.edited_sequences([(name, bvh)], families, seed=seed)
            bar.update(postfix=_stem(name))
    return out


def load_or_build(
    archive: str | Path,
    split: str,
    views_per_sequence: int = 2,
    seed: int = 0,
    lens_sampler: Any = None,
    noise: NoiseConfig | None = None,
    camera: CameraConfig = CameraConfig(),
    cache_dir: str | Path = ".cache",
    progress: bool = True,
    clip_frames: int = DEFAULT_CLIP_FRAMES,
    poses: str = "standing",
) -> SyntheticSet:
    """The synthetic set of `split` from the Bandai-Namco archive, from the cache when built
    before: cache_dir/synthetic-<split>-<key>.npz, the key hashing every parameter and
    BUILDER_VERSION. Arguments as in `build_synthetic`; clip_frames > 0 first cuts every file
    into clips of that many frames (`clips`); poses: one of POSE_SETS (edited variants appended
    after the recorded files). Missing archive -> DistposeError."""
    archive = Path(archive)
    if not archive.is_file():
        raise DistposeError(f"mocap archive not found: {archive}")
    from distpose_app.data import mocap

    key = cache_key(
        archive,
        # The conversion's own version: a changed mapping must rebuild the views too.
        mocap=[getattr(mocap, "CACHE_VERSION", 0), getattr(mocap, "HEAD_TOP_EXTENSION_M", 0)],
        split=split,
        views=views_per_sequence,
        seed=seed,
        lens_sampler=lens_sampler,
        noise=noise,
        camera=camera,
        **({"clip_frames": clip_frames} if clip_frames else {}),
        **({"poses": poses} if poses != "standing" else {}),
    )
    path = Path(cache_dir) / f"synthetic-{split}-{key}.npz"
    if path.is_file():
        cached = SyntheticSet.load(path)
        cached.meta["from_cache"] = str(path)
        return cached
    start = time.monotonic()
    sequences = mocap.load_bandai(archive, cache_dir=cache_dir, progress=progress)
    if poses != "standing":
        sequences = [s for s in sequences if split in (None, "all") or split_of(s) == split]
        sequences += edited_poses(archive, split, poses, seed, progress, len(sequences))
    if clip_frames:
        sequences = clips(sequences, clip_frames)
    built = build_synthetic(
        sequences, split, views_per_sequence, seed, lens_sampler, noise, progress, camera
    )
    built.meta["build_seconds"] = time.monotonic() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    built.save(path)
    return built


# ---------------------------------------------------------------------------------------
# External format
# ---------------------------------------------------------------------------------------
@dataclass
class ExternalData:
    """Labelled 3D poses with cameras, as read from / written to the external `.npz` format.

    positions_3d (N, 17, 3) float metres, camera coordinates (x right, y down, z forward);
    sequence (N,) int in [0, S), each sequence's frames contiguous, in time order; fps > 0;
    intrinsics (S, 4) fx, fy, cx, cy pixels; image_size (S, 2) int width, height pixels;
    keypoints_2d (N, 17, 2) float pixels (detections on undistorted images) or None;
    names (S,) str or None; lens: a lens spec string when keypoints_2d went through a lens.
    """

    positions_3d: np.ndarray
    sequence: np.ndarray
    fps: float
    intrinsics: np.ndarray
    image_size: np.ndarray
    keypoints_2d: np.ndarray | None = None
    names: np.ndarray | None = None
    lens: str | None = None

    @property
    def num_sequences(self) -> int:
        return len(self.intrinsics)

    def sequence_slices(self) -> list[slice]:
        """Frame range of every sequence, indexed by sequence number."""
        out = [slice(0, 0)] * self.num_sequences
        starts, ends = sequence_bounds(self.sequence)
        for a, b in zip(starts, ends, strict=True):
            out[int(self.sequence[a])] = slice(int(a), int(b))
        return out


def _atomic_savez(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_external(
    path: str | Path,
    positions_3d: np.ndarray,
    sequence: np.ndarray,
    fps: float,
    intrinsics: np.ndarray,
    image_size: np.ndarray,
    keypoints_2d: np.ndarray | None = None,
    names: np.ndarray | None = None,
    lens: str | None = None,
) -> None:
    """Write the external format atomically (shapes and units as in `ExternalData`), validating
    it first so that a file written here always loads."""
    raw = {
        "positions_3d": positions_3d,
        "sequence": sequence,
        "fps": fps,
        "intrinsics": intrinsics,
        "image_size": image_size,
        "keypoints_2d": keypoints_2d,
        "names": names,
        "lens": lens,
    }
    # Validate what the caller gave before any cast, so that e.g. 640.5 pixels is not rounded.
    arrays = {k: np.asarray(v) for k, v in raw.items() if v is not None}
    _validate(arrays, str(path))
    _atomic_savez(path, arrays)


def write_external(path: str | Path, data: ExternalData) -> None:
    """`save_external` of an ExternalData."""
    save_external(
        path,
        data.positions_3d,
        data.sequence,
        data.fps,
        data.intrinsics,
        data.image_size,
        data.keypoints_2d,
        data.names,
        data.lens,
    )


REQUIRED_KEYS = ("positions_3d", "sequence", "fps", "intrinsics", "image_size")
OPTIONAL_KEYS = ("keypoints_2d", "names", "lens")  # any other key is ignored


def _fail(path: str, key: str, problem: str) -> DataFormatError:
    return DataFormatError(f"{path}: key '{key}': {problem}")


def _check_float(path: str, key: str, value: np.ndarray, shape: tuple) -> None:
    """Float (or int) array of `shape` (None = any length), all finite."""
    if value.dtype.kind not in "fiu":
        raise _fail(path, key, f"dtype {value.dtype} is not numeric")
    if value.ndim != len(shape) or any(
        s is not None and s != v for s, v in zip(shape, value.shape, strict=False)
    ):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise _fail(path, key, f"shape {value.shape}, expected {want}")
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        bad = int(np.sum(~np.isfinite(value)))
        raise _fail(path, key, f"{bad} values are NaN or infinite")


def _validate(arrays: dict[str, np.ndarray], path: str) -> None:
    """Raise DataFormatError naming the key and the problem unless `arrays` follows the format."""
    for key in REQUIRED_KEYS:
        if key not in arrays:
            raise _fail(path, key, "missing (required: " + ", ".join(REQUIRED_KEYS) + ")")
    p3 = arrays["positions_3d"]
    _check_float(path, "positions_3d", p3, (None, NUM_JOINTS, 3))
    if p3.dtype.kind != "f":
        raise _fail(path, "positions_3d", f"dtype {p3.dtype}, expected float (metres)")
    n = len(p3)
    if n == 0:
        raise _fail(path, "positions_3d", "no frames")
    if np.abs(p3).max() > 100:
        raise _fail(path, "positions_3d", f"values up to {np.abs(p3).max():.0f}: not metres?")
    if np.median(p3[..., 2]) <= 0:
        raise _fail(path, "positions_3d", "median z <= 0: not camera coordinates (z forward)?")

    fps = arrays["fps"]
    if fps.dtype.kind not in "fiu" or fps.size != 1:
        raise _fail(path, "fps", f"expected one number, got {fps.dtype} of shape {fps.shape}")
    if not np.isfinite(float(fps.reshape(()))) or float(fps.reshape(())) <= 0:
        raise _fail(path, "fps", f"{float(fps.reshape(()))} is not a positive frame rate")

    intrinsics = arrays["intrinsics"]
    _check_float(path, "intrinsics", intrinsics, (None, 4))
    s = len(intrinsics)
    if s == 0:
        raise _fail(path, "intrinsics", "no sequences")
    if np.any(intrinsics[:, :2] <= 0):
        raise _fail(path, "intrinsics", "focal lengths fx, fy must be positive (pixels)")
    size = arrays["image_size"]
    _check_float(path, "image_size", size, (s, 2))
    if size.dtype.kind == "f" and np.any(size != np.round(size)):
        raise _fail(path, "image_size", "width and height must be whole pixels")
    if np.any(size <= 0):
        raise _fail(path, "image_size", "width and height must be positive")

    seq = arrays["sequence"]
    if seq.dtype.kind not in "iu":
        raise _fail(path, "sequence", f"dtype {seq.dtype}, expected integers")
    if seq.shape != (n,):
        raise _fail(path, "sequence", f"shape {seq.shape}, expected ({n},) like positions_3d")
    if seq.min() < 0 or seq.max() >= s:
        raise _fail(
            path, "sequence", f"values {seq.min()}..{seq.max()} out of range [0, {s}) (intrinsics)"
        )
    run_values = seq[np.concatenate([[0], np.flatnonzero(np.diff(seq)) + 1])]
    if len(np.unique(run_values)) != len(run_values):
        counts = np.bincount(run_values)
        raise _fail(
            path, "sequence", f"frames of sequence {int(np.argmax(counts))} are not contiguous"
        )
    if len(run_values) != s:
        missing = sorted(set(range(s)) - set(run_values.tolist()))[:5]
        raise _fail(path, "sequence", f"sequences {missing} have no frames")

    if "keypoints_2d" in arrays:
        kp = arrays["keypoints_2d"]
        _check_float(path, "keypoints_2d", kp, (n, NUM_JOINTS, 2))
    if "names" in arrays and arrays["names"].shape != (s,):
        raise _fail(path, "names", f"shape {arrays['names'].shape}, expected ({s},)")


def load_external(path: str | Path) -> ExternalData:
    """Read and validate an external-format `.npz` (see ExternalData and docs/data.md).

    Any breach raises DataFormatError naming the key and the problem."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataFormatError(f"{path}: not a readable .npz file ({exc})") from None
    _validate(arrays, str(path))
    return ExternalData(
        positions_3d=arrays["positions_3d"].astype(np.float64),
        sequence=arrays["sequence"].astype(np.int64),
        fps=float(arrays["fps"].reshape(())),
        intrinsics=arrays["intrinsics"].astype(np.float64),
        image_size=arrays["image_size"].astype(np.int64),
        keypoints_2d=arrays["keypoints_2d"].astype(np.float64)
        if "keypoints_2d" in arrays
        else None,
        names=arrays["names"] if "names" in arrays else None,
        lens=str(arrays["lens"]) if "lens" in arrays else None,
    )
