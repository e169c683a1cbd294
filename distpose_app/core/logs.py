"""Logging set-up shared by the window and the CLI: standard `logging`, a rotating log file for the
window (started from a desktop menu it has no terminal), stderr for `distpose -v`."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"
LOG_BYTES = 1_000_000  # one file's size before it rotates
LOG_BACKUPS = 3  # rotated files kept beside it (distpose-app.log.1 ... .3)
_HANDLER_TAG = "_distpose_handler"  # marks the handlers added here, so a second call replaces them


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test's capture, a redirected stream),
    never to a stream that has since been closed."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(
    verbosity: int = 0, log_file: str | Path | None = None, stderr: bool = True
) -> Path | None:
    """Route the `distpose_app` loggers: to `log_file` (rotated at LOG_BYTES, LOG_BACKUPS kept,
    everything from INFO up, tracebacks included) and, with `stderr`, to the terminal (warnings
    and errors; -v: INFO; -vv: DEBUG). Returns the log file, or None when it cannot be created
    (the app still runs; the reason goes to stderr). Calling again replaces the handlers."""
    root = logging.getLogger("distpose_app")
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_TAG, False)]:
        root.removeHandler(handler)
        handler.close()
    terminal_level = (logging.WARNING, logging.INFO)[min(verbosity, 1)]
    if verbosity >= 2:
        terminal_level = logging.DEBUG
    levels = [terminal_level] if stderr else []
    path = None
    if log_file is not None:
        path = Path(log_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
            )
        except OSError as exc:
            print(f"distpose: no log file {path}: {exc.strerror or exc}", file=sys.stderr)
            path = None
        else:
            handler.setLevel(min(logging.INFO, terminal_level))
            handler.setFormatter(logging.Formatter(FORMAT))
            setattr(handler, _HANDLER_TAG, True)
            root.addHandler(handler)
            levels.append(handler.level)
    if stderr:
        handler = _StderrHandler()
        handler.setLevel(terminal_level)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        setattr(handler, _HANDLER_TAG, True)
        root.addHandler(handler)
    root.setLevel(min(levels) if levels else logging.WARNING)
    return path
