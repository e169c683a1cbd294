"""Recording live poses into an export `Recording`, with a crash-recovery file beside it."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from distpose_app.core.skeleton import NUM_JOINTS

if TYPE_CHECKING:
    from distpose_app.live.pipeline import FrameResult


class Recorder:
    """Accumulates poses into an export `Recording` between start() and stop(). One row per
    pose frame (the lifter's frame rate): positions (17, 3) metres in camera space, the pose
    placed at its root (FrameResult.root_3d; root-relative when the root is unknown), NaN for
    frames without a person (held poses are not recorded as motion), the seen flags (17,) of
    the joints (all False when untracked) and the image rays (17, 2) of their 2D; the exporter
    bridges short gaps. `note_input(timestamp)` counts the source's frames, whose measured
    rate the Recording's metadata["timing"] carries. Thread-safe.

    Crash safety: every row is also appended to a recovery file (`live.recovery`)
    in `recovery_dir` (True: recovery.default_dir(); None or False: memory only), written and
    fsync'ed at least every recovery.FLUSH_INTERVAL_S seconds, so that a killed process loses at
    most that much of the take. A clean stop() deletes the file (keep_recovery=True keeps it until
    discard_recovery()). A recovery file that cannot be written (disk full, no folder) does not
    stop the recording: `recovery_error` says why and the take goes on in memory.

    Timestamps always increase: after `new_segment()` (a new or reconnected source) or when a
    source's clock goes back, the following rows continue after the last recorded one, leaving
    the wall-clock time of the interruption as a gap.
    """

    CHUNK = 4096  # rows per preallocated block (compact: ~440 bytes a row)

    def __init__(self, recovery_dir=True):
        from distpose_app.live import recovery

        self._recovery = recovery
        self._lock = threading.Lock()
        self.is_recording = False
        self.metadata: dict = {}
        self.recovery_dir = recovery_dir
        self.recovery_error: str | None = None
        self._writer = None
        self._kept_path = None  # a stopped take's file kept by stop(keep_recovery=True)
        self._failed_path = None  # the file of this take's writer that failed (disk full)
        self._chunks: list[np.ndarray] = []
        self._count = 0
        self._offset = 0.0  # seconds added to the current segment's timestamps
        self._last_t: float | None = None  # last recorded timestamp, seconds
        self._last_wall = 0.0  # time.monotonic() of the last add
        self._new_segment = False
        self._inputs = [0, 0.0, 0.0]  # source frames noted since start: count, first, last time

    # -- take -------------------------------------------------------------------------------
    def start(self, metadata: dict | None = None) -> None:
        """Start a new take. A previous take's kept recovery file stays on disk (offered at the
        next start) until its owner discards it: starting a take must never lose the last one."""
        with self._lock:
            self._close_writer(keep=False)
            self._kept_path = None
            self._chunks, self._count = [], 0
            self._offset, self._last_t, self._new_segment = 0.0, None, False
            self._inputs = [0, 0.0, 0.0]
            self.metadata = dict(metadata or {})
            self.recovery_error = None
            if self.recovery_dir:
                folder = (
                    self._recovery.default_dir() if self.recovery_dir is True else self.recovery_dir
                )
                try:
                    self._writer = self._recovery.RecoveryWriter(folder, self.metadata)
                except OSError as exc:
                    self.recovery_error = f"no recovery file in {folder}: {exc.strerror or exc}"
            self.is_recording = True

    def add(self, result: FrameResult) -> None:
        """Append the pose of `result` (a FrameResult with pose_3d, or an input frame with
        none, recorded as an untracked row)."""
        if result.pose_3d is not None:
            tracked = bool(result.pose_tracked)
            ts, conf = result.pose_timestamp_s, result.pose_confidence
            pos = result.pose_3d if tracked else np.full((NUM_JOINTS, 3), np.nan)
        else:
            tracked, ts, conf = False, result.timestamp_s, np.zeros(NUM_JOINTS)
            pos = np.full((NUM_JOINTS, 3), np.nan)
        pos = np.asarray(pos, float)
        root = getattr(result, "root_3d", None) if result.pose_3d is not None else None
        if tracked and root is not None:
            pos = pos + np.asarray(root, float)  # camera space: where the camera saw the body
        rays = getattr(result, "pose_rays", None) if tracked else None
        if tracked and not np.isfinite(pos).all():  # never record NaN as motion
            tracked, pos = False, np.full((NUM_JOINTS, 3), np.nan)
        conf = np.nan_to_num(np.asarray(conf, float))
        seen = np.asarray(result.pose_seen, bool) & tracked
        now = time.monotonic()
        with self._lock:
            ts = float(ts) if np.isfinite(ts) else (self._last_t or 0.0)
            back = self._last_t is not None and ts + self._offset <= self._last_t
            if self._last_t is not None and (self._new_segment or back):
                # a new stream (or a clock that went back): continue after the last row, leaving
                # the real interruption (at least one frame time) as a gap
                gap = max(now - self._last_wall, self._frame_time())
                self._offset = self._last_t + gap - ts
            self._new_segment = False
            ts += self._offset
            record = self._recovery.make_record(ts, pos, conf, tracked, seen, rays)
            if self._count % self.CHUNK == 0:
                self._chunks.append(np.zeros(self.CHUNK, self._recovery.RECORD))
            self._chunks[-1][self._count % self.CHUNK] = record
            self._count += 1
            self._last_t, self._last_wall = ts, now
            if self._writer is not None:
                self._guard(lambda w: w.append(record))

    def note_input(self, timestamp_s: float) -> None:
        """One source frame arrived at `timestamp_s` (s): for the source's measured frame rate
        (recorded rows follow the lifter's rate, not the source's)."""
        with self._lock:
            count, first, _ = self._inputs
            t = float(timestamp_s)
            self._inputs = [count + 1, t if count == 0 else first, t]

    def source_rate_hz(self) -> float | None:
        """The source's frames per second since start(): (frames - 1) / time spanned; None
        before two frames (or when the source's clock went back)."""
        with self._lock:
            count, first, last = self._inputs
        return (count - 1) / (last - first) if count >= 2 and last > first else None

    def new_segment(self) -> None:
        """The next rows come from a new (or reconnected) source whose clock restarts."""
        with self._lock:
            self._new_segment = True

    def _frame_time(self) -> float:
        """Median recent timestamp step, seconds (1/30 before there are two rows)."""
        if self._count < 2:
            return 1.0 / 30.0
        t = np.concatenate(self._chunks)[max(0, self._count - 31) : self._count]["t"]
        step = float(np.median(np.diff(t)))
        return step if step > 0 else 1.0 / 30.0

    def _guard(self, action) -> None:
        """Run action(writer); on OSError (disk full...) keep recording in memory only. The
        partial file is forgotten as a writer but still ended with the take (`_close_writer`)."""
        try:
            action(self._writer)
        except (OSError, ValueError) as exc:
            writer, self._writer = self._writer, None
            self.recovery_error = (
                f"recovery file {writer.path} failed: {getattr(exc, 'strerror', None) or exc}; "
                "recording continues in memory"
            )
            writer.close()  # never raises
            self._failed_path = writer.path

    def flush(self) -> None:
        """Write and fsync the recovery file now (cheap when nothing is queued)."""
        with self._lock:
            if self._writer is not None:
                self._guard(lambda w: w.flush())

    def flush_if_due(self) -> None:
        """Flush if FLUSH_INTERVAL_S has passed: call while no frames come (a stalled camera)."""
        with self._lock:
            if self._writer is not None:
                self._guard(lambda w: w.flush_if_due())

    @property
    def recovery_path(self):
        """The recovery file of the current (or kept) take, or None."""
        writer = self._writer
        return writer.path if writer is not None else self._kept_path

    @property
    def num_frames(self) -> int:
        with self._lock:
            return self._count

    def stop(self, keep_recovery: bool = False):
        """End the take and return it as a Recording (see to_recording). The recovery file is
        deleted, or with keep_recovery=True kept (marked stopped) until discard_recovery(), so
        that a take not yet saved survives a crash too."""
        with self._lock:
            self.is_recording = False
            self._close_writer(keep=keep_recovery)
        return self.to_recording()

    def _close_writer(self, keep: bool) -> None:
        failed, self._failed_path = self._failed_path, None
        if failed is not None:  # a file that stopped on a write error: the take is in memory
            if keep:
                self._kept_path = failed
            else:
                self._recovery.discard(failed)
        if self._writer is None:
            return
        path = self._writer.path
        try:
            self._writer.finish(keep=keep)
        except (OSError, ValueError) as exc:  # the file stays, without its end mark
            self.recovery_error = f"recovery file {path}: {getattr(exc, 'strerror', None) or exc}"
        self._kept_path = path if keep else None
        self._writer = None

    def discard_recovery(self) -> None:
        """The take is saved (or deliberately dropped): delete its kept recovery file."""
        with self._lock:
            if self._kept_path is not None:
                self._recovery.discard(self._kept_path)
                self._kept_path = None

    def to_recording(self):
        """The frames so far as distpose_app.export.Recording (positions (F, 17, 3) metres
        camera axes, NaN when untracked; timestamps_s (F,); confidence (F, 17); tracked (F,);
        seen (F, 17); rays (F, 17, 2)); metadata["timing"] gets the source's measured frame
        rate and the lifter's."""
        from distpose_app.export import Recording
        from distpose_app.lifter import MODEL_FPS

        rate = self.source_rate_hz()

        with self._lock:
            rows = (
                np.concatenate(self._chunks)[: self._count]
                if self._count
                else np.zeros(0, self._recovery.RECORD)
            )
            metadata = dict(self.metadata)
        timing = dict(metadata.get("timing") or {})
        timing.setdefault("lifter_frame_rate_hz", MODEL_FPS)
        if rate is not None:
            timing.setdefault("source_frame_rate_hz", rate)
        metadata["timing"] = timing
        return Recording(rows["pos"].astype(np.float64), rows["t"].copy(),
                         rows["conf"].astype(np.float64), rows["tracked"].astype(bool),
                         rows["seen"].astype(bool), metadata=metadata,
                         rays=rows["rays"].astype(np.float64))  # fmt: skip
