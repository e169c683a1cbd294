"""The app's workflow screenshots for docs/app.md, taken from the running app (real MediaPipe, the
shipped lifter, a real video file) with widget.grab() and, for a dialog over the window, the
screen. Run under Xvfb:

    xvfb-run -a -s "-screen 0 1400x900x24" python scripts/app_screenshots.py --out docs/img

The clip is made here from scikit-image's cameraman photo (a real photo of a person that ships
with the package): 45 frames at 30 fps with a slow pan and zoom, written as an .mp4.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2  # before Qt: it points Qt at its own plugins, dropped below
import numpy as np

os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
os.environ.pop("QT_QPA_FONTDIR", None)


def make_clip(path: Path, frames: int = 45, size: int = 480) -> Path:
    """A short clip of the cameraman photo with a slow pan and zoom (so frames differ)."""
    from skimage import data

    photo = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (size, size))
    for i in range(frames):
        t = i / max(frames - 1, 1)
        scale = size / photo.shape[0] * (1.0 + 0.06 * t)
        matrix = cv2.getRotationMatrix2D((photo.shape[1] / 2, photo.shape[0] / 2), 0, scale)
        matrix[:, 2] += (size - photo.shape[1] * scale) / 2 + 8 * np.sin(2 * np.pi * t)
        writer.write(cv2.warpAffine(photo, matrix, (size, size), borderMode=cv2.BORDER_REFLECT))
    writer.release()
    return path


def wait(app, predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def settle(app, seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img", help="folder for the PNGs")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="distpose-shots-"))
    os.environ["DISTPOSE_APP_DATA"] = str(work / "appdata")  # never the user's settings
    os.environ["DISTPOSE_DATA_DIR"] = str(work / "data")
    clip = make_clip(work / "cameraman.mp4")

    from PyQt5 import QtWidgets

    from distpose_app.gui.dialogs import quit_prompt
    from distpose_app.gui.main_window import AppOptions, MainWindow

    app = QtWidgets.QApplication(sys.argv[:1])
    options = AppOptions(source=str(clip), device=args.device, pace=False)
    win = MainWindow(options)
    win.ask_quit = lambda frames: "discard"
    win.resize(1280, 720)
    win.move(0, 0)
    win.show()
    c = win.controller

    # 1. The end of the file (loop off).
    wait(app, lambda: c.state.source == "ended", 120, "the end of the clip")
    settle(app)
    win.grab().save(str(out / "app_end_of_file.png"))
    print("end of file:", c.frames_processed, "frames, buffer", c.buffer_frames)

    # 2. Adapt running on the looped clip (real lens adaptation, in the background).
    win.source_panel.loop_button.click()
    wait(app, lambda: c.buffer_frames >= 100, 120, "a full Adapt buffer")
    win.act_adapt.trigger()
    wait(app, lambda: c.state.adapt == "adapting" and c.state.adapt_progress[1] > 0, 120,
         "Adapt's first steps")  # fmt: skip
    settle(app, 1.0)
    win.grab().save(str(out / "app_adapt_looped_clip.png"))
    print("adapting on", c.state.adapt_frames, "frames, progress", c.state.adapt_progress)
    wait(app, lambda: c.state.adapt == "idle", 600, "Adapt's end")
    print("adapt outcome:", [m.text for m in c.state.messages if m.key == "adapt"])

    # 3. Quitting while recording: the question over the window.
    win.act_record.trigger()
    wait(app, lambda: win._recorded >= 30, 60, "30 recorded frames")
    box = quit_prompt(win, win._recorded)
    box.show()
    settle(app, 1.0)
    screen = app.primaryScreen().grabWindow(0)
    area = win.frameGeometry().united(box.frameGeometry())
    screen.copy(area).save(str(out / "app_quit_while_recording.png"))
    box.close()
    c.quit("discard")
    win.close()
    for name in ("app_end_of_file", "app_adapt_looped_clip", "app_quit_while_recording"):
        print(out / f"{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
