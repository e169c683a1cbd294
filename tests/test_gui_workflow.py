"""The window's workflow under Xvfb (xcb), through its actions and buttons: the stuck states
found by clicking through the app as a new user (after a file ends, a camera that never opens,
Record after the end, Revert during Adapt, errors that never cleared), files as sources (loop,
replay, every frame), quitting while recording, and the smaller items (dialog sizes, the
recovery table, the letterbox, the status bar at the minimum size, Help, Pause, the log file)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PyQt5 import QtWidgets  # noqa: E402
from qt_helpers import recorded  # noqa: E402

from distpose_app.adapt.iso import AdaptResult  # noqa: E402
from distpose_app.gui.dialogs import WIDGET_KEYS, LensDialog, quit_prompt  # noqa: E402
from distpose_app.gui.main_window import AppOptions, MainWindow  # noqa: E402
from distpose_app.gui.skeleton_view import LEFT_COLOUR  # noqa: E402
from distpose_app.gui.video_view import VideoView  # noqa: E402
from distpose_app.live import app_state, recovery  # noqa: E402
from distpose_app.live.demo import DemoSource  # noqa: E402

pytestmark = pytest.mark.gui
SIZE = (640, 360)


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, tiny_weights):
    monkeypatch.setenv("DISTPOSE_APP_DATA", str(tmp_path / "appdata"))
    monkeypatch.setenv("DISTPOSE_DATA_DIR", str(tmp_path / "data"))
    options = AppOptions(source="demo", lens="strong", device="cpu", weights=tiny_weights)
    options.pace, options.demo_size = False, SIZE
    win = MainWindow(options)
    win.ask_quit = lambda frames: "discard"
    qtbot.addWidget(win)
    win.resize(1000, 560)
    win.show()
    qtbot.waitUntil(lambda: win.frames_drawn >= 5, timeout=20000)
    yield win
    win.close()


def clip(frames: int) -> DemoSource:
    """A short "video file" carrying the demo's 2D (no MediaPipe needed)."""
    return DemoSource(lens="strong", size=SIZE, draw=False, frames=frames)


def quick_adapt(release: threading.Event | None = None):
    """An adapt_fn that returns an accepted result at once (or once `release` is set)."""

    def adapt(model, keypoints, config, progress=None, should_cancel=None, **_):
        state = {k: v.clone() for k, v in model.state_dict().items()}
        while release is not None and not release.wait(0.01):
            if should_cancel():
                return AdaptResult(state, False, "cancelled")
        state["shrink.weight"] *= 1.01
        return AdaptResult(state, True, "ok")

    return adapt


def play_to_end(qtbot, win, frames: int = 90) -> None:
    win.choose_source("walk.mp4", source=clip(frames))
    qtbot.waitUntil(lambda: win.state.source == "ended", timeout=20000)


# ------------------------------------------------------------------ stuck states
def test_after_a_file_ends_adapt_record_and_the_demo_still_work(qtbot, window):
    window.controller.adaptation.adapt_fn = quick_adapt()
    play_to_end(qtbot, window)
    # A clear end-of-file state: panel, overlay, stats cleared (not frozen).
    panel = window.source_panel
    assert panel.isVisible() and "End of" in panel.label.text()
    assert panel.replay_button.isVisible() and panel.loop_button.isVisible()
    assert "End of the file" in window.video.overlay
    stage = window.status.stage.text()
    assert "end of file" in stage and "lifter" not in stage
    assert window.status.mpjpe.text() == ""
    # Esc with nothing running answers (no "already running", no empty progress bar).
    window.act_cancel.trigger()
    window.cancel_adapt()
    assert window.last_refusal == "no adaptation is running"
    assert not window.adapt_panel.progress.isVisible()
    # Adapt works on the clip's buffer after the end.
    window.act_adapt.trigger()
    qtbot.waitUntil(lambda: window.state.adapted and window.state.adapt == "idle", timeout=10000)
    # Record is refused with a reason; nothing says REC.
    window.act_record.trigger()
    assert "file has ended" in window.last_refusal
    assert not window.act_record.isChecked() and "REC" not in window.status.rec.text()
    # And the demo runs again.
    window.act_demo.trigger()
    qtbot.waitUntil(lambda: window.state.source == "running", timeout=10000)
    start = window.frames_drawn
    qtbot.waitUntil(lambda: window.frames_drawn >= start + 5, timeout=10000)
    assert not panel.isVisible() and window.video.overlay == ""


def test_record_then_stop_after_the_end_leaves_no_rec(qtbot, window):
    window.controller.set_every_frame(False)  # real time: the take starts before the end
    window.choose_source("walk.mp4", source=clip(90))
    qtbot.waitUntil(lambda: window.state.source == "running", timeout=10000)
    window.act_record.trigger()
    assert "REC" in window.status.rec.text()
    qtbot.waitUntil(lambda: window.state.source == "ended", timeout=20000)
    qtbot.waitUntil(lambda: "take:" in window.status.rec.text(), timeout=5000)
    assert not window.act_record.isChecked()
    window.act_record.trigger()  # Record pressed after the end
    assert "file has ended" in window.last_refusal
    assert "REC" not in window.status.rec.text() and "take:" in window.status.rec.text()
    window.act_demo.trigger()
    qtbot.waitUntil(lambda: window.state.source == "running", timeout=10000)
    assert "REC" not in window.status.rec.text()


def test_camera_that_never_opens_answers_and_its_error_goes(qtbot, window):
    window.choose_source("7")
    qtbot.waitUntil(lambda: window.state.source == "failed", timeout=10000)
    assert "camera 7 cannot be opened" in window.status.message.text()
    assert window.source_panel.reconnect_button.isVisible()
    window.act_adapt.trigger()
    assert "source is lost" in window.last_refusal
    window.act_cancel.trigger()
    assert window.last_refusal == "no adaptation is running"
    window.source_panel.switch_demo_button.click()
    qtbot.waitUntil(lambda: window.state.source == "running", timeout=10000)
    window.choose_source("demo")  # a second switch, as in the report
    qtbot.waitUntil(lambda: window.state.source == "running", timeout=10000)
    assert "camera 7" not in window.status.message.text()
    assert "camera 7" not in window.status.message.toolTip()


def test_transient_messages_time_out_and_stats_stay_in_view(qtbot, window, monkeypatch):
    monkeypatch.setattr(app_state, "INFO_SECONDS", 0.5)
    window.controller.show("Reverted to the unadapted model.")
    assert "Reverted" in window.status.message.text()
    assert "lifter" in window.status.stage.text()  # the stats are not hidden by a message
    qtbot.waitUntil(lambda: "Reverted" not in window.status.message.text(), timeout=3000)
    assert "lifter" in window.status.stage.text()


# ------------------------------------------------------------------ files
def test_loop_replay_and_every_frame_from_the_window(qtbot, window):
    play_to_end(qtbot, window, 60)
    assert window.act_replay.isEnabled()
    window.act_replay.trigger()
    qtbot.waitUntil(lambda: window.state.source == "running", timeout=5000)
    qtbot.waitUntil(lambda: window.state.source == "ended", timeout=20000)
    before = window.controller.frames_processed
    window.source_panel.loop_button.click()
    assert window.act_loop.isChecked()
    qtbot.waitUntil(lambda: window.controller.frames_processed >= before + 130, timeout=20000)
    assert window.state.source == "running"  # looped past the end twice
    assert window.act_every_frame.isChecked()  # the test window processes every frame
    window.act_every_frame.trigger()
    assert not window.state.every_frame


def test_adapt_runs_on_a_looped_short_clip(qtbot, window):
    release = threading.Event()
    window.controller.adaptation.adapt_fn = quick_adapt(release)
    window.act_loop.trigger()
    window.choose_source("short.mp4", source=clip(40))  # shorter than Adapt's 60 frames
    qtbot.waitUntil(lambda: window.controller.buffer_frames >= 70, timeout=20000)
    window.act_adapt.trigger()
    qtbot.waitUntil(lambda: window.state.adapt == "adapting", timeout=5000)
    assert window.adapt_panel.isVisible() and window.adapt_panel.progress.isVisible()
    assert "Adapting on" in window.adapt_panel.label.text()
    start = window.frames_drawn
    qtbot.waitUntil(lambda: window.frames_drawn >= start + 10, timeout=10000)  # keeps playing
    release.set()
    qtbot.waitUntil(lambda: window.state.adapted, timeout=10000)


# ------------------------------------------------------------------ quitting
def test_quit_while_recording_asks_save_discard_cancel(qtbot, window, tmp_path, monkeypatch):
    window.act_record.trigger()
    qtbot.waitUntil(lambda: recorded(window) >= 10, timeout=10000)
    asked = []
    window.ask_quit = lambda frames: asked.append(frames) or "cancel"
    window.close()
    assert asked and window.isVisible() and window.state.recording  # Cancel: nothing changed
    target = tmp_path / "saved.bvh"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    window.ask_quit = lambda frames: "save"
    window.close()  # Save: export, then the window closes by itself
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=15000)
    assert target.is_file() and window.controller.state.closed
    assert recovery.find_recoverable() == []  # saved: no "interrupted" take left behind


def test_quit_discard_deletes_the_take(qtbot, window):
    window.act_record.trigger()
    qtbot.waitUntil(lambda: recorded(window) >= 5, timeout=10000)
    window.ask_quit = lambda frames: "discard"
    window.close()
    assert not window.isVisible() and recovery.find_recoverable() == []


def test_quit_prompt_offers_save_discard_cancel(qtbot, window):
    box = quit_prompt(window, 42)
    assert set(box.buttons_by_choice) == {"save", "discard", "cancel"}
    assert "42 frames" in box.text()
    box.buttons_by_choice["discard"].click()
    assert box.choice == "discard"


# ------------------------------------------------------------------ dialogs and details
def test_known_lens_dialog_wraps_fits_and_starts_at_the_sources_fov(qtbot, window, monkeypatch):
    shown = []
    monkeypatch.setattr(LensDialog, "exec_", lambda self: shown.append(self) or 0)
    window.type_lens_dialog()
    (dialog,) = shown
    assert dialog.hfov.value() == pytest.approx(90.0)  # the demo's own field of view
    dialog.edit.setText("brown:" + ",".join(["not-a-number"] * 12))
    dialog.show()
    dialog._check()
    qtbot.wait(50)
    screen = dialog.screen().availableGeometry()
    assert dialog.error.text() and dialog.width() <= min(700, screen.width())
    assert dialog.frameGeometry().width() <= screen.width()
    dialog.close()


def test_recovery_table_shows_every_column_confirms_discard_and_counts(qtbot, window):
    from poses import symmetric_pose

    folder = recovery.default_dir()
    for n, source in ((12, "a camera with a long, long descriptive name — 1280×720 @ 30 fps"),
                      (30, "walk.mp4")):  # fmt: skip
        writer = recovery.RecoveryWriter(folder, {"source": source})
        for i in range(n):
            writer.append(recovery.make_record(i / 30.0, symmetric_pose(), np.ones(17), True))
        writer.close()
    dialog = window.offer_recovery()
    qtbot.waitUntil(lambda: dialog.isVisible(), timeout=5000)
    qtbot.wait(50)
    table = dialog.table
    assert table.horizontalScrollBar().maximum() == 0  # no column hidden off to the right
    header = table.horizontalHeader()
    for column in range(table.columnCount()):
        assert header.sectionSize(column) >= 40 and not header.isSectionHidden(column)
    assert "2 recordings were" in dialog.text.text()
    dialog.confirm = lambda info: False  # "Cancel" in the confirmation
    dialog._answer_selected("discard")
    assert len(dialog.takes) == 2
    dialog.confirm = lambda info: True
    dialog._answer_selected("discard")
    assert len(dialog.takes) == 1 and "1 recording was" in dialog.text.text()
    assert len(recovery.find_recoverable()) == 1


def test_record_text_change_does_not_widen_the_window(qtbot, window):
    width, hint = window.width(), window.toolbar.sizeHint().width()
    window.act_record.trigger()
    qtbot.wait(50)
    assert "Stop" in window.act_record.text()
    assert window.toolbar.sizeHint().width() == hint and window.width() == width
    window.act_record.trigger()


def test_letterbox_joints_are_not_drawn_as_solid_bones(qtbot):
    view = VideoView()
    qtbot.addWidget(view)
    view.resize(400, 400)  # a 16:9 picture: black bars above and below
    view.show()
    kp = np.full((17, 2), np.nan)
    kp[11] = (320, 300)  # left shoulder, in the picture
    kp[12] = (320, 340)  # left elbow, in the picture
    kp[13] = (320, 420)  # left wrist: below the picture, in the letterbox
    view.set_frame(np.zeros((360, 640, 3), np.uint8), kp, np.ones(17))
    qtbot.wait(50)
    image = view.grab().toImage().convertToFormat(4)
    ptr = image.constBits()
    ptr.setsize(image.byteCount())
    rgb = np.frombuffer(ptr, np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)
    rgb = rgb[:, : image.width(), 2::-1].astype(int)
    target = np.array(LEFT_COLOUR[:3]) * 255
    solid = np.abs(rgb - target).max(axis=-1) < 40
    top = view._target_rect().bottom()
    assert view.inside_picture()[[11, 12]].all() and not view.inside_picture()[13]
    assert solid[: int(top) - 2].sum() > 20  # the bone inside is solid
    assert solid[int(top) + 3 :].sum() == 0  # the one in the letterbox is not


def test_status_text_does_not_overlap_at_the_minimum_size(qtbot, window):
    window.resize(window.minimumSize())
    window.controller.show("A long message that would once have overlapped the stats " * 3)
    qtbot.wait(100)
    bar = window.statusBar()
    labels = [w for w in bar.findChildren(QtWidgets.QLabel) if w.isVisible() and w.text()]
    rects = sorted((w.geometry() for w in labels), key=lambda r: r.left())
    for a, b in zip(rects, rects[1:]):
        assert a.right() < b.left(), "status labels overlap"
    assert all(r.right() <= bar.width() for r in rects)


def test_help_lists_home_pause_is_a_checkable_action_and_about_names_the_log(qtbot, window):
    from distpose_app.gui.dialogs import about_dialog, shortcuts_dialog
    from distpose_app.live import app_data

    dialog = shortcuts_dialog(window, window.actions())
    table = dialog.findChild(QtWidgets.QTableWidget)
    keys = {table.item(r, 1).text() for r in range(table.rowCount())}
    assert "Home" in keys and "Space" in keys and dict(WIDGET_KEYS)
    dialog.close()
    assert window.act_pause.isCheckable() and window.act_pause.shortcut().toString() == "Space"
    assert window.act_pause in window.menuBar().actions()[1].menu().actions()
    window.act_pause.trigger()
    assert window.state.paused and window.act_pause.isChecked()
    assert "Paused" in window.video.overlay
    window.act_pause.trigger()
    assert not window.state.paused and not window.act_pause.isChecked()
    assert "ISO" not in window.act_adapt.toolTip() and "lens" in window.act_adapt.toolTip()
    box = about_dialog(window, app_data.log_path(), app_data.app_data_dir())
    assert str(app_data.log_path()) in box.informativeText()
    assert window.act_about.shortcut().toString()


def test_scripted_run_logs_to_a_file(tmp_path, tiny_weights):
    """distpose-app writes its rotating log in the app's data folder (named in About)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, DISTPOSE_APP_DATA=str(tmp_path / "appdata"))
    cmd = [sys.executable, "-c", "import sys; from distpose_app.gui.app import main; "
           "sys.exit(main(sys.argv[1:]))", "--source", "7", "--weights", tiny_weights,
           "--device", "cpu", "--frames", "5"]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(__file__)))  # fmt: skip
    assert done.returncode == 2  # the source failed in a scripted run
    log = (tmp_path / "appdata" / "logs" / "distpose-app.log").read_text()
    assert "camera 7 cannot be opened" in log
