"""The live window under Xvfb with the real xcb platform (pytest-xvfb starts it; offscreen would
hide the OpenGL and plugin problems: ../shared/NOTES.md). A tiny lifter checkpoint keeps every
test fast; the demo source needs no camera and no MediaPipe."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("pytestqt")

from qt_helpers import call_on_live_thread  # noqa: E402

from distpose_app.adapt.iso import MIN_ADAPT_FRAMES, IsoConfig  # noqa: E402
from distpose_app.data.bvh import read_bvh  # noqa: E402
from distpose_app.gui.main_window import AppOptions, MainWindow  # noqa: E402
from distpose_app.gui.skeleton_view import LEFT_COLOUR, RIGHT_COLOUR  # noqa: E402
from distpose_app.live import app_data  # noqa: E402
from distpose_app.live.demo import DemoSource  # noqa: E402

pytestmark = pytest.mark.gui
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, tiny_weights):
    monkeypatch.setenv("DISTPOSE_APP_DATA", str(tmp_path / "appdata"))
    monkeypatch.setenv("DISTPOSE_DATA_DIR", str(tmp_path / "data"))  # this test's recovery files
    options = AppOptions(source="demo", lens="strong", device="cpu", weights=tiny_weights)
    options.pace = False  # as fast as the pipeline goes: tests need frames, not real time
    options.demo_size = (640, 360)  # rendering the demo's picture is most of a frame's time
    win = MainWindow(options)
    win.ask_quit = lambda frames: "discard"  # a test left recording: never a modal question
    qtbot.addWidget(win)
    win.resize(1100, 600)
    win.show()
    qtbot.waitUntil(lambda: win.frames_drawn >= 5, timeout=15000)
    yield win
    win.close()


def rgb_of(widget) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a widget's grab()."""
    image = widget.grab().toImage().convertToFormat(4)  # QImage.Format_RGB32 (BGRA bytes)
    ptr = image.constBits()
    ptr.setsize(image.byteCount())
    bgra = np.frombuffer(ptr, np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)
    return bgra[:, : image.width(), 2::-1].copy()


def colour_pixels(rgb: np.ndarray, colour, tol: int = 40) -> int:
    target = np.array(colour[:3]) * 255
    return int((np.abs(rgb.astype(int) - target).max(axis=-1) < tol).sum())


def test_window_opens_with_demo_and_shows_both_skeletons(qtbot, window):
    qtbot.waitUntil(lambda: window.frames_drawn >= 20, timeout=15000)
    assert window.state.spec == "demo" and window.state.source == "running"
    assert "demo" in window.windowTitle()
    assert window.status.mpjpe.text().startswith("MPJPE")
    assert "lifter" in window.status.stage.text() and "draw" in window.status.stage.text()
    # The 3D view is a real OpenGL scene: varied pixels, both side colours present.
    rgb = rgb_of(window.view3d)
    assert rgb.std() > 5
    assert colour_pixels(rgb, LEFT_COLOUR) > 20
    assert colour_pixels(rgb, RIGHT_COLOUR) > 20
    video = rgb_of(window.video)
    assert colour_pixels(video, LEFT_COLOUR) > 20 and colour_pixels(video, RIGHT_COLOUR) > 20
    # Every menu action is reachable by keyboard.
    named = [a for a in window.actions() if a.text()]
    assert all(not a.shortcut().isEmpty() for a in named)


def test_adapt_runs_to_completion_and_revert_restores_weights(qtbot, window):
    adaptation = window.controller.adaptation
    adaptation.adapt_config = IsoConfig(steps=3, lr=1e-3, crops_per_step=2)
    qtbot.waitUntil(lambda: window.controller.buffer_frames >= MIN_ADAPT_FRAMES + 5, timeout=20000)
    original = call_on_live_thread(qtbot, window, lambda e: e.model_state())
    window.act_adapt.trigger()
    assert window.adapt_panel.isVisible() and window.act_cancel.isEnabled()
    # A real (3-step) adaptation at background priority: slow on a loaded 2-core machine.
    qtbot.waitUntil(lambda: adaptation.last_result is not None, timeout=120000)
    result = adaptation.last_result
    assert result.accepted, result.reason
    qtbot.waitUntil(lambda: "symmetry" in window.adapt_panel.label.text(), timeout=10000)
    assert window.state.adapted and "consistency" in window.adapt_panel.label.text()
    adapted = call_on_live_thread(qtbot, window, lambda e: e.model_state())
    assert any(not torch.equal(original[k], adapted[k]) for k in original)
    # Saved for this camera, offered next time.
    assert app_data.saved_adaptation_path(window.state.camera_key).is_file()
    assert window.act_saved.isEnabled() and window.act_revert.isEnabled()

    window.act_revert.trigger()
    qtbot.waitUntil(lambda: not window.state.adapted, timeout=5000)
    reverted = call_on_live_thread(qtbot, window, lambda e: e.model_state())
    assert all(torch.equal(original[k], reverted[k]) for k in original)
    qtbot.waitUntil(lambda: "Reverted" in window.adapt_panel.label.text(), timeout=10000)

    window.act_saved.trigger()
    qtbot.waitUntil(lambda: window.state.adapted, timeout=5000)
    again = call_on_live_thread(qtbot, window, lambda e: e.model_state())
    assert all(torch.equal(adapted[k], again[k]) for k in adapted)


def test_adapt_on_a_short_clip_refused_in_a_files_words(qtbot, window):
    window.choose_source("short.mp4", source=DemoSource(lens="strong", size=(640, 360),
                                                        draw=False, frames=12))  # fmt: skip
    qtbot.waitUntil(lambda: window.state.source == "ended", timeout=10000)
    window.act_adapt.trigger()
    assert "this clip gave 12" in window.last_refusal and "Loop" in window.last_refusal
    assert window.status.message.text() == window.last_refusal  # shown, not lost
    assert window.state.adapt == "idle" and window.act_adapt.isEnabled()


def test_record_then_export_writes_files_the_readers_accept(qtbot, window, tmp_path):
    takes = window.controller.takes
    window.act_record.trigger()
    assert window.state.recording
    qtbot.waitUntil(lambda: "REC" in window.status.rec.text() and window.frames_drawn > 40,
                    timeout=20000)  # fmt: skip
    start = window.frames_drawn
    qtbot.waitUntil(lambda: window.frames_drawn >= start + 40, timeout=15000)
    window.act_record.trigger()
    qtbot.waitUntil(lambda: takes.take is not None, timeout=5000)
    frames = takes.take.num_frames
    assert frames >= 40
    qtbot.waitUntil(lambda: window.act_export_bvh.isEnabled(), timeout=10000)
    assert "REC" not in window.status.rec.text()
    bvh_path, csv_path = tmp_path / "take.bvh", tmp_path / "take.csv"
    window.export(bvh_path=str(bvh_path), csv_path=str(csv_path))
    qtbot.waitUntil(lambda: takes.exports_done == 1, timeout=15000)
    assert takes.last_export is not None, window.status.message.text()
    assert takes.last_export["frames"] == frames
    bvh = read_bvh(bvh_path)
    assert bvh.num_frames == frames and len(bvh.names) >= 17
    table = pd.read_csv(csv_path)
    assert len(table) == frames
    assert (bvh_path.parent / "take.bvh.json").is_file()


def test_export_to_missing_folder_reports_and_keeps_recording(qtbot, window, tmp_path):
    takes = window.controller.takes
    window.act_record.trigger()
    start = window.frames_drawn
    qtbot.waitUntil(lambda: window.frames_drawn >= start + 20, timeout=15000)
    window.act_record.trigger()
    qtbot.waitUntil(lambda: takes.take is not None, timeout=5000)
    window.export(bvh_path=str(tmp_path / "nope" / "take.bvh"))
    qtbot.waitUntil(lambda: takes.exports_done == 1, timeout=5000)
    qtbot.waitUntil(lambda: "export failed" in window.last_warning, timeout=5000)
    assert "nope" in window.last_warning
    assert takes.take is not None and window.act_export_bvh.isEnabled()
    # The error stays in the status bar (it is not transient) until an export succeeds.
    assert "export failed" in window.status.message.text()
    window.export(bvh_path=str(tmp_path / "take.bvh"))
    qtbot.waitUntil(lambda: takes.exports_done == 2, timeout=10000)
    qtbot.waitUntil(lambda: "export failed" not in window.status.message.text(), timeout=5000)


def test_known_lens_from_calibration_reaches_the_pipeline(qtbot, window, tmp_path):
    path = tmp_path / "cam.yml"
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 640)  # the test demo's size
    fs.write("image_height", 360)
    fs.write("camera_matrix", np.array([[320.0, 0, 320], [0, 320.0, 180], [0, 0, 1]]))
    fs.write("distortion_coefficients", np.array([[-0.3, 0.06, 0.0, 0.0, 0.0]]))
    fs.release()
    window.load_calibration(str(path))
    assert window.act_lens_calib.isChecked()
    assert "calibrated: cam.yml" in window.status.lens.text()
    lens = call_on_live_thread(qtbot, window, lambda e: e.pipeline.known_lens)
    assert lens.k1 == -0.3 and lens.k2 == 0.06
    window.act_lens_unknown.trigger()
    assert call_on_live_thread(qtbot, window, lambda e: e.pipeline.known_lens) is None
    # A calibration for another image size is refused with a message, the lens stays unknown.
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("camera_matrix", np.array([[640.0, 0, 640], [0, 640.0, 360], [0, 0, 1]]))
    fs.release()
    window.load_calibration(str(path))
    qtbot.waitUntil(lambda: "1280x720" in window.last_warning, timeout=5000)
    assert window.state.known_lens == "" and window.act_lens_unknown.isChecked()
    assert call_on_live_thread(qtbot, window, lambda e: e.pipeline.known_lens) is None


def test_scripted_run_writes_a_screenshot(tmp_path, tiny_weights):
    """`--frames N --screenshot PNG` through main() in a subprocess on the test's display."""
    shot = tmp_path / "shot.png"
    env = dict(os.environ, DISTPOSE_APP_DATA=str(tmp_path / "appdata"))
    cmd = [sys.executable, "-c", "import sys; from distpose_app.gui.app import main; "
           "sys.exit(main(sys.argv[1:]))", "--source", "demo", "--weights", tiny_weights,
           "--device", "cpu", "--frames", "30", "--screenshot", str(shot), "--no-pace"]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    image = cv2.imread(str(shot))[..., ::-1]
    assert image.shape[0] >= 400 and image.shape[1] >= 800
    assert image.std() > 10
    assert colour_pixels(image, LEFT_COLOUR) > 50 and colour_pixels(image, RIGHT_COLOUR) > 50


def test_bad_command_line_values_exit_2(capsys):
    from distpose_app.gui.app import main

    assert main(["--frames", "-3"]) == 2
    assert main(["--source", "/no/such/video.mp4"]) == 2
    assert main(["--source", "demo", "--lens", "brown:abc"]) == 2
    err = capsys.readouterr().err
    assert "--frames" in err and "/no/such/video.mp4" in err and "abc" in err
