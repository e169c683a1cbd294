"""The app's state as plain data (no Qt): what the controller publishes and the window renders,
the answer every intent gets, messages with a lifetime, and a small observer list for events."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

log = logging.getLogger(__name__)

# Source states. "none": nothing opened yet; "opening": the live thread is opening it;
# "running": frames come (possibly paused); "ended": a file (or finite source) reached its end;
# "failed": it could not be opened or was lost (a camera unplugged).
SOURCE_STATES = ("none", "opening", "running", "ended", "failed")
# Adaptation states: "idle", "starting" (the live thread takes the buffer's snapshot),
# "adapting" (the background job runs), "cancelling" (asked to stop; its result will be refused).
ADAPT_STATES = ("idle", "starting", "adapting", "cancelling")

# How long transient messages stay, seconds.
INFO_SECONDS = 6.0
WARNING_SECONDS = 15.0


@dataclass(frozen=True)
class Reply:
    """The answer to an intent: accepted (`ok`), or refused with a `reason` the window can show.
    `ask`: a refusal that a question can resolve (quit while recording: "save", "discard",
    "cancel"); `data`: what an accepted intent hands back (the take to export on quit)."""

    ok: bool
    reason: str = ""
    ask: tuple[str, ...] = ()
    data: object = None

    def __bool__(self) -> bool:
        return self.ok


def accepted(reason: str = "", data: object = None) -> Reply:
    return Reply(True, reason, data=data)


def refused(reason: str, ask: tuple[str, ...] = ()) -> Reply:
    return Reply(False, reason, ask)


@dataclass(frozen=True)
class Message:
    """A line for the status area. level: "info" (transient), "warning" (transient, longer) or
    "error" (stays until its condition is gone: `MessageBoard.clear(key)`). key: what it is
    about ("source", "lens", "adapt", "recording", "export", ...): a new message with the same
    key replaces the old. expires: time.monotonic() when it goes, or None (an error)."""

    text: str
    level: str = "info"
    key: str = ""
    expires: float | None = None


class MessageBoard:
    """The current messages, newest last, one per key. Thread-safe; `clock` is injectable so
    tests control time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._messages: list[Message] = []

    def post(self, text: str, level: str = "info", key: str = "", seconds: float | None = None):
        """Add a message (replacing one with the same non-empty key). seconds: its lifetime
        (default INFO_SECONDS for info, WARNING_SECONDS for warnings, forever for errors)."""
        if seconds is None and level != "error":
            seconds = WARNING_SECONDS if level == "warning" else INFO_SECONDS
        expires = None if seconds is None else self._clock() + seconds
        message = Message(text, level, key, expires)
        with self._lock:
            self._messages = [m for m in self._messages if not key or m.key != key]
            self._messages.append(message)
        return message

    def clear(self, key: str) -> bool:
        """The condition behind `key` is gone: drop its message. True when one was dropped."""
        with self._lock:
            kept = [m for m in self._messages if m.key != key]
            changed = len(kept) != len(self._messages)
            self._messages = kept
        return changed

    def expire(self) -> bool:
        """Drop messages whose time is up. True when any was dropped."""
        now = self._clock()
        with self._lock:
            kept = [m for m in self._messages if m.expires is None or m.expires > now]
            changed = len(kept) != len(self._messages)
            self._messages = kept
        return changed

    def current(self) -> tuple[Message, ...]:
        with self._lock:
            return tuple(self._messages)


@dataclass(frozen=True)
class AppState:
    """A snapshot of everything the window shows apart from the frames themselves.

    source: one of SOURCE_STATES; source_kind "demo", "camera", "file" or ""; spec the source
    as the user gave it; title "name — W×H @ fps"; source_error why it failed (source
    "failed"). paused; loop (files start again at their end); every_frame (files and the demo
    are read as fast as the pipeline goes, every frame processed, instead of in real time).
    adapt: one of ADAPT_STATES, adapt_progress (step, total), adapt_frames the buffer it adapts
    on; adapted: adapted weights are live; saved_adaptation: one saved for this camera loads.
    recording; take_frames: frames of the stopped take ready to export (0: none); root_lock:
    exports keep the root in place (export.ExportOptions.root_lock); exporting, export_progress
    in [0, 1]. known_lens: its description, or "" (unknown: Adapt is the
    remedy); hfov_deg: the source's horizontal field of view as the pipeline assumes it,
    degrees (the demo's own). messages: the current Message list. closed: the controller is
    shut down: every intent is refused. serial: increases with every change.
    """

    source: str = "none"
    source_kind: str = ""
    spec: str = ""
    title: str = ""
    source_error: str = ""
    model_name: str = ""
    device: str = ""
    camera_key: str = ""
    demo_lens: str = "moderate"
    paused: bool = False
    loop: bool = False
    every_frame: bool = False
    adapt: str = "idle"
    adapt_progress: tuple[int, int] = (0, 0)
    adapt_frames: int = 0
    adapted: bool = False
    saved_adaptation: bool = False
    recording: bool = False
    take_frames: int = 0
    root_lock: bool = False
    exporting: bool = False
    export_progress: float = 0.0
    known_lens: str = ""
    hfov_deg: float = 70.0
    messages: tuple[Message, ...] = ()
    closed: bool = False
    serial: int = 0

    @property
    def is_file(self) -> bool:
        return self.source_kind == "file"

    @property
    def adapting(self) -> bool:
        return self.adapt != "idle"

    def changed(self, **changes) -> AppState:
        return replace(self, serial=self.serial + 1, **changes)


def source_refusal(state: AppState, what: str) -> str:
    """Why `what` ("pause", "record", "adapt", "reconnect") cannot be done in this source state."""
    if state.source in ("none", "opening"):
        return f"cannot {what}: no source is running yet"
    if state.source == "failed":
        detail = f" ({state.source_error})" if state.source_error else ""
        return f"cannot {what}: the source is lost{detail}; reconnect or choose another"
    if state.source == "ended":
        return f"cannot {what}: the file has ended; Replay (Ctrl+Home) or turn on Loop"
    return f"cannot {what}: the source is running"


@dataclass
class LiveFrame:
    """One processed frame for the window. image: BGR (H, W, 3) uint8 or None (the demo without
    a picture); image_size (width, height) pixels; keypoints_px (17, 2) pixels or None (no
    person); confidence (17,); pose_3d (17, 3) metres camera axes, root-relative, or None;
    pose_confidence (17,) and pose_seen (17,) bool of the pose's own frame (it trails the input
    by the lifter's lookahead); mpjpe_mm against the demo's ground truth, else None;
    error_readout: the steady readout of it (`demo.ErrorReadout`: a moving average, with the
    unadapted weights' figure beside it after Adapt), "" without ground truth.
    stats_text: the per-stage timing line; buffer_frames: frames in the Adapt buffer;
    recorded_frames: rows in the take being recorded; frame_index: the input frame's number;
    stats: the pipeline's StageStats (thread-safe: the window adds its "draw" time)."""

    image: object
    image_size: tuple[int, int]
    keypoints_px: object
    confidence: object
    pose_3d: object
    pose_confidence: object = None
    pose_seen: object = None
    mpjpe_mm: float | None = None
    error_readout: str = ""
    buffer_frames: int = 0
    recorded_frames: int = 0
    frame_index: int = 0
    stats: object = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """What observers receive. kind: "state" (the AppState changed: render `state`), "frame"
    (data: a LiveFrame), "take" (a take was stopped: data the Recording), "exported" (data:
    export_recording's result dict), "warning" (data: a message that deserves a dialog, such
    as weights fallen back to)."""

    kind: str
    state: AppState
    data: object = None


class Observers:
    """A list of callbacks fn(event). emit() calls them on the calling thread (the live thread,
    a worker); a callback that raises is logged and does not stop the others."""

    def __init__(self):
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[Event], None]] = []

    def connect(self, callback: Callable[[Event], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def disconnect(self, callback: Callable[[Event], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def emit(self, event: Event) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(event)
            except Exception:
                log.exception("an observer of %r events failed", event.kind)
