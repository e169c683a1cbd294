"""The training data: views of every mocap source, joined into one set the window sampler reads.

Sources (docs/data.md): the Bandai-Namco archive through virtual webcams (its training split,
with pose edits), Human3.6M's training subjects through virtual webcams (3 s clips, each with
its own cameras) and through their 4 real, calibrated cameras. Human3.6M's validation subject
(S8) is held out: its real-camera views are the validation set used for model selection.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distpose_app.core.errors import DistposeError
from distpose_app.core.validate import check_number

SOURCES = ("bandai", "h36m-virtual", "h36m-cameras")
H36M_BUILDER_VERSION = 1


@dataclass
class TrainingSet:
    """Camera-frame 3D of many views. positions_3d (N, 17, 3) float32 metres (x right, y down,
    z forward); sequence (N,) int view index, each view contiguous; intrinsics (V, 4) fx, fy,
    cx, cy pixels; image_size (V, 2) width, height; names (V,) str; source (V,) str, one of
    SOURCES; fps."""

    positions_3d: np.ndarray
    sequence: np.ndarray
    intrinsics: np.ndarray
    image_size: np.ndarray
    names: np.ndarray
    source: np.ndarray
    fps: float

    def __len__(self) -> int:
        return len(self.sequence)

    def describe(self) -> dict:
        """Frames and views per source."""
        frames = np.bincount(self.sequence, minlength=len(self.names))
        return {s: {"views": int((self.source == s).sum()),
                    "frames": int(frames[self.source == s].sum())}
                for s in np.unique(self.source)}  # fmt: skip


def as_training_set(data, source: str) -> TrainingSet:
    """A SyntheticSet or h36m.CameraViews as a TrainingSet of one source."""
    return TrainingSet(
        positions_3d=np.asarray(data.positions_3d, np.float32),
        sequence=np.asarray(data.sequence, np.int64),
        intrinsics=np.asarray(data.intrinsics, np.float64),
        image_size=np.asarray(data.image_size, np.int64),
        names=np.asarray(data.names).astype(str),
        source=np.full(len(data.names), source),
        fps=float(data.fps),
    )


def concat_sets(sets: list[TrainingSet]) -> TrainingSet:
    """Join sets of one frame rate; view indices are renumbered."""
    if not sets:
        raise DistposeError("no training data: choose at least one source")
    fps = {s.fps for s in sets}
    if len(fps) != 1:
        raise DistposeError(f"sources have different frame rates {sorted(fps)}")
    offsets = np.cumsum([0] + [len(s.names) for s in sets[:-1]])
    return TrainingSet(
        positions_3d=np.concatenate([s.positions_3d for s in sets]),
        sequence=np.concatenate([s.sequence + o for s, o in zip(sets, offsets)]),
        intrinsics=np.concatenate([s.intrinsics for s in sets]),
        image_size=np.concatenate([s.image_size for s in sets]),
        names=np.concatenate([s.names for s in sets]),
        source=np.concatenate([s.source for s in sets]),
        fps=fps.pop(),
    )


def h36m_virtual_views(path: str | Path, subjects, views: int, seed: int, cache_dir: str | Path,
                       fps: float, progress: bool = True):  # fmt: skip
    """Human3.6M world poses of `subjects` through virtual webcams (3 s clips, `views` cameras
    each), cached in cache_dir/synthetic-h36m-<key>.npz. -> dataset.SyntheticSet."""
    from distpose_app.data import h36m
    from distpose_app.data.splits import DEFAULT_CLIP_FRAMES, clips
    from distpose_app.data.synthetic import SyntheticSet, build_synthetic

    path = Path(path)
    if not path.is_file():
        raise DistposeError(f"Human3.6M file not found: {path} (see --h36m)")
    stat = path.stat()
    key = json.dumps([path.name, stat.st_size, sorted(subjects), views, seed, fps,
                      H36M_BUILDER_VERSION, DEFAULT_CLIP_FRAMES])  # fmt: skip
    cache = Path(cache_dir) / f"synthetic-h36m-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"
    if cache.is_file():
        return SyntheticSet.load(cache)
    start = time.monotonic()
    data = h36m.load_h36m(path)
    sequences = clips(h36m.mocap_sequences(data, subjects, fps), DEFAULT_CLIP_FRAMES)
    built = build_synthetic(sequences, None, views, seed, progress=progress)
    built.meta["build_seconds"] = time.monotonic() - start
    cache.parent.mkdir(parents=True, exist_ok=True)
    built.save(cache)
    return built


def h36m_camera_views(path: str | Path, subjects, fps: float) -> TrainingSet:
    """Human3.6M's `subjects` through their real cameras, as a TrainingSet."""
    from distpose_app.data import h36m

    return as_training_set(h36m.camera_views(h36m.load_h36m(path), subjects, fps), "h36m-cameras")


def build_training_data(archive, h36m_path, sources, views: int, cache_dir, poses: str,
                        fps: float, seed: int = 0, progress: bool = True):  # fmt: skip
    """(train, validation) TrainingSets. train joins `sources` (names from SOURCES);
    validation is Human3.6M's held-out subject through its real cameras when a Human3.6M source
    is used, else the Bandai-Namco validation split."""
    from distpose_app.data import h36m
    from distpose_app.data.synthetic import load_or_build

    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise DistposeError(f"unknown training sources {sorted(unknown)}: choose from {SOURCES}")
    parts = []
    if "bandai" in sources:
        bandai = load_or_build(archive, "train", views, seed=seed, cache_dir=cache_dir,
                               poses=poses, progress=progress)  # fmt: skip
        parts.append(as_training_set(bandai, "bandai"))
    if "h36m-virtual" in sources:
        virtual = h36m_virtual_views(h36m_path, h36m.TRAIN_SUBJECTS, views, seed, cache_dir, fps,
                                     progress)  # fmt: skip
        parts.append(as_training_set(virtual, "h36m-virtual"))
    if "h36m-cameras" in sources:
        parts.append(h36m_camera_views(h36m_path, h36m.TRAIN_SUBJECTS, fps))
    if any(s.startswith("h36m") for s in sources):
        val = h36m_camera_views(h36m_path, (h36m.VALIDATION_SUBJECT,), fps)
    else:
        val = as_training_set(load_or_build(archive, "val", 1, seed=seed, cache_dir=cache_dir,
                                            poses=poses, progress=progress), "bandai")  # fmt: skip
    return concat_sets(parts), val


def content_factors(names, content: dict[str, float]) -> np.ndarray:
    """(S,) multiplier of every view: the product of `content`'s values (regular expression ->
    multiplier >= 0) whose pattern re.search finds in the view's name, 1 where none does."""
    import re

    factors = np.ones(len(names))
    for pattern, factor in content.items():
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise DistposeError(f"content weight pattern {pattern!r}: {exc}") from None
        check_number(f"content weight of {pattern!r}", factor, low=0.0)
        factors *= np.where([bool(regex.search(str(n))) for n in names], factor, 1.0)
    return factors
