"""Frame times: a source's frame rate from its timestamps, the fixed-rate grid a lifter runs on,
and linear interpolation of per-frame values (with a validity flag) onto other times, offline
and as a stream."""

from __future__ import annotations

import numpy as np


def frame_rate(timestamps_s: np.ndarray, default: float = 30.0) -> float:
    """Frames per second from (F,) timestamps (s): 1 / the median positive step; `default`
    when there is no positive step."""
    steps = np.diff(np.asarray(timestamps_s, dtype=np.float64))
    steps = steps[np.isfinite(steps) & (steps > 0)]
    return float(1.0 / np.median(steps)) if steps.size else float(default)


def same_rate(rate_a: float, rate_b: float, tolerance: float = 0.01) -> bool:
    """True when two frame rates (Hz) differ by at most `tolerance` (a fraction, 1 %)."""
    return abs(rate_a - rate_b) <= tolerance * max(rate_a, rate_b)


def grid_times(start_s: float, end_s: float, rate_hz: float) -> np.ndarray:
    """(N,) seconds start, start + 1/rate, ... up to end (inclusive, 1 microsecond slack)."""
    if not (np.isfinite(start_s) and np.isfinite(end_s)) or end_s < start_s:
        return np.zeros(0)
    count = int(np.floor((end_s - start_s) * rate_hz + 1e-6)) + 1
    return start_s + np.arange(count) / rate_hz


def interpolate_at(
    values: np.ndarray,
    valid: np.ndarray,
    times_s: np.ndarray,
    query_s: np.ndarray,
    max_hold_s: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Values of a sampled series at other times, by linear interpolation.

    values (F, ...) any units, sampled at times_s (F,) seconds, increasing; valid (F, ...) bool
    with the leading dims of `values` (a joint or a frame that was not observed). query_s (Q,)
    seconds. Between two valid neighbours the result is their linear blend; where only one of
    the two is valid, that one is used if it is the nearer, else the result is invalid. Before
    the first sample and after the last one the nearest sample is held for up to `max_hold_s`
    (default: half the median step). Returns (values (Q, ...), valid (Q, ...) bool); invalid
    entries are NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    ok = np.asarray(valid, dtype=bool)
    t = np.asarray(times_s, dtype=np.float64)
    q = np.asarray(query_s, dtype=np.float64)
    if max_hold_s is None:
        max_hold_s = 0.5 / frame_rate(t) if len(t) > 1 else 0.0
    out_shape = (len(q),) + x.shape[1:]
    if len(t) == 0:
        return np.full(out_shape, np.nan), np.zeros(out_shape[: ok.ndim], bool)
    i1 = np.clip(np.searchsorted(t, q, side="left"), 0, len(t) - 1)
    i0 = np.clip(i1 - 1, 0, len(t) - 1)
    exact = t[i1] == q
    i0 = np.where(exact, i1, i0)
    span = t[i1] - t[i0]
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(span > 0, (q - t[i0]) / np.where(span > 0, span, 1.0), 1.0)
    w = np.clip(w, 0.0, 1.0)
    outside = (q < t[0] - max_hold_s - 1e-9) | (q > t[-1] + max_hold_s + 1e-9)
    extra = (1,) * (x.ndim - ok.ndim)
    ok0, ok1 = ok[i0], ok[i1]
    wb = w.reshape((-1,) + (1,) * (ok.ndim - 1))
    both = ok0 & ok1
    use1 = ~both & ok1 & (wb >= 0.5)
    use0 = ~both & ok0 & (wb < 0.5)
    x0 = np.where(ok0.reshape(ok0.shape + extra), x[i0], 0.0)
    x1 = np.where(ok1.reshape(ok1.shape + extra), x[i1], 0.0)
    wx = w.reshape((-1,) + (1,) * (x.ndim - 1))
    blend = (1.0 - wx) * x0 + wx * x1
    out = np.where(both.reshape(both.shape + extra), blend, np.nan)
    out = np.where(use1.reshape(use1.shape + extra), x1, out)
    out = np.where(use0.reshape(use0.shape + extra), x0, out)
    good = (both | use0 | use1) & ~outside.reshape((-1,) + (1,) * (ok.ndim - 1))
    out = np.where(good.reshape(good.shape + extra), out, np.nan)
    return out, good


class GridResampler:
    """Streaming counterpart of `interpolate_at` onto a fixed-rate grid: the grid starts at the
    first sample's time, and each new sample at time t releases the grid times in
    (previous time, t + tolerance], each as the weight w of the new sample in a blend
    (1 - w) * previous + w * new (w = 1 for grid times at or after t: the newest sample is
    used as it is rather than extrapolated). tolerance_s (default a quarter of the grid step)
    absorbs a camera's timestamp jitter: a 30 fps camera feeding a 30 Hz grid releases one
    grid time per frame instead of alternating between none and two. A jump back in time, or
    forward by more than `max_gap_s`, restarts the grid at the new sample. The tolerance only
    applies while the samples come at the grid's own rate (within `near_rate`, 10 %, of its
    step, measured as a running mean of the steps): a 50 fps video is interpolated exactly."""

    def __init__(
        self,
        rate_hz: float,
        tolerance_s: float | None = None,
        max_gap_s: float = 1.0,
        near_rate: float = 0.1,
    ):
        if not rate_hz > 0:
            raise ValueError(f"grid rate must be positive, got {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.step_s = 1.0 / self.rate_hz
        self.tolerance_s = 0.25 * self.step_s if tolerance_s is None else float(tolerance_s)
        self.max_gap_s = float(max_gap_s)
        self.near_rate = float(near_rate)
        self.reset()

    def reset(self) -> None:
        """Forget the grid: the next sample starts a new one."""
        self._start: float | None = None
        self._next = 0  # index of the next grid time to release
        self._last: float | None = None
        self._step: float | None = None  # running mean of the samples' steps, seconds

    def push(self, time_s: float) -> list[tuple[float, float]]:
        """A new sample at `time_s` seconds -> [(grid time s, weight of the new sample)]."""
        t = float(time_s)
        last = self._last
        if self._start is None or last is None or t <= last or t - last > self.max_gap_s:
            self._start, self._next, self._last, self._step = t, 1, t, None
            return [(t, 1.0)]
        step = t - last
        self._step = step if self._step is None else 0.8 * self._step + 0.2 * step
        at_rate = abs(self._step - self.step_s) <= self.near_rate * self.step_s
        tolerance = self.tolerance_s if at_rate else 1e-9 * max(1.0, abs(t))
        out = []
        while True:
            g = self._start + self._next * self.step_s
            if g > t + tolerance:
                break
            if g >= t - 1e-9 * max(1.0, abs(t)):
                out.append((t if abs(g - t) <= tolerance else g, 1.0))
            else:
                out.append((g, (g - last) / (t - last)))
            self._next += 1
        self._last = t
        return out
