"""What the exporter consumes (`Recording`) and how it cleans it up (`ExportOptions`), plus the
JSON sidecar shared by both formats (files are written through `core.fileio.write_atomic`)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from distpose_app.core.errors import DataFormatError, DistposeError
from distpose_app.core.fileio import strict_json, to_jsonable, write_atomic
from distpose_app.core.skeleton import NUM_JOINTS

CHANNEL_ORDERS: tuple[str, ...] = ("ZXY", "ZYX", "XYZ")
UNIT_SCALES: dict[str, float] = {"cm": 100.0, "m": 1.0, "mm": 1000.0}


@dataclass
class Recording:
    """A recorded performance as the live pipeline or `distpose process` produces it.

    positions: (F, 17, 3) metres in camera coordinates (x right, y down, z forward), H36M-17
        order; NaN rows for frames where no person was tracked. Either with the root's
        trajectory (the live pipeline places the lifted pose where the camera saw it,
        `export.trajectory`) or root-relative (the root at the origin in every frame: the
        exporter then has no root motion to export and says so).
    timestamps_s: (F,) seconds, increasing (capture times; only differences matter).
    confidence: (F, 17) 2D detection confidence in [0, 1].
    tracked: (F,) bool, True where a person was found.
    seen: (F, 17) bool, True where the detector saw the joint in that frame (False: the lifter
        guessed it from the others, or the frame is untracked). None: seen where tracked and
        confidence > 0. Exported as the CSV's `<joint>_seen` columns.
    metadata: free dict; the exporter copies `source`, `lens` (state and adaptation
        statistics), `model` (name, version) and `timing` (source and lifter frame rates)
        into the sidecar.
    rays: (F, 17, 2) image rays (x/z, y/z, camera axes) of the 2D keypoints each pose was
        lifted from, NaN where not seen, or None when unknown. They tell when a foot stands
        still in the image (foot contact), independently of the lifter's errors.
    """

    positions: np.ndarray
    timestamps_s: np.ndarray
    confidence: np.ndarray | None = None
    tracked: np.ndarray | None = None
    seen: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)
    rays: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions, dtype=np.float64)
        if self.positions.ndim != 3 or self.positions.shape[1:] != (NUM_JOINTS, 3):
            raise DataFormatError(
                f"recording positions must have shape (frames, {NUM_JOINTS}, 3), "
                f"got {self.positions.shape}"
            )
        frames = self.positions.shape[0]
        self.timestamps_s = np.asarray(self.timestamps_s, dtype=np.float64).reshape(-1)
        if self.timestamps_s.shape != (frames,):
            raise DataFormatError(
                f"recording has {frames} frames but {self.timestamps_s.size} timestamps"
            )
        if self.confidence is None:
            self.confidence = np.where(np.isfinite(self.positions).all(-1), 1.0, 0.0)
        self.confidence = np.asarray(self.confidence, dtype=np.float64)
        if self.confidence.shape != (frames, NUM_JOINTS):
            raise DataFormatError(
                f"recording confidence must have shape ({frames}, {NUM_JOINTS}), "
                f"got {self.confidence.shape}"
            )
        if self.tracked is None:
            self.tracked = np.isfinite(self.positions).all(axis=(1, 2))
        self.tracked = np.asarray(self.tracked, dtype=bool).reshape(-1)
        if self.tracked.shape != (frames,):
            raise DataFormatError(f"recording has {frames} frames but {self.tracked.size} flags")
        if self.seen is None:
            self.seen = self.confidence > 0
        self.seen = np.asarray(self.seen, dtype=bool)
        if self.seen.shape != (frames, NUM_JOINTS):
            raise DataFormatError(
                f"recording seen flags must have shape ({frames}, {NUM_JOINTS}), "
                f"got {self.seen.shape}"
            )
        self.seen = self.seen & self.tracked[:, None]  # an untracked frame saw nothing
        if self.rays is not None:
            self.rays = np.asarray(self.rays, dtype=np.float64)
            if self.rays.shape != (frames, NUM_JOINTS, 2):
                raise DataFormatError(
                    f"recording rays must have shape ({frames}, {NUM_JOINTS}, 2), "
                    f"got {self.rays.shape}"
                )

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])


@dataclass
class ExportOptions:
    """Clean-up and format options. Units are stated in each name's comment.

    one_euro: One Euro filter (Casiez et al. 2012) on the 3D joints.
    min_cutoff_hz: its cutoff frequency at rest (Hz); lower = smoother when still.
    beta: its speed coefficient in Hz per (m/s), i.e. 1/m: cutoff = min_cutoff + beta * speed.
    d_cutoff_hz: cutoff of the speed estimate (Hz).
    rigid: constant bone lengths over the recording (the BVH always has them).
    align_world: a world on the floor (`export.ground`): Y up from the planted feet's plane
        (or the body's up direction), feet on the floor at height 0, Z back towards the camera,
        the origin on the floor below the camera. Off: the camera's axes (X = x, Y = -y,
        Z = -z), the camera at the origin.
    root_lock: keep the root above the origin (horizontal motion removed; height kept): motion
        in place. Off (default), the root travels as the person did (when the recording has a
        trajectory).
    smooth_root: smooth the root trajectory with look-ahead (`export.trajectory`): where the
        root is seen (0.05 s) and its depth (the least certain coordinate, 0.1 s).
    plant_feet: keep planted feet still (`export.contacts`; with align_world and root motion).
    max_gap_s: untracked stretches up to this long are interpolated; longer ones stay gaps.
    units: BVH length unit, "cm" (default), "m" or "mm". The CSV is always in metres.
    channel_order: BVH rotation channel order, "ZXY" (default), "ZYX" or "XYZ".
    """

    one_euro: bool = True
    min_cutoff_hz: float = 1.0
    beta: float = 1.5
    d_cutoff_hz: float = 1.0
    rigid: bool = True
    align_world: bool = True
    root_lock: bool = False
    smooth_root: bool = True
    plant_feet: bool = True
    max_gap_s: float = 0.5
    units: str = "cm"
    channel_order: str = "ZXY"

    def validate(self) -> None:
        """Raise DistposeError naming the first invalid option."""
        if self.channel_order not in CHANNEL_ORDERS:
            raise DistposeError(
                f"channel order {self.channel_order!r} is not supported; use one of "
                + ", ".join(CHANNEL_ORDERS)
            )
        if self.units not in UNIT_SCALES:
            raise DistposeError(
                f"units {self.units!r} are not supported; use one of " + ", ".join(UNIT_SCALES)
            )
        for name in ("min_cutoff_hz", "d_cutoff_hz"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise DistposeError(f"{name} must be a positive frequency in Hz, got {value}")
        if not (np.isfinite(self.beta) and self.beta >= 0):
            raise DistposeError(f"beta must be >= 0 (1/m), got {self.beta}")
        if not (np.isfinite(self.max_gap_s) and self.max_gap_s >= 0):
            raise DistposeError(f"max_gap_s must be >= 0 seconds, got {self.max_gap_s}")

    def to_dict(self) -> dict:
        return asdict(self)


def sidecar_path(path: str | os.PathLike) -> Path:
    """`<file>.json` beside the exported file (e.g. take.bvh -> take.bvh.json)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def write_sidecar(path: str | os.PathLike, info: dict) -> Path:
    """Write the JSON sidecar for the exported file `path` atomically; returns its path."""
    info = strict_json(info)
    text = json.dumps(info, indent=2, default=to_jsonable, allow_nan=False) + "\n"
    return write_atomic(sidecar_path(path), text)


def resample_recording(recording: Recording, times_s: np.ndarray) -> Recording:
    """`recording` at other times (e.g. back to a video's frames after lifting at the lifter's
    rate): positions and rays interpolated linearly between tracked neighbours
    (`core.timing.interpolate_at`; a time next to an untracked row takes the nearer row);
    confidence and seen flags from the nearer row. times_s (Q,) seconds, increasing, on the
    recording's clock; times beyond its ends hold the end row for up to half a frame.
    Returns a Recording of Q rows with the same metadata."""
    from distpose_app.core.timing import interpolate_at

    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    t = recording.timestamps_s
    tracked = recording.tracked & np.isfinite(recording.positions).all(axis=(1, 2))
    positions, ok = interpolate_at(recording.positions, tracked, t, times)
    index = np.arange(len(t), dtype=np.float64)
    nearest, near_ok = interpolate_at(index, np.ones(len(t), bool), t, times)
    near = np.clip(np.round(np.nan_to_num(nearest)), 0, max(len(t) - 1, 0)).astype(int)
    ok &= near_ok
    if len(t) == 0:
        near = np.zeros(len(times), int)
        confidence = np.zeros((len(times), NUM_JOINTS))
        seen = np.zeros((len(times), NUM_JOINTS), bool)
    else:
        # Recording.__post_init__ fills both.
        assert recording.confidence is not None and recording.seen is not None
        confidence = np.where(ok[:, None], recording.confidence[near], 0.0)
        seen = recording.seen[near] & ok[:, None]
    rays = None
    if recording.rays is not None and len(t):
        seen_rays = np.isfinite(recording.rays).all(-1) & tracked[:, None]
        rays, rays_ok = interpolate_at(recording.rays, seen_rays, t, times)
        rays = np.where((rays_ok & ok[:, None])[..., None], rays, np.nan)
    positions = np.where(ok[:, None, None], positions, np.nan)
    return Recording(positions, times, confidence, ok, seen, dict(recording.metadata), rays)
