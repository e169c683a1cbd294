"""The app's one state machine, without Qt: sources (running / ended / failed), adapting, recording
and exporting, with explicit transitions and an event for every change. The window renders
`state` and forwards the user's intents; tests drive it the same way without a screen.

Every intent returns a `Reply` at once: accepted (the outcome arrives as events) or refused with
a reason, in every state; none waits on a thread that may have ended (the live thread lives as
long as the controller: engine.py). Adapt runs under one mechanism (adapting.py,
`Adaptation.supersede(reason)`): Revert, a saved adaptation, a lens change, a source switch and
closing all cancel the running adaptation through its ticket, so its result is refused (never
applied, never saved) whenever it finishes. Recording and export: takes.py.

Threads: intents may come from any thread (the window's); the engine's listener runs on the
live thread; Adapt and export run on their own threads. Observers are called on whichever
thread made the change and should hand the event to their own thread (the window does).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from distpose_app.core.errors import DistposeError
from distpose_app.live import app_data
from distpose_app.live.adapting import Adaptation
from distpose_app.live.app_state import (
    AppState,
    Event,
    MessageBoard,
    Observers,
    Reply,
    accepted,
    refused,
    source_refusal,
)
from distpose_app.live.engine import EngineConfig, LiveEngine
from distpose_app.live.takes import Takes

log = logging.getLogger(__name__)

QUIT_ANSWERS = ("save", "discard", "cancel")
WAIT_S = 10.0  # longest an intent that must finish first (quit) waits for the live thread


@dataclass
class ControllerOptions:
    """device, weights: the lifter (engine.EngineConfig); demo_size (width, height) pixels;
    demo_lens the demo's lens preset or string; every_frame: process every frame of files and
    the demo as fast as possible (no real-time pacing); loop: files start again at their end;
    root_lock: exports keep the root in place;
    max_frames: a scripted run's length (an Event("limit") comes once, then the source pauses)."""

    device: str = "auto"
    weights: str | None = None
    demo_size: tuple[int, int] = (1280, 720)
    demo_lens: str = "moderate"
    every_frame: bool = False
    loop: bool = False
    root_lock: bool = False
    max_frames: int | None = None


class AppController:
    """See the module docstring. `events` (Observers) carries Event(kind, state, data); `state`
    is the latest AppState. Its parts: `adaptation` (adapting.Adaptation: adapt_fn and
    adapt_config may be replaced) and `takes` (takes.Takes: the stopped take, exports).
    publish/post/clear/emit/call_live are for those parts, not for the window."""

    def __init__(self, options: ControllerOptions | None = None, clock=time.monotonic):
        self.options = options or ControllerOptions()
        self.events = Observers()
        self.board = MessageBoard(clock)
        self._lock = threading.RLock()
        o = self.options
        self._state = AppState(demo_lens=o.demo_lens, every_frame=o.every_frame, loop=o.loop,
                               root_lock=o.root_lock)  # fmt: skip
        self.engine: LiveEngine | None = None
        self.adaptation = Adaptation(self)
        self.takes = Takes(self)
        self.frames_processed = 0
        self.buffer_frames = 0
        self.model_name = ""
        self._open_serial = 0
        self._limit_sent = False
        self._lens = self.options.demo_lens  # the demo lens of the last source opened

    # ------------------------------------------------------------------ state and events
    @property
    def state(self) -> AppState:
        with self._lock:
            return self._state

    def publish(self, **changes) -> AppState:
        """Apply `changes` (and the current messages) and tell the observers."""
        with self._lock:
            self._state = self._state.changed(messages=self.board.current(), **changes)
            state = self._state
        logged = {
            k: v for k, v in changes.items() if k not in ("adapt_progress", "export_progress")
        }
        if logged:
            log.debug("state: %s", logged)
        self.events.emit(Event("state", state))
        return state

    def post(self, text: str, level: str = "info", key: str = "", seconds=None, **changes):
        """Post a message (app_state.MessageBoard.post) and publish it together with the state
        `changes` it belongs to, in one event."""
        self.board.post(text, level, key, seconds)
        if level != "info":
            log.log(logging.ERROR if level == "error" else logging.WARNING, "%s", text)
        self.publish(**changes)

    def clear(self, key: str) -> None:
        if self.board.clear(key):
            self.publish()

    def show(self, text: str, level: str = "info", key: str = "window", seconds=None) -> None:
        """A message of the window's own (a refusal's reason, "cameras found"), with the same
        lifetimes as the controller's (app_state.MessageBoard)."""
        self.post(text, level, key, seconds)

    def emit(self, kind: str, data=None) -> None:
        self.events.emit(Event(kind, self.state, data))

    def call_live(self, fn, done=None) -> bool:
        engine = self.engine
        return engine is not None and engine.call(fn, done)

    def call_live_and_wait(self, fn, timeout: float = WAIT_S):
        """Run fn(engine) on the live thread and return its result (or the exception it
        raised); TimeoutError when it does not answer within `timeout` seconds."""
        box, done = [], threading.Event()

        def answer(result):
            box.append(result)
            done.set()

        if not self.call_live(fn, answer):
            return DistposeError("the live thread has stopped")
        if not done.wait(timeout):
            return TimeoutError(f"the live thread did not answer within {timeout:.0f} s")
        return box[0]

    # ------------------------------------------------------------------ sources
    def open_source(self, spec: str, source=None) -> Reply:
        """Run `spec` ("demo", a camera index, a video path; or the ready FrameSource
        `source`). The first call starts the live thread (loading the lifter); later ones
        continue the same session: the take goes on after a gap, a running adaptation is
        cancelled, adapted weights are reverted (they were for the previous camera). A video
        file that cannot be read is refused, naming it, and the current source runs on."""
        state = self.state
        if state.closed:
            return refused("the app is closing")
        spec = str(spec)
        if source is None and app_data.spec_kind(spec) == "file":
            problem = _probe_video(spec)
            if problem:
                return refused(problem)
        if self.engine is None:
            self._start_engine()
        self.adaptation.supersede("the source changed")
        with self._lock:
            self._open_serial += 1
            serial = self._open_serial
        lens = state.demo_lens
        # Adapted weights belong to the camera (and lens) they were adapted on.
        other = spec != state.spec or source is not None or (spec == "demo" and lens != self._lens)
        revert = state.adapted and other
        self._lens = lens

        def run(engine: LiveEngine):
            if revert and engine.pipeline is not None:
                engine.pipeline.revert()
                self.adaptation.live_path = None
            return engine.open_source(spec, source, lens)

        self.buffer_frames = 0
        self.publish(
            source="opening", spec=spec, source_kind=app_data.spec_kind(spec), source_error="",
            paused=False, adapted=False if revert else state.adapted,
        )  # fmt: skip
        if revert:
            self.post("The adaptation was for the previous source: back to unadapted.", key="adapt")
        self.call_live(run, lambda result: self._source_opened(serial, result))
        return accepted(f"opening {app_data.describe_spec(spec)}")

    def _start_engine(self) -> None:
        o = self.options
        config = EngineConfig(o.device, o.weights, o.demo_size, realtime=not o.every_frame,
                              lossless=o.every_frame)  # fmt: skip
        self.engine = LiveEngine(config, self._on_engine)
        self.engine.loop = self.options.loop
        self.engine.start()

    def _source_opened(self, serial: int, result) -> None:
        if serial != self._open_serial:
            return  # a later choice supersedes this one; its answer will follow
        if isinstance(result, Exception):
            self._source_failed(str(result))
            return
        self._source_running(result)

    def _source_running(self, info) -> None:
        self.publish(
            source="running", spec=info.spec, source_kind=info.kind, title=info.title,
            camera_key=info.camera_key, hfov_deg=info.hfov_deg, source_error="", paused=False,
            saved_adaptation=info.saved_adaptation,
        )  # fmt: skip
        self.clear("source")
        self.clear("end")
        if info.saved_adaptation:
            self.post(f"An adaptation saved for {info.camera_key} exists: Adapt > Use saved "
                       "adaptation (Ctrl+Shift+A)", key="saved", seconds=10.0)  # fmt: skip
        if info.warning:
            self.post(info.warning, "warning", key="saved")
            self.emit("warning", info.warning)

    def _source_failed(self, message: str) -> None:
        kept = " The recording is kept and continues once a source is back." if (
            self.state.recording) else ""  # fmt: skip
        text = f"Source lost: {message}.{kept} Reconnect, or choose another source."
        self.post(text, "error", key="source", source="failed", source_error=message, paused=False)
        if self.options.max_frames is not None:
            self.emit("limit", "failed")

    def reconnect(self) -> Reply:
        state = self.state
        if state.closed:
            return refused("the app is closing")
        if state.source != "failed":
            return refused(source_refusal(state, "reconnect"))
        if self.engine is None or self.engine.source is None:
            return refused("no source to reconnect: choose one")
        self.publish(source="opening")
        self.call_live(lambda e: e.reconnect(), self._source_back)
        return accepted(f"reconnecting {state.spec}")

    def _source_back(self, result) -> None:
        if isinstance(result, Exception):
            self._source_failed(str(result))
        else:
            self._source_running(result)
            self.post(f"Source back: {result.title}", key="source-back")

    def replay(self) -> Reply:
        """A video file (or the demo) again from its start; the take and the Adapt buffer stay."""
        state = self.state
        if state.closed:
            return refused("the app is closing")
        if state.source in ("none", "opening"):
            return refused("no source yet")
        if state.source_kind == "camera":
            return refused("a camera cannot be replayed")
        was = state.source

        def done(result):
            if isinstance(result, Exception):
                self._source_failed(str(result))
                return
            self.publish(source="running", source_error="", paused=False)
            self.clear("source")
            self.clear("end")

        self.publish(source="opening" if was == "failed" else was)
        self.call_live(lambda e: (e.replay(), e.set_paused(False)), done)
        return accepted("playing from the start")

    def set_loop(self, loop: bool) -> Reply:
        """Files start again at their end (a setting: kept across sources). Turning it on at
        the end of a file plays it again."""
        state = self.state
        if state.closed:
            return refused("the app is closing")
        loop = bool(loop)
        if loop == state.loop:
            return refused(f"loop is already {'on' if loop else 'off'}")
        self.call_live(lambda e: setattr(e, "loop", loop))
        self.publish(loop=loop)
        if loop and state.source == "ended":
            self.replay()
        return accepted(f"loop {'on' if loop else 'off'}")

    def set_every_frame(self, every: bool) -> Reply:
        """Process every frame of files and the demo, as fast as the pipeline goes (on), or
        play them in real time, dropping frames the pipeline cannot keep up with (off)."""
        state = self.state
        if state.closed:
            return refused("the app is closing")
        every = bool(every)
        if every == state.every_frame:
            return refused(f"every-frame mode is already {'on' if every else 'off'}")
        self.call_live(lambda e: e.set_pacing(realtime=not every, lossless=every))
        self.publish(every_frame=every)
        note = " (a camera always runs at its own pace)" if state.source_kind == "camera" else ""
        return accepted(f"every frame {'on' if every else 'off'}{note}")

    def set_paused(self, paused: bool) -> Reply:
        state = self.state
        if state.closed:
            return refused("the app is closing")
        paused = bool(paused)
        if state.source != "running":
            return refused(source_refusal(state, "pause"))
        if paused == state.paused:
            return refused("already paused" if paused else "not paused")
        self.call_live(lambda e: e.set_paused(paused))
        self.publish(paused=paused)
        return accepted("paused" if paused else "running")

    def set_demo_lens(self, name: str) -> Reply:
        """The demo's lens; the demo restarts through it when it is the source."""
        state = self.state
        if state.closed:
            return refused("the app is closing")
        self.publish(demo_lens=name)
        if state.spec == "demo" and state.source != "none":
            return self.open_source("demo")
        return accepted(f"demo lens {name}")

    # ------------------------------------------------------------------ lens
    def set_known_lens(self, known: tuple | None) -> Reply:
        """known: None (unknown: Adapt is the remedy), (hfov_deg, Lens, text) or (Intrinsics,
        Lens, text). A lens that does not fit the source (a calibration for another image size)
        is refused on the live thread: an error message stays until a lens is applied."""
        state = self.state
        if state.closed:
            return refused("the app is closing")
        if self.engine is None:
            return refused("no source yet")
        self.adaptation.supersede("the lens changed")
        text = "" if known is None else known[2]

        def done(result):
            if isinstance(result, Exception):
                self.call_live(lambda e: e.set_known_lens(None))
                self.post(f"{result}; the lens is back to unknown", "error", key="lens",
                          known_lens="")  # fmt: skip
                self.emit("warning", f"{result}; the lens is back to unknown")
                return
            self.publish(known_lens=text, hfov_deg=result)
            self.clear("lens")

        self.publish(known_lens=text)
        self.call_live(lambda e: e.set_known_lens(known), done)
        return accepted(f"lens: {text or 'unknown'}")

    def load_calibration(self, path: str) -> Reply:
        """An OpenCV calibration file as the known lens; a bad file is refused with why (and
        the message stays until a lens is applied)."""
        from distpose_app.lens.calibration import load_opencv_calibration

        if self.state.closed:
            return refused("the app is closing")
        try:
            intrinsics, lens = load_opencv_calibration(path)
        except DistposeError as exc:
            self.post(f"calibration {Path(path).name}: {exc}", "error", key="lens")
            return refused(str(exc))
        return self.set_known_lens((intrinsics, lens, f"calibrated: {Path(path).name}"))

    # ------------------------------------------------------------------ delegated intents
    def start_adapt(self) -> Reply:
        """Adapt the lifter to the source's lens from the Adapt buffer, in the background."""
        return self.adaptation.start()

    def cancel_adapt(self) -> Reply:
        return self.adaptation.cancel()

    def revert(self) -> Reply:
        """Back to the unadapted weights; a running adaptation is cancelled."""
        return self.adaptation.revert()

    def use_saved_adaptation(self) -> Reply:
        """The adaptation saved for this camera; a running adaptation is cancelled."""
        return self.adaptation.use_saved()

    def start_recording(self) -> Reply:
        return self.takes.start()

    def stop_recording(self) -> Reply:
        """End the take; it is kept (its recovery file too) until exported or discarded."""
        return self.takes.stop()

    def export(self, bvh_path=None, csv_path=None, confirmed=(), overwrite=False) -> Reply:
        """Write the stopped take as BVH and/or CSV in the background (takes.Takes.export:
        existing files are asked about first)."""
        return self.takes.export(bvh_path, csv_path, confirmed, overwrite)

    def discard_take(self) -> Reply:
        return self.takes.discard()

    def set_root_lock(self, lock: bool) -> Reply:
        """Exports keep the root above the origin (motion in place, height kept) or let it
        travel as the person did (a setting for the next export)."""
        state = self.state
        if state.closed:
            return refused("the app is closing")
        if bool(lock) == state.root_lock:
            return refused(f"root lock is already {'on' if lock else 'off'}")
        self.publish(root_lock=bool(lock))
        return accepted("exports in place" if lock else "exports with root motion")

    def recover_take(self, path) -> Reply:
        """A take a crash left behind (its recovery file) as the take to export."""
        return self.takes.recover(path)

    # ------------------------------------------------------------------ quitting
    def quit(self, answer: str | None = None) -> Reply:
        """Close the app. While recording it asks first (refused with ask=QUIT_ANSWERS):
        "save" stops the take and hands it back (data) to be exported, the app stays open until
        that is done; "discard" stops it, deletes it and closes; "cancel" keeps everything."""
        state = self.state
        if answer is not None and answer not in QUIT_ANSWERS:
            return refused(f"unknown answer {answer!r}: {', '.join(QUIT_ANSWERS)}")
        if answer == "cancel":
            return refused("quit cancelled")
        if state.closed:
            return accepted("closed")
        if state.recording:
            if answer is None:
                return refused("a take is being recorded: save it, discard it, or cancel",
                               ask=QUIT_ANSWERS)  # fmt: skip
            self.publish(recording=False)
            stopped = self.call_live_and_wait(lambda e: e.stop_recording())
            self.takes.stopped(stopped)
            if answer == "save":
                if self.takes.take is None:
                    return refused(f"the take could not be stopped: {stopped}")
                return accepted("export the take, then quit", data=self.takes.take)
            self.takes.discard()
        self.close()
        return accepted("closed")

    def close(self, timeout: float = WAIT_S) -> None:
        """Shut down: a running adaptation is cancelled, an export is never cut off (waited
        for), a take still recording is stopped and kept for recovery, the live thread ends."""
        if self.state.closed:
            return
        self.adaptation.supersede("the app is closing")
        export = self.takes.export_thread
        if export is not None:
            export.join()
        if self.engine is not None:
            if not self.engine.stop(timeout):
                log.error("the live thread did not stop within %.0f s", timeout)
        self.adaptation.join(timeout)
        self.publish(closed=True, recording=False, adapt="idle", source="none")

    # ------------------------------------------------------------------ the live thread's news
    def _on_engine(self, kind: str, payload) -> None:
        """The engine's listener (on the live thread)."""
        if kind == "frame":
            self._on_frame(payload)
        elif kind == "tick":
            if self.board.expire():
                self.publish()
        elif kind == "model":
            self.model_name, device, warning = payload
            self.publish(model_name=self.model_name, device=device)
            if warning:  # weights fallen back to: never silent
                self.post(warning, "warning", key="weights", seconds=30.0)
                self.emit("warning", warning)
        elif kind == "model_failed":
            self.post(f"no lifter: {payload}", "error", key="model", source="failed",
                      source_error=payload)  # fmt: skip
            self.emit("warning", payload)
        elif kind == "source_failed":
            self._source_failed(payload)
        elif kind == "ended":
            self._on_ended()
        elif kind == "looped":
            self.post(f"{self.state.title.split(' — ')[0]}: from the start (loop)", key="end",
                       seconds=2.0)  # fmt: skip
        elif kind == "notice":
            self._on_notice(*payload)

    def _on_frame(self, frame) -> None:
        self.frames_processed += 1
        self.buffer_frames = frame.buffer_frames
        adapted = frame.extra.get("adapted")
        if adapted is not None and adapted != self.state.adapted:
            self.publish(adapted=bool(adapted))
        self.emit("frame", frame)
        limit = self.options.max_frames
        if limit is not None and self.frames_processed >= limit and not self._limit_sent:
            self._limit_sent = True
            self.engine.set_paused(True)  # on the live thread already
            self.emit("limit", "done")

    def _on_ended(self) -> None:
        """A file reached its end (loop off): the take stops there, stats are cleared."""
        engine = self.engine
        if engine.pipeline is not None:
            engine.pipeline.stats.reset()
        self.post("End of the file: Replay (Ctrl+Home), or turn on Loop.", key="end", seconds=8.0,
                  source="ended", paused=False)  # fmt: skip
        if self.state.recording:
            self.publish(recording=False)
            try:
                stopped = engine.stop_recording()  # on the live thread already
            except Exception as exc:  # shown, never lost silently
                stopped = exc
            self.takes.stopped(stopped, "recording stopped at the end of the file")
        if self.options.max_frames is not None:
            self.emit("limit", "ended")

    def _on_notice(self, kind: str, message: str) -> None:
        if kind == "recovery":
            self.post(f"crash recovery off: {message}", "error", key="recovery")
            return
        live_path = self.adaptation.live_path
        if "diverged" in message and live_path is not None:
            # the adapted weights diverged and were reverted: never offer them again
            live_path.unlink(missing_ok=True)
            self.adaptation.live_path = None
            message += "; its saved copy was deleted"
            self.post(message, "warning", key="adapt", saved_adaptation=False)
            return
        self.post(message, "warning", key="adapt")


def _probe_video(path: str) -> str:
    """Why `path` is not a video OpenCV can read (missing, empty, a folder, not a video), or
    "" when it is (opening reads one frame: milliseconds)."""
    from distpose_app.live.capture import VideoFileSource

    probe = VideoFileSource(path)
    try:
        probe.open()
    except DistposeError as exc:
        return str(exc)
    finally:
        probe.close()
    return ""
