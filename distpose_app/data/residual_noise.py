"""Real detector errors replayed on training windows: the residuals of Human3.6M's Stacked
Hourglass detections against the projected ground truth, whole windows of them.

The fitted model (`detector_noise`) draws each joint's error on its own; a real detector's
errors are not independent: a limb is misplaced as a whole, the body's outline shifts, a pose
is read as another pose. Measured on S5 with the shipped lifter, the real detections cost 24
mm of MPJPE against ground-truth 2D where the fitted model costs 13 (docs/data.md). Replaying
real residual windows keeps every correlation between joints and over time (swaps included),
while the training window keeps its own lens, body, camera and pose: the residual is added in
metres at the person's depth, as the fitted model's errors are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import DataFormatError
from .detector_noise import (
    DEFAULT_FPS,
    SPINE,
    SPINE_NEIGHBOURS,
    _detect_swaps,
    _load_detection_errors,
    undo_swaps,
)


def detection_residuals(h36m_npz_path: str | Path, subjects=None, fps: float = DEFAULT_FPS):
    """Detection minus ground truth of every detection sequence of `subjects` (None: all with
    detections, S1 and S5), metres at the root depth, resampled to `fps` by the nearest frame.
    Left/right swaps are undone first, as the fitted model's fit does: a swap replayed on
    another pose would be a displacement of the source pose's width, not a swap (the sampler
    swaps with the fitted rates instead). The Spine, which the detector lacks, gets the mean
    of the Hip's and the Thorax's residual; frames where another joint is missing are dropped
    (their sequence is cut there).
    Returns (residuals (R, 17, 2) float32, lengths (K,) of the K contiguous runs)."""
    gt, det, lengths, src_fps = _load_detection_errors(h36m_npz_path, subjects)
    swapped, _ = _detect_swaps(gt, det, np.concatenate([[0], np.cumsum(lengths)[:-1]]))
    error = undo_swaps(det, swapped) - gt
    error[:, SPINE] = error[:, list(SPINE_NEIGHBOURS)].mean(1)
    runs, out_lengths = [], []
    for seg in np.split(error, np.cumsum(lengths)[:-1]):
        idx = np.round(np.arange(0, len(seg) * fps / src_fps) * src_fps / fps).astype(int)
        seg = seg[idx[idx < len(seg)]]
        ok = np.isfinite(seg).all(axis=(1, 2))
        # Contiguous runs of complete frames.
        edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(int), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            runs.append(seg[a:b])
            out_lengths.append(b - a)
    if not runs:
        raise DataFormatError(f"{h36m_npz_path}: no complete detection frames for {subjects}")
    return np.concatenate(runs).astype(np.float32), np.array(out_lengths)


class ResidualBank:
    """Windows of real residuals: `sample(rng, count, length)` -> (count, length, 17, 2) metres,
    each a contiguous stretch of one detection sequence."""

    def __init__(self, residuals: np.ndarray, lengths: np.ndarray, window: int):
        self.residuals = np.asarray(residuals, np.float32)
        ends = np.cumsum(lengths)
        starts = ends - lengths
        ok = lengths >= window
        if not ok.any():
            raise DataFormatError(f"no detection run has the {window} frames a window needs")
        self.starts = np.concatenate([np.arange(s, e - window + 1)
                                      for s, e in zip(starts[ok], ends[ok])])  # fmt: skip
        self.window = window

    def sample(self, rng: np.random.Generator, count: int, length: int) -> np.ndarray:
        if length > self.window:
            raise ValueError(f"bank windows are {self.window} frames, asked for {length}")
        first = rng.choice(self.starts, size=count)
        return self.residuals[first[:, None] + np.arange(length)]
