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
        order; NaN rows for frames where no person was tracked. Either root-relative (the
        lifter's output) or with a global trajectory.
    timestamps_s: (F,) seconds, increasing (capture times; only differences matter).
    confidence: (F, 17) 2D detection confidence in [0, 1].
    tracked: (F,) bool, True where a person was found.
    seen: (F, 17) bool, True where the detector saw the joint in that frame (False: the lifter
        guessed it from the others, or the frame is untracked). None: seen where tracked and
        confidence > 0. Exported as the CSV's `<joint>_seen` columns.
    metadata: free dict; the exporter copies `source`, `lens` (state and adaptation
        statistics) and `model` (name, version) into the sidecar.
    """

    positions: np.ndarray
    timestamps_s: np.ndarray
    confidence: np.ndarray | None = None
    tracked: np.ndarray | None = None
    seen: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

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
    align_world: upright from the mean spine direction, floor at the lowest foot, centred.
    root_lock: keep the root above the origin (horizontal motion removed; height kept).
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
