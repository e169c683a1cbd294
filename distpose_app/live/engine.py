"""The app's live thread: one long-lived thread that owns the lifter, the pipeline and the current
source (a LiveFeed), steps it, and runs the controller's commands between frames.

The thread lives from the controller's start to its close, whatever the source does: after a
file ends or a camera fails it idles, still running commands, so a command can never be queued
onto a loop that has stopped (`call` refuses once the engine is closed, and every queued command
gets its answer, at the latest an EngineClosed error when the engine shuts down).
"""

from __future__ import annotations

import copy
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distpose_app.core.errors import DistposeError, WeightsError
from distpose_app.live import app_data
from distpose_app.live.app_state import LiveFrame

log = logging.getLogger(__name__)

TICK_S = 0.2  # how often the idle loop reports a "tick" (message lifetimes, recovery flushes)


class EngineClosed(DistposeError):
    """The engine has shut down: the command was not run."""


@dataclass
class EngineConfig:
    """device: "auto", "cpu", "cuda[:N]"; weights: a lifter checkpoint (None: the shipped one);
    demo_size: the demo camera's image (width, height) pixels; realtime / lossless: the initial
    pacing of files and the demo (see CaptureThread)."""

    device: str = "auto"
    weights: str | None = None
    demo_size: tuple[int, int] = (1280, 720)
    realtime: bool = True
    lossless: bool = False


@dataclass
class SourceInfo:
    """The source now running: spec as given, kind ("demo", "camera", "file"), title "name —
    W×H @ fps", camera_key (saved adaptations are per key), hfov_deg the horizontal field of
    view the pipeline assumes (the demo's own), saved_adaptation: one saved for this key loads,
    warning: why a saved one was ignored ("" when none), finite: it can end (not a camera)."""

    spec: str
    kind: str
    title: str
    camera_key: str
    hfov_deg: float
    saved_adaptation: bool = False
    warning: str = ""
    finite: bool = False


def _hfov_of(source, default: float) -> float:
    """The source's horizontal field of view in degrees, when it knows it (the demo)."""
    intrinsics = getattr(source, "intrinsics", None)
    if intrinsics is None:
        return default
    return math.degrees(2.0 * math.atan(intrinsics.width / (2.0 * intrinsics.fx)))


class LiveEngine:
    """See the module docstring. `listener(kind, payload)` is called on the live thread:
    "model" (model_name, device, warning) once the lifter is loaded, "model_failed" (message);
    "source" (SourceInfo) when a source runs, "source_failed" (message) when one cannot be
    opened or is lost, "ended" (None) at the end of a file, "looped" (None) when a looping
    file starts again; "frame" (LiveFrame); "notice" ((kind, message)): the pipeline's warnings
    ("warning") and recovery-file problems ("recovery"); "tick" (None) every TICK_S."""

    def __init__(self, config: EngineConfig, listener: Callable[[str, Any], None]):
        self.config = config
        self.listener = listener
        self.pipeline = None
        self.feed = None
        self.source = None  # the last source tried (reconnect retries it)
        self._spec = ""  # its spec
        self.info: SourceInfo | None = None
        self.lost: str | None = None
        self.loop = False
        self.realtime, self.lossless = config.realtime, config.lossless
        self.paused = False
        self.frames_processed = 0
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._accepting = True
        self._accept_lock = threading.Lock()
        self._recovery_error: str | None = None
        self.thread = threading.Thread(target=self._run, name="distpose-live", daemon=True)

    # -- any thread ---------------------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def call(self, fn: Callable[[LiveEngine], Any], done: Callable[[Any], None] | None = None):
        """Run fn(engine) on the live thread between frames; done(result, or the exception it
        raised) is then called there. False (nothing queued, done not called) once the engine
        is closing; otherwise done is called exactly once, with EngineClosed at the latest."""
        with self._accept_lock:
            if not self._accepting:
                return False
            self._commands.put((fn, done))
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the thread to end (the source closes, the pipeline is released) and wait up to
        `timeout` seconds. True when it has ended."""
        self._stop.set()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)
        return not self.thread.is_alive()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # -- the live thread ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._load()
            last_tick = time.monotonic()
            while not self._stop.is_set():
                self._drain()
                stepped = self._step()
                now = time.monotonic()
                if now - last_tick >= TICK_S:
                    last_tick = now
                    if self.pipeline is not None:
                        self.pipeline.recorder.flush_if_due()
                    self.listener("tick", None)
                if not stepped:
                    time.sleep(0.01)
        except Exception:  # a bug: logged with its traceback, the app keeps its window
            log.exception("the live thread failed")
            self.listener("source_failed", "the live thread failed: see the log file")
        finally:
            with self._accept_lock:
                self._accepting = False
            self._shutdown()
            self._drain(EngineClosed("the app is closing"))
            self._closed.set()

    def _load(self) -> None:
        from distpose_app.live.pipeline import LivePipeline

        try:
            model, name, warning = app_data.load_model(self.config.weights)
            self.pipeline = LivePipeline(model, self.config.device)
        except DistposeError as exc:
            log.error("no lifter: %s", exc)
            self.listener("model_failed", str(exc))
            return
        self.listener("model", (name, str(self.pipeline.device), warning))

    def _drain(self, closed: Exception | None = None) -> None:
        while True:
            try:
                fn, done = self._commands.get_nowait()
            except queue.Empty:
                return
            if closed is not None:
                result = closed
            else:
                try:
                    result = fn(self)
                except Exception as exc:  # delivered to the caller, who reports it
                    if not isinstance(exc, DistposeError):
                        log.exception("a command on the live thread failed")
                    result = exc
            if done is not None:
                try:
                    done(result)
                except Exception:
                    log.exception("a command's answer failed")
            self._collect_notices()

    def _step(self) -> bool:
        """Process at most one frame; False when there was nothing to do (idle)."""
        feed = self.feed
        if feed is None or self.lost is not None or self.paused or feed.ended:
            return False
        try:
            item = feed.step()
        except DistposeError as exc:  # SourceError: camera lost, file broken off
            self.lost = str(exc)
            log.warning("source lost: %s", exc)
            self._collect_notices()
            self.listener("source_failed", self.lost)
            return False
        except Exception as exc:  # a bug in processing: logged, reported, the thread lives
            log.exception("processing a frame failed")
            self.lost = f"processing failed: {type(exc).__name__}: {exc}"
            self.listener("source_failed", self.lost)
            return False
        self._collect_notices()
        if item is None:
            return False
        if item is StopIteration:
            if self.loop:
                try:
                    feed.restart()
                except DistposeError as exc:
                    self.lost = str(exc)
                    self.listener("source_failed", self.lost)
                    return False
                self.listener("looped", None)
            else:
                self.listener("ended", None)
            return True
        self.frames_processed += 1
        self.listener("frame", self._frame(item))
        return True

    def _frame(self, result) -> LiveFrame:
        pipeline = self.pipeline
        return LiveFrame(
            image=result.image,
            image_size=tuple(self.feed.source.size),
            keypoints_px=result.keypoints_2d,
            confidence=result.confidence,
            pose_3d=result.pose_3d,
            pose_confidence=result.pose_confidence,
            pose_seen=result.pose_seen,
            mpjpe_mm=result.mpjpe_mm,
            error_readout=result.error_readout,
            buffer_frames=pipeline.buffer_frames,
            recorded_frames=pipeline.recorder.num_frames,
            frame_index=result.index,
            stats=pipeline.stats,
            extra={"adapted": pipeline.is_adapted},
        )

    def _collect_notices(self) -> None:
        if self.pipeline is None:
            return
        for message in self.pipeline.take_warnings():
            self.listener("notice", ("warning", message))
        error = self.pipeline.recorder.recovery_error
        if error and error != self._recovery_error:
            self.listener("notice", ("recovery", error))
        self._recovery_error = error

    def _shutdown(self) -> None:
        if self.feed is not None:
            try:
                self.feed.close()
            except Exception:
                log.exception("closing the source failed")
        if self.pipeline is not None:
            recorder = self.pipeline.recorder
            if recorder.is_recording:  # closed without stopping: keep the take, marked stopped
                try:
                    recorder.stop(keep_recovery=True)
                except Exception:
                    log.exception("stopping the take failed")
            try:
                self.pipeline.close()
            except Exception:
                log.exception("releasing the pipeline failed")

    # -- commands (run on the live thread through call()) -------------------------------------
    def require_pipeline(self):
        if self.pipeline is None:
            raise WeightsError("no lifter is loaded")
        return self.pipeline

    def make_source(self, spec: str, demo_lens: str):
        """An unopened FrameSource for `spec` ("demo", a camera index, a video path)."""
        if spec == "demo":
            from distpose_app.live.demo import DemoSource

            return DemoSource(lens=demo_lens, size=self.config.demo_size)
        from distpose_app.live.capture import open_source

        return open_source(spec)

    def open_source(self, spec: str, source=None, demo_lens: str = "moderate") -> SourceInfo:
        """Continue with `spec` (or the ready FrameSource `source`): weights and the take are
        kept, the recording goes on after a gap, the stream (and so a running adaptation's
        result) is new. SourceError when it cannot be opened: the engine then has no running
        source and `reconnect` retries it."""
        from distpose_app.live.feed import LiveFeed

        pipeline = self.require_pipeline()
        source = source if source is not None else self.make_source(spec, demo_lens)
        self.source, self._spec = source, spec
        self.info = None
        try:
            if self.feed is None:
                self.feed = LiveFeed(source, pipeline, self.realtime, self._lossless(source))
            else:
                self.feed.switch_source(source)
                self.feed.set_pacing(self.realtime, self._lossless(source))
        except DistposeError as exc:
            self.lost = str(exc)
            raise
        self.lost = None
        self.paused = False
        self.feed.set_paused(False)
        self.info = self._describe(spec, source)
        return self.info

    def reconnect(self) -> SourceInfo:
        """Reopen the current source (a camera plugged back in); SourceError if it cannot."""
        if self.source is None:
            raise DistposeError("no source to reconnect: choose one")
        spec = self._spec
        if self.feed is None:
            return self.open_source(spec, self.source)
        try:
            self.feed.reconnect()
        except DistposeError as exc:
            self.lost = str(exc)
            raise
        self.lost = None
        self.info = self._describe(spec, self.source)
        return self.info

    def replay(self) -> SourceInfo | None:
        """The current file (or finite source) again from its start, same stream."""
        if self.feed is None:  # the first source never opened: try it again
            return self.reconnect()
        try:
            self.feed.restart()
        except DistposeError as exc:
            self.lost = str(exc)
            raise
        self.lost = None
        return self.info

    def set_pacing(self, realtime: bool, lossless: bool) -> None:
        """Real-time pacing and lossless reading for files and the demo (a camera is never
        held back: its driver would queue frames and the latency would grow)."""
        self.realtime, self.lossless = realtime, lossless
        if self.feed is not None:
            self.feed.set_pacing(realtime, self._lossless(self.feed.source))

    def _lossless(self, source) -> bool:
        return self.lossless and not source.is_live

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if self.feed is not None:
            self.feed.set_paused(paused)

    def _describe(self, spec: str, source) -> SourceInfo:
        """Title and camera key of `source`; checks its saved adaptation (one that no longer
        loads is reported in `warning` and ignored)."""
        width, height = source.size
        key = app_data.camera_key(source.name, (width, height))
        state, message = app_data.load_adaptation(key, self.pipeline.model)
        warning = ""
        if state is None and app_data.saved_adaptation_path(key).exists():
            warning = message
        return SourceInfo(
            spec=spec,
            kind=app_data.spec_kind(spec),
            title=f"{source.name} — {width}×{height} @ {source.fps:g} fps",
            camera_key=key,
            hfov_deg=_hfov_of(source, self.pipeline.hfov_deg),
            saved_adaptation=state is not None,
            warning=warning,
            finite=not source.is_live,
        )

    def set_known_lens(self, known: tuple | None) -> float:
        """known: None (unknown lens), (hfov_deg, Lens, text) or (Intrinsics, Lens, text).
        Returns the horizontal field of view now assumed, degrees."""
        pipeline = self.require_pipeline()
        if known is None:
            pipeline.set_known_lens(None)
        else:
            first, lens, _ = known
            if isinstance(first, float):
                pipeline.hfov_deg = first
                pipeline.set_known_lens(lens, None)
            else:
                pipeline.set_known_lens(lens, first)
        if known is not None and not isinstance(known[0], float):
            intrinsics = known[0]
            return math.degrees(2.0 * math.atan(intrinsics.width / (2.0 * intrinsics.fx)))
        return _hfov_of(self.source, pipeline.hfov_deg) if self.source else pipeline.hfov_deg

    def use_saved_adaptation(self) -> str:
        """Apply the adaptation saved for this camera -> its description; WeightsError with the
        reason when it no longer loads (the current weights stay)."""
        pipeline = self.require_pipeline()
        if self.info is None:
            raise DistposeError("no source: its saved adaptation is unknown")
        state, message = app_data.load_adaptation(self.info.camera_key, pipeline.model)
        if state is None:
            raise WeightsError(message)
        pipeline.set_model_state(state)
        return message

    def model_state(self) -> dict:
        """A copy of the live weights (tests compare them)."""
        return copy.deepcopy(self.require_pipeline().model.state_dict())

    def start_recording(self, model_name: str) -> None:
        pipeline = self.require_pipeline()
        lens = "known" if pipeline.known_lens is not None else "unknown"
        state = "adapted" if pipeline.is_adapted else "unadapted"
        pipeline.recorder.start(
            {
                "source": self.info.title if self.info else "",
                "lens": {"state": f"{lens}, {state}"},
                "model": {"name": model_name},
            }
        )
        self._collect_notices()  # a recovery file that could not be created: say so at once

    def stop_recording(self):
        """(Recording, its recovery file or None, the recorder): the file is kept until the take
        is exported (`Recorder.discard_recovery`), so an unsaved take survives a crash."""
        recorder = self.require_pipeline().recorder
        recording = recorder.stop(keep_recovery=True)
        return recording, recorder.recovery_path, recorder
