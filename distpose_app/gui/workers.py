"""Background threads. Nothing slow runs on the GUI thread: the live loop (capture, MediaPipe,
lifter) runs in `LiveWorker` on its own QThread, and one-shot jobs (Adapt, export, camera
listing) run in `TaskThread`. Both talk to the window only through queued signals.

The window never touches the live session's model from its own thread: it queues a command
(`LiveWorker.call_soon`) that the live thread runs between two frames.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PyQt5 import QtCore

from distpose_app.core.errors import DistposeError


class LiveWorker(QtCore.QObject):
    """Runs `session.step()` in a loop on a QThread until `stop()`.

    `open_session()` is called on the worker thread (opening a camera or loading weights can
    take a while) and must return an object with `step() -> update | None` (None: no new frame
    yet), `close()`, and whatever the queued commands use. A new update is emitted only once the
    window has drawn the previous one (`ack()`): when the GUI falls behind, frames are dropped
    here instead of piling up in the event queue, so latency never grows.
    """

    opened = QtCore.pyqtSignal(object)  # the session, once open
    update = QtCore.pyqtSignal(object)  # one processed frame
    failed = QtCore.pyqtSignal(str)  # a message for the user; the loop has stopped
    finished = QtCore.pyqtSignal(str)  # why the loop ended ("end of video", "stopped", ...)
    notice = QtCore.pyqtSignal(str, str)  # (kind, message): source lost, pipeline warnings...

    def __init__(self, open_session: Callable[[], Any], max_frames: int | None = None):
        super().__init__()
        self._open_session = open_session
        self._max_frames = max_frames
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._drawn = threading.Event()
        self._drawn.set()
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self.frames_processed = 0
        self.frames_dropped_for_gui = 0
        self.session = None
        self.ended = False  # the loop is over: commands queued now never run

    # -- called from the GUI thread ---------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def set_paused(self, paused: bool) -> None:
        if paused:
            self._paused.set()
        else:
            self._paused.clear()

    def ack(self) -> None:
        """The window has drawn the last update: the next one may be emitted."""
        self._drawn.set()

    def call_soon(self, fn: Callable[[Any], Any], done: Callable[[Any], None] | None = None):
        """Run `fn(session)` on the live thread between frames; `done(result)` is then
        delivered through `command_done` (connected by the caller)."""
        self._commands.put((fn, done))

    command_done = QtCore.pyqtSignal(object, object)  # (callback, result or exception)

    # -- the live thread ---------------------------------------------------------------------
    def _drain_commands(self) -> None:
        while True:
            try:
                fn, done = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                result = fn(self.session)
            except Exception as exc:  # delivered to the caller, who reports it
                result = exc
            if done is not None:
                self.command_done.emit(done, result)
            self._emit_notices()

    def _emit_notices(self) -> None:
        take = getattr(self.session, "take_notices", None)
        if take is not None:
            for item in take():
                self.notice.emit(item.kind, item.message)

    @QtCore.pyqtSlot()
    def run(self) -> None:
        reason = "stopped"
        try:
            self.session = self._open_session()
            self.opened.emit(self.session)
            while not self._stop.is_set():
                self._drain_commands()
                if self._paused.is_set():
                    time.sleep(0.02)
                    continue
                item = self.session.step()
                self._emit_notices()
                if item is None:
                    time.sleep(0.002)  # no new frame yet; the capture thread is filling the slot
                    continue
                if item is StopIteration:
                    reason = "end of the video"
                    break
                self.frames_processed += 1
                if self._drawn.is_set():
                    self._drawn.clear()
                    self.update.emit(item)
                else:
                    self.frames_dropped_for_gui += 1
                if self._max_frames is not None and self.frames_processed >= self._max_frames:
                    reason = f"{self.frames_processed} frames done"
                    break
            self._drain_commands()
        except DistposeError as exc:
            self.failed.emit(str(exc))
            reason = "error"
        except Exception as exc:  # a bug: show it rather than dying silently in a thread
            traceback.print_exc()
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            reason = "error"
        finally:
            self.ended = True
            if self.session is not None:
                try:
                    self.session.close()
                except Exception:
                    traceback.print_exc()
            self.finished.emit(reason)


def start_live(worker: LiveWorker) -> QtCore.QThread:
    """Move `worker` onto a new QThread and start its loop; the thread quits when it ends."""
    thread = QtCore.QThread()
    thread.setObjectName("distpose-live")
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # Direct: the QThread object lives on the GUI thread, which may be blocked in wait() for
    # exactly this; quit() is thread-safe.
    worker.finished.connect(thread.quit, QtCore.Qt.DirectConnection)
    thread.start()
    return thread


class TaskThread(QtCore.QThread):
    """One background job `fn(progress, should_cancel) -> result`.

    progress(step, total) and cancel() are thread-safe; the result or the error message arrives
    by signal on the GUI thread. DistposeError messages are shown as they are; other exceptions
    are bugs and carry their type."""

    progress = QtCore.pyqtSignal(int, int)
    succeeded = QtCore.pyqtSignal(object)
    failed = QtCore.pyqtSignal(str)

    def __init__(
        self,
        fn: Callable[[Callable[[int, int], None], Callable[[], bool]], Any],
        parent: QtCore.QObject | None = None,
    ):
        # With a parent, Qt owns the thread object: it outlives the Python reference until
        # run() has really returned (deleting a running QThread aborts the process).
        super().__init__(parent)
        self._fn = fn
        if parent is not None:
            self.finished.connect(self.deleteLater)
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:
        try:
            result = self._fn(lambda s, t: self.progress.emit(int(s), int(t)), self._cancel.is_set)
        except DistposeError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:
            traceback.print_exc()
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.succeeded.emit(result)
