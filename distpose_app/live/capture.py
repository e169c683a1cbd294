"""Frame sources (cameras, video files, fakes for tests) and the capture thread that keeps only
the newest frame, so that a slow consumer drops frames instead of piling up latency.

A source is anything with the `FrameSource` interface: `open()` (idempotent), `read() -> Frame |
None` (None: no more frames), `close()`, and `name`, `size` (width, height in pixels), `fps`,
`is_live`. Sources raise `SourceError` (a `DistposeError`) naming the camera or file when they
cannot open or fail mid-stream.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from distpose_app.core.errors import DistposeError
from distpose_app.core.validate import opencv_path

# A camera that gives no frame this many reads in a row counts as lost (a real camera blocks in
# read() until the next frame, so consecutive failures mean it is gone, not slow).
CAMERA_MAX_FAILED_READS = 5
# A file whose readable frames fall short of its header's count by more than this is truncated.
TRUNCATION_TOLERANCE = 0.02


# Largest camera index passed to OpenCV (it reads index // 100 as a backend id, legacy style);
# the bound keeps the number a C int, whose overflow cv2 reports as an exception.
MAX_CAMERA_INDEX = 9999


class SourceError(DistposeError):
    """A camera or video file that cannot be opened or stops working; the message names it."""


@dataclass
class Frame:
    """One captured frame.

    image: (H, W, 3) uint8, BGR (OpenCV's order). timestamp_s: capture time in seconds (a
    monotonic clock for cameras, index / fps for files and generated sources). index: 0-based
    frame number within the source. Generated sources (the demo) also carry their 2D keypoints
    (17, 2) pixels, confidence (17,), and ground-truth camera-frame 3D (17, 3) metres, so that no
    detector is needed; these are None for cameras and files. received_s: set by CaptureThread.
    """

    image: np.ndarray
    timestamp_s: float
    index: int
    keypoints_2d: np.ndarray | None = None
    confidence: np.ndarray | None = None
    truth_3d: np.ndarray | None = None
    received_s: float | None = None  # time.monotonic() when the capture thread got it


@runtime_checkable
class FrameSource(Protocol):
    """What the pipeline and the capture thread read frames from."""

    name: str  # readable, for the window and messages: "camera 0 (HD Webcam)", "walk.avi"
    is_live: bool  # a camera (frames come at their own pace); False: a file or generated stream

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels; valid after open()."""
        ...

    @property
    def fps(self) -> float:
        """Nominal frame rate in Hz; valid after open() (30 when the source does not say)."""
        ...

    def open(self) -> None: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


class SizeAndRate:
    """`size` (width, height pixels) and `fps` (Hz) from `_size` and `_fps`, which a source
    sets when it opens: the part of FrameSource every source shares."""

    _size: tuple[int, int]
    _fps: float

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def fps(self) -> float:
        return self._fps


@dataclass(frozen=True)
class CameraInfo:
    """A camera OpenCV can open: index for cv2.VideoCapture, a readable name, its default
    resolution (pixels) and frame rate (Hz, 0 when the driver does not say)."""

    index: int
    name: str
    width: int
    height: int
    fps: float

    @property
    def label(self) -> str:
        """One line for a source picker: "0: HD Webcam — 1280×720 @ 30 fps"."""
        rate = f" @ {self.fps:g} fps" if self.fps > 0 else ""
        return f"{self.index}: {self.name} — {self.width}×{self.height}{rate}"


def _sysfs_camera_name(index: int) -> str | None:
    """The V4L2 device name Linux gives /dev/video<index>, or None where there is none."""
    path = Path(f"/sys/class/video4linux/video{index}/name")
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip() or None
    except OSError:
        return None


def _fps_or_default(value: float, default: float = 30.0) -> float:
    return float(value) if math.isfinite(value) and 1.0 <= value <= 1000.0 else default


def list_cameras(max_index: int = 8) -> list[CameraInfo]:
    """Cameras with index 0 .. max_index - 1 that OpenCV can open and read a frame from.

    On Linux only indices with a /dev/video<N> node are probed (probing absent ones is slow and
    noisy). Returns [] on a machine without cameras.
    """
    import cv2

    linux = os.path.isdir("/sys/class") and os.name == "posix"
    found = []
    for index in range(max_index):
        if linux and not os.path.exists(f"/dev/video{index}"):
            continue
        cap = cv2.VideoCapture(index)
        try:
            if not cap.isOpened():
                continue
            ok, image = cap.read()
            if not ok or image is None:
                continue  # metadata-only nodes (a webcam's second /dev/video) give no frames
            height, width = image.shape[:2]
            fps = cap.get(cv2.CAP_PROP_FPS)
            name = _sysfs_camera_name(index) or f"camera {index}"
            found.append(CameraInfo(index, name, width, height, fps if fps > 0 else 0.0))
        finally:
            cap.release()
    return found


class CameraSource(SizeAndRate):
    """A webcam through cv2.VideoCapture(index). Optional width, height (pixels) and fps (Hz)
    are requested from the driver, which may pick the nearest mode it has."""

    is_live = True

    def __init__(
        self,
        index: int,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
    ):
        if not 0 <= int(index) <= MAX_CAMERA_INDEX:  # OpenCV takes a C int: no overflow
            raise SourceError(f"camera index must be 0 to {MAX_CAMERA_INDEX}, got {index}")
        self.index = int(index)
        self._request = (width, height, fps)
        self.name = f"camera {self.index}"
        sys_name = _sysfs_camera_name(self.index)
        if sys_name:
            self.name += f" ({sys_name})"
        self._cap: Any = None  # cv2.VideoCapture once open (cv2 is imported lazily)
        self._size = (0, 0)
        self._fps = 30.0
        self._index = 0
        self._t0 = 0.0

    def open(self) -> None:
        import cv2

        if self._cap is not None:
            return
        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.name} cannot be opened (no such camera, or it is in use)")
        width, height, fps = self._request
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        ok, image = cap.read()
        if not ok or image is None:
            cap.release()
            raise SourceError(f"{self.name} opens but delivers no frames")
        self._size = (image.shape[1], image.shape[0])
        self._fps = _fps_or_default(cap.get(cv2.CAP_PROP_FPS))
        self._cap = cap
        self._index = 0
        self._t0 = time.monotonic()

    def read(self) -> Frame | None:
        """The next frame (blocks until the camera delivers it); None when the camera is lost."""
        if self._cap is None:
            raise SourceError(f"{self.name} is not open")
        for _ in range(CAMERA_MAX_FAILED_READS):
            ok, image = self._cap.read()
            if ok and image is not None:
                frame = Frame(image, time.monotonic() - self._t0, self._index)
                self._index += 1
                return frame
            time.sleep(0.01)
        return None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class VideoFileSource(SizeAndRate):
    """A video file read with OpenCV. open() raises SourceError naming the file when it does not
    exist, is empty, or is not a video OpenCV can decode; read() raises SourceError when the
    file ends well before the frame count in its header (truncated)."""

    is_live = False

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.name = self.path.name
        self._cap: Any = None  # cv2.VideoCapture once open (cv2 is imported lazily)
        self._size = (0, 0)
        self._fps = 30.0
        self.frame_count = 0  # from the header; 0 when unknown
        self._pending: np.ndarray | None = None
        self._index = 0
        self._fd: int | None = None  # held open while OpenCV reads the file through /proc

    def open(self) -> None:
        import cv2

        if self._cap is not None:
            return
        if not self.path.exists():
            raise SourceError(f"video file not found: {self._shown}")
        if not self.path.is_file():
            raise SourceError(f"not a file: {self._shown}")
        if self.path.stat().st_size == 0:
            raise SourceError(f"video file is empty: {self._shown}")
        cap = cv2.VideoCapture(self._opencv_name())
        ok, image = cap.read() if cap.isOpened() else (False, None)
        if not ok or image is None or image.ndim != 3:
            cap.release()
            self._close_fd()
            raise SourceError(f"not a video OpenCV can read (or truncated): {self._shown}")
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if math.isfinite(count) and count > 0 else 0
        self._size = (image.shape[1], image.shape[0])
        self._fps = _fps_or_default(cap.get(cv2.CAP_PROP_FPS))
        self._pending = image  # the probe frame is the first frame
        self._cap = cap
        self._index = 0

    def read(self) -> Frame | None:
        if self._cap is None:
            raise SourceError(f"video file is not open: {self._shown}")
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            ok, image = self._cap.read()
            if not ok or image is None:
                self._check_complete()
                return None
        frame = Frame(image, self._index / self._fps, self._index)
        self._index += 1
        return frame

    def _check_complete(self) -> None:
        expected = self.frame_count
        if expected and self._index < expected * (1.0 - TRUNCATION_TOLERANCE) - 1:
            raise SourceError(
                f"video file is truncated: {self._shown} ended after {self._index} of "
                f"{expected} frames"
            )

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._pending = None
        self._close_fd()

    @property
    def _shown(self) -> str:
        """The path for messages (undecodable bytes shown as U+FFFD)."""
        return os.fsencode(self.path).decode("utf-8", "replace")

    def _opencv_name(self) -> str:
        """A name OpenCV can open for this file. OpenCV's binding crashes on a name that is not
        UTF-8, so such a file is opened here and handed over as /proc/self/fd/N (Linux), or
        refused with a SourceError where there is no /proc."""
        try:
            return opencv_path(self.path)
        except DistposeError as exc:
            if not Path("/proc/self/fd").is_dir():
                raise SourceError(str(exc)) from None
        self._fd = os.open(self.path, os.O_RDONLY)
        return f"/proc/self/fd/{self._fd}"

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def open_source(spec: str | int) -> FrameSource:
    """A source from a user string: an integer is a camera index, anything else a video path.
    (The demo source lives in distpose_app.demo.) The source is returned unopened."""
    text = os.fspath(spec) if not isinstance(spec, int) else str(spec)
    if text.strip().lstrip("-").isdigit():
        return CameraSource(int(text.strip()))
    return VideoFileSource(text)  # as given: a name may begin or end with spaces


class FakeSource(SizeAndRate):
    """A generated source for tests: `frames` frames (None: endless) of size (width, height),
    each a grey image whose brightness encodes the index. `stop_after=N` returns None from the
    N+1-th read on (a camera that stops delivering); `fail_after=N` raises SourceError then (a
    camera unplugged). `delay_s` sleeps in read() like a camera waiting for its next frame."""

    def __init__(
        self,
        frames: int | None = None,
        size: tuple[int, int] = (64, 48),
        fps: float = 30.0,
        is_live: bool = True,
        stop_after: int | None = None,
        fail_after: int | None = None,
        delay_s: float = 0.0,
        name: str = "fake camera",
    ):
        self.frames, self._size, self._fps = frames, (int(size[0]), int(size[1])), float(fps)
        self.is_live, self.name = is_live, name
        self.stop_after, self.fail_after, self.delay_s = stop_after, fail_after, delay_s
        self.index = 0
        self.opened = False
        self.closed = False

    def open(self) -> None:
        """(Re)open: a closed fake can be opened again, like a camera plugged back in."""
        self.opened, self.closed = True, False

    def read(self) -> Frame | None:
        if not self.opened or self.closed:
            raise SourceError(f"{self.name} is not open")
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_after is not None and self.index >= self.fail_after:
            raise SourceError(f"{self.name} was unplugged")
        if self.stop_after is not None and self.index >= self.stop_after:
            return None
        if self.frames is not None and self.index >= self.frames:
            return None
        width, height = self._size
        image = np.full((height, width, 3), self.index % 256, dtype=np.uint8)
        frame = Frame(image, self.index / self._fps, self.index)
        self.index += 1
        return frame

    def close(self) -> None:
        self.closed = True


class CaptureThread(threading.Thread):
    """Reads `source` on its own thread into a one-frame slot: a new frame replaces an untaken one
    (counted in `frames_dropped`), so the consumer always gets the newest frame and latency
    never builds up.

    realtime: a non-live source (file, demo) is paced to its fps, as a camera would deliver it;
    False reads as fast as possible. lossless: wait for the consumer instead of dropping (for
    offline processing, and the window's "every frame" mode). Both can change while it runs
    (`set_pacing`); `set_paused(True)` holds a non-live source where it is (a live camera is
    still read, its frames replace each other in the slot). Errors (open failure, camera lost, a
    source that raises) end the thread; they are kept in `error` (a SourceError) and passed to
    `on_error(error)` (called on this thread). `ended` is set when the thread stops for any
    reason; `end_reason` says why ("end of stream", "stopped", or the error message). The thread
    opens the source (no-op when already open) and closes it when it ends.
    """

    def __init__(
        self,
        source: FrameSource,
        on_error: Callable[[SourceError], None] | None = None,
        realtime: bool = True,
        lossless: bool = False,
    ):
        super().__init__(name=f"capture {source.name}", daemon=True)
        self.source = source
        self.on_error = on_error
        self.realtime = realtime
        self.lossless = lossless
        self.frames_read = 0
        self.frames_dropped = 0
        self.error: SourceError | None = None
        self.end_reason = ""
        self.ended = threading.Event()
        self.read_seconds = 0.0  # time spent in the last source.read(), seconds
        self.paused = False
        self._stop_event = threading.Event()
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._rebase = False  # pacing restarts from the next frame (after a pause or change)

    # -- consumer side -------------------------------------------------------------------------
    def get(self, timeout: float | None = 0.0) -> Frame | None:
        """Take the newest frame not taken yet; wait up to `timeout` seconds (None: until a frame
        comes or the thread ends). None when there is no new frame."""
        with self._cond:
            if self._slot is None and timeout != 0.0:
                self._cond.wait_for(lambda: self._slot is not None or self.ended.is_set(), timeout)
            frame, self._slot = self._slot, None
            self._cond.notify_all()
            return frame

    @property
    def exhausted(self) -> bool:
        """True once the thread has ended and its last frame was taken: nothing more will come."""
        with self._cond:
            return self.ended.is_set() and self._slot is None

    def set_pacing(self, realtime: bool, lossless: bool) -> None:
        """Change the pacing while running; real-time pacing restarts from the next frame."""
        with self._cond:
            self.realtime, self.lossless = bool(realtime), bool(lossless)
            self._rebase = True
            self._cond.notify_all()

    def set_paused(self, paused: bool) -> None:
        """Hold (True) or resume a non-live source; pacing restarts from the next frame."""
        with self._cond:
            self.paused = bool(paused)
            self._rebase = True
            self._cond.notify_all()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the thread to end and wait up to `timeout` seconds for it."""
        self._stop_event.set()
        with self._cond:
            self._cond.notify_all()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    # -- producer side -------------------------------------------------------------------------
    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self.lossless:
                self._cond.wait_for(
                    lambda: self._slot is None or self._stop_event.is_set() or not self.lossless
                )
            if self._slot is not None:
                self.frames_dropped += 1
            self._slot = frame
            self._cond.notify_all()

    def run(self) -> None:
        try:
            self.source.open()
            period = 1.0 / self.source.fps if self.source.fps > 0 else 0.0
            start, first = time.monotonic(), 0
            while not self._stop_event.is_set():
                with self._cond:
                    if self.paused and not self.source.is_live:
                        self._cond.wait_for(lambda: not self.paused or self._stop_event.is_set())
                        if self._stop_event.is_set():
                            continue
                    if self._rebase:
                        start, first, self._rebase = time.monotonic(), self.frames_read, False
                    pace = self.realtime and not self.source.is_live and period > 0
                if pace:  # deliver like a camera would: frame n at start + n / fps
                    wait = start + (self.frames_read - first) * period - time.monotonic()
                    if wait > 0 and self._stop_event.wait(wait):
                        self.end_reason = "stopped"
                        break
                t = time.monotonic()
                frame = self.source.read()
                self.read_seconds = time.monotonic() - t
                if frame is None:
                    if self.source.is_live:
                        raise SourceError(f"{self.source.name} stopped delivering frames")
                    self.end_reason = "end of stream"
                    break
                frame.received_s = t + self.read_seconds
                self.frames_read += 1
                self._put(frame)
            else:
                self.end_reason = "stopped"
        except Exception as exc:
            if isinstance(exc, SourceError):
                error = exc
            elif isinstance(exc, DistposeError):
                error = SourceError(str(exc))
            else:  # a driver or decoder failure: still the source's, and still reported
                error = SourceError(f"{self.source.name} failed: {type(exc).__name__}: {exc}")
            self.error = error
            self.end_reason = str(error)
            if self.on_error is not None:
                self.on_error(error)
        finally:
            try:
                self.source.close()
            finally:
                with self._cond:
                    self.ended.set()
                    self._cond.notify_all()
