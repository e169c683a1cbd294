"""Screenshots of the app's Demo before and after Adapt, for the docs.

Runs the window on the demo through LENS (as fast as the machine goes), lets the error readout
fill its window (one demo loop), saves OUT/demo_adapt_<lens>_before.png, presses Adapt, waits
for the answer and another loop, saves OUT/demo_adapt_<lens>_after.png, and prints the readout
and Adapt's message at both moments. Needs a display (xvfb-run on a server); uses a temporary
settings folder so that no saved adaptation is picked up.

    xvfb-run -a python scripts/demo_adapt_screenshots.py --lens strong --out docs/img
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LOOP_FRAMES = 600  # one demo loop at 30 fps: a full readout window


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lens", default="strong")
    p.add_argument("--out", default="docs/img")
    p.add_argument("--weights", help="lifter checkpoint (default: the shipped one)")
    args = p.parse_args()
    os.environ["HOME"] = tempfile.mkdtemp(prefix="distpose-shots-")
    os.environ["XDG_CONFIG_HOME"] = os.environ["HOME"]

    import cv2  # noqa: F401  (before Qt: see gui/app.py)
    import mediapipe  # noqa: F401

    os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    os.environ.pop("QT_QPA_FONTDIR", None)
    from PyQt5 import QtCore, QtWidgets

    from distpose_app.gui.main_window import AppOptions, MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    window = MainWindow(AppOptions(source="demo", lens=args.lens, device="cpu",
                                   weights=args.weights, pace=False))  # fmt: skip
    window.resize(1400, 800)
    window.show()
    out = Path(args.out)
    state = {"phase": "before", "mark": 0}

    def frames() -> int:
        return window.controller.frames_processed

    def shot(name: str) -> None:
        path = window.save_screenshot(str(out / f"demo_adapt_{args.lens}_{name}.png"))
        print(f"{name}: readout '{window.status.mpjpe.text()}'; Adapt: "
              f"'{window.adapt_panel.label.text()}' -> {path}", flush=True)  # fmt: skip

    def tick() -> None:
        if state["phase"] == "before" and frames() >= LOOP_FRAMES + 60:
            shot("before")
            window.start_adapt()
            state["phase"] = "adapting"
        elif state["phase"] == "adapting" and window.state.adapt == "idle":
            state["phase"], state["mark"] = "after", frames()
        elif state["phase"] == "after" and frames() >= state["mark"] + LOOP_FRAMES + 60:
            shot("after")
            timer.stop()
            window.close()
            app.exit(0)

    timer = QtCore.QTimer()
    timer.timeout.connect(tick)
    timer.start(100)
    return app.exec_()


if __name__ == "__main__":
    sys.exit(main())
