"""`distpose-app` (and `python main.py`): the live window.

distpose-app                              the last source, or the demo on first launch
distpose-app --source demo --lens strong  the demo through a strong barrel lens
distpose-app --source 0                   camera 0
distpose-app --source walk.avi            a video file
distpose-app --frames 90 --screenshot shot.png   run 90 frames, save the window, exit 0
distpose-app -v                           also log to the terminal (-vv: debug)

The log file (rotated) is in the app's data folder; Help > About names it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from distpose_app import __version__
from distpose_app.core.errors import DistposeError
from distpose_app.core.validate import positive_int


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line and exit code 2, never a traceback."""

    def error(self, message: str) -> None:  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="distpose-app", description="Live 3D human pose from one webcam.")
    p.add_argument("--version", action="version", version=f"distpose {__version__}")
    p.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="log to the terminal as well as the log file (-vv: debug messages)",
    )  # fmt: skip
    p.add_argument(
        "--source",
        help="'demo', a camera index (0, 1, ...) or a video file (default: the last one used, "
        "or the demo)",
    )
    p.add_argument(
        "--lens",
        help="the demo's lens: none, mild, moderate, strong, pincushion, fisheye, or a lens "
        "string such as brown:-0.3,0.06 (demo only)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    p.add_argument(
        "--weights",
        metavar="PATH",
        help="a lifter checkpoint instead of the shipped one (if it does not load, the shipped "
        "weights are used and the window says why)",
    )
    p.add_argument("--frames", type=positive_int, metavar="N", help="process N frames, then quit")
    p.add_argument(
        "--screenshot", metavar="PNG", help="after --frames N (default 90), save the window here"
    )
    p.add_argument(
        "--no-pace",
        action="store_true",
        help="read video files and the demo as fast as possible instead of in real time",
    )
    return p


def _check_args(args) -> None:
    """Validate what can be checked before any window opens (DistposeError: one line)."""
    if args.frames is not None and args.frames < 1:
        raise DistposeError(f"--frames must be at least 1, got {args.frames}")
    if args.screenshot and args.frames is None:
        args.frames = 90
    if args.lens is not None:
        from distpose_app.lens.strings import parse_lens

        if args.source not in (None, "demo"):
            raise DistposeError("--lens sets the demo's lens; use it with --source demo")
        parse_lens(args.lens, max_radius=None)
    if args.source is not None and args.source != "demo" and not args.source.strip().isdigit():
        # Open the video once here: a missing, empty or unreadable file is refused in one line
        # with exit code 2 before a window opens, instead of falling back to the demo.
        from distpose_app.live.capture import open_source

        source = open_source(args.source)
        source.open()
        source.close()
    # --weights that do not load (missing, truncated, another model) are not an error here: the
    # window falls back to the shipped weights and says so (session.load_model).
    from distpose_app.lifter.model import resolve_device

    resolve_device(args.device)


def main(argv: list[str] | None = None) -> int:
    """Start the window; returns the exit code (0, or 2 for bad arguments or a failed source
    in a scripted --frames run)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed its one line (or --help / --version)
        return int(exc.code or 0)
    try:
        _check_args(args)
    except DistposeError as exc:
        print(f"distpose-app: error: {exc}", file=sys.stderr)
        return 2

    # OpenCV (and mediapipe, which imports it) points Qt at cv2's own plugins, and a
    # QApplication created after that aborts under X: import them first, then drop the
    # variables (../shared/NOTES.md). mediapipe is imported here, not later on the live thread.
    import cv2  # noqa: F401
    import mediapipe  # noqa: F401

    os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    os.environ.pop("QT_QPA_FONTDIR", None)

    from PyQt5 import QtCore, QtWidgets

    from distpose_app.core.logs import configure_logging
    from distpose_app.gui.main_window import AppOptions, MainWindow
    from distpose_app.live.app_data import APPLICATION, ORGANISATION, log_path

    configure_logging(args.verbose, log_path(), stderr=True)

    QtCore.QCoreApplication.setOrganizationName(ORGANISATION)
    QtCore.QCoreApplication.setApplicationName(APPLICATION)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl+C in the terminal quits
    options = AppOptions(
        source=args.source,
        lens=args.lens,
        device=args.device,
        weights=args.weights,
        frames=args.frames,
        screenshot=args.screenshot,
        pace=not args.no_pace,
    )
    window = MainWindow(options)
    window.show()
    code = app.exec_()
    return int(code or window.exit_code)


if __name__ == "__main__":
    sys.exit(main())
