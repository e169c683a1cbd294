"""The One Euro filter (Casiez, Roussel, Vogel, CHI 2012) for 3D joint trajectories.

A first-order low-pass whose cutoff rises with speed: still joints are smoothed hard (cutoff
`min_cutoff`), fast ones follow with little lag (cutoff `min_cutoff + beta * speed`). Here the
speed is the 3D speed of each joint (m/s), so the filter does not depend on the axes' directions.
"""

from __future__ import annotations

import numpy as np


def smoothing_factor(dt: np.ndarray | float, cutoff_hz: np.ndarray | float) -> np.ndarray:
    """Exponential smoothing weight of a first-order low-pass: dt (s), cutoff (Hz) -> [0, 1]."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff_hz))
    return 1.0 / (1.0 + tau / dt)


def one_euro_filter(
    positions: np.ndarray,
    timestamps_s: np.ndarray,
    min_cutoff_hz: float = 1.0,
    beta: float = 1.5,
    d_cutoff_hz: float = 1.0,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Filter joint trajectories with the One Euro filter, restarting after every gap.

    positions: (F, J, D) metres (any length unit works if beta is scaled to match).
    timestamps_s: (F,) seconds. min_cutoff_hz, d_cutoff_hz: Hz. beta: Hz per (m/s) = 1/m.
    valid: (F,) bool, frames to filter; the filter restarts at the first valid frame after
    an invalid one, and invalid frames are returned unchanged. Default: frames without NaN.
    Returns (F, J, D), same units.
    """
    x = np.asarray(positions, dtype=np.float64)
    t = np.asarray(timestamps_s, dtype=np.float64)
    if valid is None:
        valid = np.isfinite(x).reshape(len(x), -1).all(axis=1)
    out = x.copy()
    diffs = np.diff(t)
    good = diffs[np.isfinite(diffs) & (diffs > 0)]
    fallback_dt = float(np.median(good)) if good.size else 1.0 / 30.0
    prev = None  # last filtered value; None = restart
    dprev = None
    for i in range(len(x)):
        if not valid[i]:
            prev = None
            continue
        if prev is None:
            out[i] = prev = x[i]
            dprev = np.zeros_like(x[i])
            continue
        dt = t[i] - t[i - 1]
        if not (np.isfinite(dt) and dt > 0):
            dt = fallback_dt  # repeated or broken timestamps: assume the usual spacing
        dx = (x[i] - prev) / dt
        dprev = dprev + smoothing_factor(dt, d_cutoff_hz) * (dx - dprev)
        speed = np.linalg.norm(dprev, axis=-1, keepdims=True)
        alpha = smoothing_factor(dt, min_cutoff_hz + beta * speed)
        out[i] = prev = prev + alpha * (x[i] - prev)
    return out


class OneEuro:
    """The One Euro filter as a stream, for one vector (D,) per call: the live view's root.

    min_cutoff_hz, d_cutoff_hz: Hz; beta: Hz per (unit of x per second). The speed is the
    vector's norm, as in `one_euro_filter`. `__call__(timestamp_s, x)` -> filtered (D,);
    reset() forgets the past (the next call returns its input)."""

    def __init__(self, min_cutoff_hz: float = 1.0, beta: float = 0.0, d_cutoff_hz: float = 1.0):
        self.min_cutoff_hz, self.beta, self.d_cutoff_hz = min_cutoff_hz, beta, d_cutoff_hz
        self.reset()

    def reset(self) -> None:
        self._t: float | None = None
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def __call__(self, timestamp_s: float, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        t = float(timestamp_s)
        if self._x is None or self._t is None or not t > self._t:
            if self._x is None or self._t is None or t < self._t:  # start, or a clock reset
                self._t, self._x, self._dx = t, x.copy(), np.zeros_like(x)
            return self._x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + smoothing_factor(dt, self.d_cutoff_hz) * (dx - self._dx)
        cutoff = self.min_cutoff_hz + self.beta * float(np.linalg.norm(self._dx))
        self._x = self._x + smoothing_factor(dt, cutoff) * (x - self._x)
        self._t = t
        return self._x.copy()
