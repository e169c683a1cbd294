"""Hands the controller's events (called on the live thread and on worker threads) to the GUI
thread as Qt signals. Frames and state changes are coalesced: while one is waiting to be
handled, a newer one replaces it instead of queueing up, so a slow window drops frames and the
latency never grows; the window always renders the controller's latest state."""

from __future__ import annotations

import threading

from PyQt5 import QtCore

from distpose_app.live.app_state import Event


class ControllerBridge(QtCore.QObject):
    """state_changed(AppState): render it; frame_ready(): take the newest frame with
    take_frame(); event(Event): anything else ("take", "exported", "export_failed", "warning",
    "limit"), in order."""

    state_changed = QtCore.pyqtSignal(object)
    frame_ready = QtCore.pyqtSignal()
    event = QtCore.pyqtSignal(object)

    def __init__(self, controller, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self._lock = threading.Lock()
        self._frame = None
        self._state_pending = False
        self.frames_replaced = 0  # frames the window never drew (a newer one came first)
        self.state_changed.connect(self._state_delivered)
        controller.events.connect(self._on_event)

    def detach(self) -> None:
        self.controller.events.disconnect(self._on_event)

    def _on_event(self, event: Event) -> None:  # any thread
        if event.kind == "frame":
            with self._lock:
                waiting = self._frame is not None
                if waiting:
                    self.frames_replaced += 1
                self._frame = event.data
            if not waiting:
                self.frame_ready.emit()
        elif event.kind == "state":
            with self._lock:
                waiting, self._state_pending = self._state_pending, True
            if not waiting:
                self.state_changed.emit(event.state)
        else:
            self.event.emit(event)

    def _state_delivered(self, _state) -> None:
        with self._lock:
            self._state_pending = False

    def take_frame(self):
        """The newest frame not drawn yet, or None."""
        with self._lock:
            frame, self._frame = self._frame, None
        return frame
