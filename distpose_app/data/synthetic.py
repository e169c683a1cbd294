"""Mocap -> synthetic webcam training data: detector-like noise, the `SyntheticSet` of views, its
builder, the build cache, and pose mixing (edited seated/crouching/... variants).

Every mocap sequence (world metres, Y up, from `distpose_app.data.mocap`) is seen by a few random
virtual webcams (`distpose_app.data.cameras`). Each view gives camera-frame 3D joints (metres;
x right, y down, z forward), their ideal pinhole projection and their projection through a
sampled lens (pixels), optionally with detector-like noise and dropped joints. Views keep their
file's split (`distpose_app.data.splits`). See docs/data.md for the distributions, counts and
the file format.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from distpose_app.core.errors import DistposeError
from distpose_app.core.fileio import savez_atomic
from distpose_app.data.cameras import (
    CameraConfig,
    intrinsics_array,
    project_views,
    sample_camera,
    sample_intrinsics,
)
from distpose_app.data.external import ExternalData
from distpose_app.data.splits import (
    CLIP_SEPARATOR,
    DEFAULT_CLIP_FRAMES,
    SPLITS,
    clips,
    file_stem,
    sequence_bounds,
    split_of,
)

# Bump whenever the builder's output for the same parameters changes: it is part of the cache key.
BUILDER_VERSION = 2


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
    # An unseen joint (NaN) next to a seen one gives no speed: it must not hide the seen frame.
    speed[1:] = np.where(same[:, None] & np.isfinite(step), step, 0.0)
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
        savez_atomic(path, arrays)

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
    return np.random.default_rng([seed, zlib.crc32(file_stem(name).encode())])


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
                cols["names"].append(f"{file_stem(seq.name)}/view{view}")
                cols["R"].append(cam.R)
                cols["t"].append(cam.t)
            bar.update(postfix=file_stem(seq.name))

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

    parts = file_stem(str(name).split("/view")[0]).split(CLIP_SEPARATOR)
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
    from distpose_app.data.mocap import iter_bandai_bvh

    if poses not in POSE_SETS:
        raise DistposeError(f"unknown pose set {poses!r}: choose from {POSE_SETS}")
    if poses == "standing":
        return []
    names, weights = list(MIXED_FAMILY_WEIGHTS), np.array(list(MIXED_FAMILY_WEIGHTS.values()))
    out: list[Any] = []
    with Progress(files, f"pose edits of {split}", enabled=progress) as bar:
        for name, bvh in iter_bandai_bvh(archive):
            if split not in (None, "all") and split_of(name) != split:
                continue
            families: tuple[str, ...]
            if poses == "all":
                families = pose_edit.FAMILIES
            else:
                families = (str(_sequence_rng(seed, name).choice(names, p=weights)),)
            out += pose_edit.edited_sequences([(name, bvh)], families, seed=seed)
            bar.update(postfix=file_stem(name))
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

    mapping = getattr(mocap, "BANDAI_MAPPING", None)  # the joint definitions the views carry
    key = cache_key(
        archive,
        # The conversion's own version: a changed mapping must rebuild the views too.
        mocap=[
            getattr(mocap, "CACHE_VERSION", 0),
            getattr(mocap, "HEAD_TOP_EXTENSION_M", 0),
            sorted(mapping.to_dict().items()) if mapping is not None else [],
        ],
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
