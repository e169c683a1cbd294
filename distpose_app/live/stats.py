"""Rolling per-stage timing (capture, MediaPipe, lifter, draw) for the status bar and benchmarks."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

STAGES: tuple[str, ...] = ("capture", "mediapipe", "lifter", "draw")


class StageStats:
    """Rolling timing per stage over the last `window` events: latency (mean seconds per call,
    reported in ms) and rate (events per second of wall time). Thread-safe: the GUI thread
    adds "draw" while the live thread adds the others."""

    def __init__(self, window: int = 60):
        self.window = window
        self._lock = threading.Lock()
        self._events: dict[str, deque] = {}
        self._totals: dict[str, list[float]] = {}  # stage: [calls, seconds] since reset

    def add(self, stage: str, seconds: float, now: float | None = None) -> None:
        """One call of `stage` that took `seconds`, ending at `now` (time.monotonic())."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._events.setdefault(stage, deque(maxlen=self.window)).append((now, seconds))
            total = self._totals.setdefault(stage, [0, 0.0])
            total[0] += 1
            total[1] += seconds

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {"fps": events per second and "latency_ms": mean ms over the window,
        "calls" and "mean_ms" since reset}} for the stages seen."""
        out = {}
        with self._lock:
            for stage, events in self._events.items():
                if not events:
                    continue
                times = [e[0] for e in events]
                span = times[-1] - times[0]
                fps = (len(times) - 1) / span if span > 0 else 0.0
                latency = 1000.0 * float(np.mean([e[1] for e in events]))
                calls, seconds = self._totals[stage]
                out[stage] = {
                    "fps": fps,
                    "latency_ms": latency,
                    "calls": int(calls),
                    "mean_ms": 1000.0 * seconds / calls,
                }
        return out

    def text(self) -> str:
        """One status-bar line: "capture 30 fps 1.2 ms · mediapipe 29 fps 27.0 ms · ..."."""
        s = self.summary()
        parts = [
            f"{name} {s[name]['fps']:.0f} fps {s[name]['latency_ms']:.1f} ms"
            for name in (*STAGES, *sorted(set(s) - set(STAGES)))
            if name in s
        ]
        return " · ".join(parts)

    def reset(self) -> None:
        with self._lock:
            self._events.clear()
            self._totals.clear()
