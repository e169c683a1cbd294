"""The live pipeline's motion stages: the 2D resampled to the lifter's frame rate whatever the
source's rate (`LifterClock`), and the lifted pose placed in camera space (`RootTracker`: the
raw per-frame root for recording, a causally smoothed one for the view)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from distpose_app.core.timing import GridResampler
from distpose_app.export.trajectory import RootFilter, solve_root_translation
from distpose_app.lifter import MODEL_FPS


def _blend(a: np.ndarray | None, b: np.ndarray | None, w: float) -> np.ndarray | None:
    """(1 - w) a + w b per row where both rows are finite, else the nearer's row (NaN stays)."""
    if a is None or b is None:
        return b if w >= 0.5 else a
    a, b = np.asarray(a), np.asarray(b)
    ok_a = np.isfinite(a).reshape(len(a), -1).all(-1)
    ok_b = np.isfinite(b).reshape(len(b), -1).all(-1)
    both = (ok_a & ok_b).reshape((-1,) + (1,) * (a.ndim - 1))
    nearer = b if w >= 0.5 else a
    return np.where(both, (1.0 - w) * a + w * b, nearer).astype(a.dtype, copy=False)


class LifterClock:
    """Feeds the lifter at its own rate (`lifter.MODEL_FPS`) from inputs at any rate: a 50 fps
    video or a 15 fps camera would otherwise play the motion to the lifter at the wrong speed.

    ticks(norm, meta) takes one input (norm (17, 2) the lifter input, NaN for unseen joints;
    meta a pipeline `_Pending` with timestamp_s, seen, rays, truth_3d) and returns the
    [(norm, meta)] to push now: one per grid time released (`core.timing.GridResampler`),
    blended between the previous input and this one, the meta of the nearer input with the grid
    time as its timestamp. A source at the lifter's rate passes through unchanged (one push per
    input, its own timestamp), camera jitter included."""

    def __init__(self, rate_hz: float = MODEL_FPS):
        self.grid = GridResampler(rate_hz)
        self._previous: tuple[np.ndarray, Any] | None = None

    def reset(self) -> None:
        self.grid.reset()
        self._previous = None

    def ticks(self, norm: np.ndarray, meta: Any) -> list[tuple[np.ndarray, Any]]:
        out = []
        for time_s, w in self.grid.push(meta.timestamp_s):
            if w >= 1.0 or self._previous is None:
                out.append((norm, meta if time_s == meta.timestamp_s else
                            replace(meta, timestamp_s=time_s)))  # fmt: skip
                continue
            norm0, meta0 = self._previous
            blended = _blend(norm0, norm, w)
            nearer = meta if w >= 0.5 else meta0
            seen = np.asarray(nearer.seen, bool) & np.isfinite(blended).all(-1)
            truth = None
            if meta0.truth_3d is not None and meta.truth_3d is not None:
                truth = (1.0 - w) * np.asarray(meta0.truth_3d) + w * np.asarray(meta.truth_3d)
            out.append((blended, replace(
                nearer, timestamp_s=time_s, seen=seen, truth_3d=truth,
                rays=_blend(meta0.rays, meta.rays, w),
            )))  # fmt: skip
        self._previous = (norm, meta)
        return out


class RootTracker:
    """Where the lifted pose is in camera space: place(pose, rays, timestamp) solves the root's
    position from the pose and the image rays of its 2D (`export.trajectory`), and returns
    (raw (3,) metres or None, smoothed (3,) metres or None). A frame whose solve fails keeps
    the last root. The raw root is recorded (the exporter smooths with look-ahead); the
    smoothed one (One Euro, no look-ahead) is for the live view."""

    def __init__(self):
        self.filter = RootFilter()
        self._last: np.ndarray | None = None

    def reset(self) -> None:
        self.filter.reset()
        self._last = None

    def place(
        self, pose: np.ndarray, rays: np.ndarray | None, timestamp_s: float
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        if rays is not None:
            root, ok = solve_root_translation(pose[None], np.asarray(rays)[None])
            if ok[0]:
                self._last = root[0]
        if self._last is None:
            return None, None
        smoothed = self.filter(timestamp_s, self._last)
        return self._last.copy(), smoothed
