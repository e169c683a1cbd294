"""One-shot background jobs of the window itself (listing cameras) in a `TaskThread` that reports
by queued signals. The live loop, Adapt and export belong to the controller
(distpose_app.live.controller), which runs them on its own threads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PyQt5 import QtCore

from distpose_app.core.errors import DistposeError

log = logging.getLogger(__name__)


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
            log.exception("a background job failed")
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.succeeded.emit(result)
