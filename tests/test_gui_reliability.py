"""The window's reliability (docs/reliability.md), each provoked for real under Xvfb (xcb):
recovering takes left by a crash, recovery files kept until export, a camera lost mid-take,
bad video files, Adapt pressed twice / cancelled / overtaken by a source switch / diverging,
weights and saved adaptations that no longer load. A tiny lifter keeps it fast."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

pytest.importorskip("pytestqt")

from PyQt5 import QtWidgets  # noqa: E402
from qt_helpers import call_on_live_thread as on_live  # noqa: E402
from qt_helpers import recorded  # noqa: E402

from distpose_app.adapt.iso import AdaptResult  # noqa: E402
from distpose_app.data.bvh import read_bvh  # noqa: E402
from distpose_app.gui.main_window import AppOptions, MainWindow  # noqa: E402
from distpose_app.lifter.model import TemporalModel  # noqa: E402
from distpose_app.live import app_data, recovery  # noqa: E402
from distpose_app.live.capture import FakeSource  # noqa: E402
from distpose_app.live.demo import DemoSource  # noqa: E402

pytestmark = pytest.mark.gui
SIZE = (640, 360)  # the test demo's image, pixels


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch, tiny_weights):
    """make_window(weights=tiny, frames=5) -> a shown window on the strong-lens demo that has
    drawn `frames` frames; its settings, adaptations and recovery files live under tmp_path."""
    monkeypatch.setenv("DISTPOSE_APP_DATA", str(tmp_path / "appdata"))
    monkeypatch.setenv("DISTPOSE_DATA_DIR", str(tmp_path / "data"))
    made = []

    def make(weights=tiny_weights, frames=5):
        options = AppOptions(source="demo", lens="strong", device="cpu", weights=weights)
        options.pace, options.demo_size = False, SIZE
        win = MainWindow(options)
        win.ask_quit = lambda frames: "discard"  # never a modal question at teardown
        qtbot.addWidget(win)
        made.append(win)
        win.resize(1000, 560)
        win.show()
        qtbot.waitUntil(lambda: win.frames_drawn >= frames, timeout=20000)
        return win

    yield make
    for win in made:
        win.close()


@pytest.fixture
def window(make_window):
    return make_window()


def close_boxes(win) -> list[str]:
    """Texts of the open message boxes (warn() opens them without blocking), then close them."""
    texts = []
    for box in win.findChildren(QtWidgets.QMessageBox):
        if box.isVisible():
            texts.append(box.text())
            box.close()
    return texts


class FlakyCamera(FakeSource):
    """A live camera that delivers the demo's 2D (no MediaPipe needed) until `fail_after`."""

    def __init__(self, frames=None, is_live=True):
        super().__init__(frames, SIZE, is_live=is_live, delay_s=1 / 60, name="flaky camera")
        self.demo = DemoSource(lens="strong", size=SIZE, draw=False)

    def read(self):
        frame = super().read()
        if frame is not None:
            demo = self.demo.read()
            frame.keypoints_2d, frame.confidence = demo.keypoints_2d, demo.confidence
        return frame


def wait_frames(qtbot, win, more: int) -> None:
    start = win.frames_drawn
    qtbot.waitUntil(lambda: win.frames_drawn >= start + more, timeout=15000)


# ------------------------------------------------------------------ crash recovery
def write_take(folder, frames: int, source: str, stopped: bool):
    """A recovery file as a crashed (stopped=False) or stopped-unsaved recorder leaves it."""
    from poses import symmetric_pose

    writer = recovery.RecoveryWriter(folder, {"source": source})
    pose = symmetric_pose()
    for i in range(frames):
        writer.append(recovery.make_record(i / 30.0, pose, np.ones(17), True))
    if stopped:
        writer.finish(keep=True)
    else:
        writer.close()  # the process died: no end record
    return writer.path


def test_start_offers_unfinished_takes_recover_discard_later(
    qtbot, make_window, tmp_path, monkeypatch
):
    folder = recovery.default_dir()
    later = write_take(folder, 12, "camera 0 — later", stopped=False)
    dropped = write_take(folder, 15, "camera 1 — discard", stopped=True)
    kept = write_take(folder, 45, "camera 2 — recover", stopped=False)
    target = tmp_path / "out" / "recovered.bvh"
    target.parent.mkdir()
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    win = make_window()
    qtbot.waitUntil(lambda: win.recovery_dialog is not None, timeout=5000)
    dialog = win.recovery_dialog
    assert dialog.isVisible() and not dialog.isModal()  # the live view runs on behind it
    table = {dialog.table.item(r, 0).text(): r for r in range(dialog.table.rowCount())}
    assert set(table) == {"camera 0 — later", "camera 1 — discard", "camera 2 — recover"}
    row = table["camera 2 — recover"]
    assert dialog.table.item(row, 2).text() == "45"
    assert dialog.table.item(row, 3).text() == f"{44 / 30:.1f} s"
    assert dialog.table.item(row, 4).text() == "interrupted"
    assert dialog.table.item(table["camera 1 — discard"], 4).text() == "stopped, not saved"
    by_path = {info.path: info for info in dialog.takes}

    dialog.answer(by_path[later], "later")
    dialog.answer(by_path[dropped], "discard")
    assert later.exists() and not dropped.exists()
    dialog.answer(by_path[kept], "recover")  # -> the export dialog (patched) -> export
    takes = win.controller.takes
    qtbot.waitUntil(lambda: takes.exports_done == 1, timeout=15000)
    assert takes.last_export is not None, win.status.message.text()
    assert read_bvh(target).num_frames == 45
    assert not kept.exists()  # saved, so its recovery file is gone
    assert not dialog.isVisible()  # every take answered
    assert [i.path for i in recovery.find_recoverable()] == [later]  # offered again next time


def test_stopped_take_keeps_its_recovery_file_until_exported(qtbot, window, tmp_path):
    takes = window.controller.takes
    window.act_record.trigger()
    wait_frames(qtbot, window, 20)
    window.act_record.trigger()
    qtbot.waitUntil(lambda: takes.take is not None, timeout=5000)
    recorder, path = takes.take_recovery
    assert path.is_file()
    (info,) = recovery.find_recoverable()
    assert info.path == path and info.complete and info.frames == takes.take.num_frames
    window.export(bvh_path=str(tmp_path / "missing" / "take.bvh"))  # fails: file kept
    qtbot.waitUntil(lambda: takes.exports_done == 1, timeout=10000)
    assert takes.last_export is None and path.is_file()
    qtbot.waitUntil(lambda: bool(close_boxes(window)), timeout=5000)
    window.export(bvh_path=str(tmp_path / "take.bvh"))
    qtbot.waitUntil(lambda: takes.exports_done == 2, timeout=10000)
    assert takes.last_export is not None and not path.exists()
    assert recorder.recovery_path is None and takes.take_recovery is None


def test_recovery_file_problem_shown_recording_goes_on(qtbot, window, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DISTPOSE_DATA_DIR", str(blocker))  # recovery/ cannot be created in it
    window.act_record.trigger()
    qtbot.waitUntil(lambda: "crash recovery off" in window.status.message.text())
    assert str(blocker) in window.status.message.text()
    assert "lifter" in window.status.stage.text()  # the stats stay in view beside it
    wait_frames(qtbot, window, 10)
    window.act_record.trigger()
    takes = window.controller.takes
    qtbot.waitUntil(lambda: takes.take is not None, timeout=5000)
    assert takes.take.num_frames >= 10  # in memory all the same
    qtbot.waitUntil(lambda: "crash recovery was off" in window.status.message.toolTip())


# ------------------------------------------------------------------ lost camera
def test_camera_lost_while_recording_keeps_take_reconnect_and_switch(qtbot, window):
    camera = FlakyCamera()
    window.start_source("flaky", source=camera)
    qtbot.waitUntil(lambda: window.state.title.startswith("flaky camera"), timeout=5000)
    wait_frames(qtbot, window, 5)
    window.act_record.trigger()
    qtbot.waitUntil(lambda: recorded(window) >= 15, timeout=10000)
    panel = window.source_panel

    camera.fail_after = camera.index  # unplugged
    qtbot.waitUntil(lambda: panel.isVisible(), timeout=5000)  # rendered from the state
    assert "flaky camera was unplugged" in window.state.source_error
    assert panel.isVisible() and "recording is kept" in panel.label.text()
    assert panel.reconnect_button.isVisible() and panel.switch_demo_button.isVisible()
    assert window.state.recording  # no restart, take still going
    assert "REC" in window.status.rec.text()
    before = recorded(window)
    assert before >= 15

    camera.fail_after = None  # plugged back in
    panel.reconnect_button.click()
    qtbot.waitUntil(lambda: window.state.source == "running", timeout=5000)
    assert not panel.isVisible()
    qtbot.waitUntil(lambda: recorded(window) >= before + 10, timeout=10000)

    camera.fail_after = camera.index  # lost again: carry on with the demo instead
    qtbot.waitUntil(lambda: panel.switch_demo_button.isVisible(), timeout=5000)
    middle = recorded(window)
    panel.switch_demo_button.click()
    qtbot.waitUntil(lambda: window.state.spec == "demo", timeout=5000)
    qtbot.waitUntil(lambda: "demo" in window.windowTitle(), timeout=5000)
    qtbot.waitUntil(lambda: "unplugged" not in window.status.message.text(), timeout=5000)
    qtbot.waitUntil(lambda: recorded(window) >= middle + 15, timeout=10000)

    window.act_record.trigger()
    takes = window.controller.takes
    qtbot.waitUntil(lambda: takes.take is not None, timeout=5000)
    take = takes.take
    assert take.num_frames >= middle + 15  # one take across three sources
    assert np.all(np.diff(take.timestamps_s) > 0)
    assert take.tracked.sum() >= 0.8 * take.num_frames


def test_take_stopped_when_a_finite_source_ends_while_recording(qtbot, window):
    clip = FlakyCamera(frames=60, is_live=False)  # a short file, as far as the window knows
    window.start_source("clip.mp4", source=clip)
    qtbot.waitUntil(lambda: window.state.title.startswith("flaky camera"), timeout=5000)
    window.act_record.trigger()
    takes = window.controller.takes
    qtbot.waitUntil(lambda: window.state.take_frames > 0, timeout=10000)  # stopped at the end
    assert not window.state.recording and window.state.source == "ended"
    assert "REC" not in window.status.rec.text() and "take: " in window.status.rec.text()
    assert "end of the file" in window.status.message.text()
    assert 10 <= takes.take.num_frames <= 60
    assert takes.take_recovery[1].is_file()  # kept until exported


# ------------------------------------------------------------------ bad video files
def test_bad_video_files_named_in_a_dialog_and_demo_runs_on(qtbot, window, tmp_path, monkeypatch):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.avi"
    text.write_text("this is not a video\n" * 50)
    for path in (tmp_path / "missing.mp4", empty, text, tmp_path):
        window.start_source(str(path))
        assert str(path) in window.last_warning, window.last_warning
        assert any(str(path) in t for t in close_boxes(window))
        assert window.state.spec == "demo" and window.state.source == "running"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", lambda *a, **k: (str(text), ""))
    window.act_open.trigger()  # the same through the menu
    assert "notes.avi" in window.last_warning and close_boxes(window)
    wait_frames(qtbot, window, 10)  # still live
    assert window.source_combo.currentData() == "demo"


# ------------------------------------------------------------------ adaptation
class FakeAdapt:
    """Stands in for iso_adapt: runs until released (or cancelled), then returns `result`
    (an AdaptResult built from the ticket's model by `make`)."""

    def __init__(self, make=None):
        self.release = threading.Event()
        self.calls = 0
        self.make = make

    def __call__(self, model, keypoints, config, progress=None, should_cancel=None, pictures=None,
                 whole_picture=False):  # fmt: skip
        self.calls += 1
        self.whole_picture = whole_picture
        original = {k: v.clone() for k, v in model.state_dict().items()}
        for step in range(500):
            if should_cancel():
                return AdaptResult(original, False, "cancelled", steps=step)
            if self.release.wait(0.01):
                break
            progress(step % 10, 10)
        return self.make(model) if self.make else AdaptResult(original, True, "ok")


def scaled(model, factor: float) -> dict:
    """The model's weights with the output layer scaled (1e8: absurd poses, finite weights)."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["shrink.weight"] *= factor
    state["shrink.bias"] *= factor
    return state


def weights(qtbot, win) -> dict:
    return on_live(qtbot, win, lambda s: s.model_state())


def same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def adapt_text(win) -> str:
    return win.adapt_panel.label.text()


def test_adapt_twice_refused_and_cancel_keeps_weights(qtbot, window):
    fake = FakeAdapt(lambda m: AdaptResult(scaled(m, 1.01), True, "ok"))
    adaptation = window.controller.adaptation
    adaptation.adapt_fn = fake
    qtbot.waitUntil(lambda: window.controller.buffer_frames >= 70, timeout=15000)
    original = weights(qtbot, window)
    window.act_adapt.trigger()
    window.act_adapt.trigger()  # at once: the snapshot is not even taken yet
    assert "already running" in window.last_refusal
    qtbot.waitUntil(lambda: window.state.adapt == "adapting", timeout=5000)
    window.last_refusal = ""
    window.start_adapt()  # while it runs (the action is disabled; the shortcut's intent)
    assert "already running" in window.last_refusal
    assert "already running" in window.status.message.text()
    assert window.adapt_panel.cancel_button.isVisible()
    window.adapt_panel.cancel_button.click()
    qtbot.waitUntil(lambda: "cancelled" in adapt_text(window), timeout=10000)
    assert "previous weights kept" in adapt_text(window) and window.state.adapt == "idle"
    assert fake.calls == 1 and adaptation.started == 1
    assert same(original, weights(qtbot, window)) and not window.state.adapted
    # The pipeline is free again: a new press runs and applies.
    window.act_adapt.trigger()
    qtbot.waitUntil(lambda: window.state.adapt == "adapting", timeout=5000)
    fake.release.set()
    qtbot.waitUntil(lambda: window.state.adapted, timeout=5000)
    assert not same(original, weights(qtbot, window)) and fake.calls == 2


def test_switching_source_while_adapting_discards_result(qtbot, window):
    fake = FakeAdapt(lambda m: AdaptResult(scaled(m, 1.01), True, "ok"))
    window.controller.adaptation.adapt_fn = fake
    qtbot.waitUntil(lambda: window.controller.buffer_frames >= 70, timeout=15000)
    original = weights(qtbot, window)
    window.act_adapt.trigger()
    qtbot.waitUntil(lambda: window.state.adapt == "adapting", timeout=5000)
    window.choose_source("demo")  # same session: the take would carry over
    qtbot.waitUntil(lambda: "source changed" in adapt_text(window), timeout=10000)
    assert same(original, weights(qtbot, window)) and not window.state.adapted


def test_revert_and_saved_adaptation_during_adapt_win(qtbot, window):
    """Revert (or Use saved adaptation) pressed while an Adapt runs is what stays: the running
    one's result is refused when it finishes, and never saved over the saved one."""
    adaptation = window.controller.adaptation
    first = FakeAdapt(lambda m: AdaptResult(scaled(m, 1.01), True, "ok"))
    first.release.set()
    adaptation.adapt_fn = first
    qtbot.waitUntil(lambda: window.controller.buffer_frames >= 70, timeout=15000)
    original = weights(qtbot, window)
    window.act_adapt.trigger()
    qtbot.waitUntil(lambda: window.state.adapted and window.state.adapt == "idle", timeout=5000)
    adapted = weights(qtbot, window)
    saved = app_data.saved_adaptation_path(window.state.camera_key).read_bytes()
    second = FakeAdapt(lambda m: AdaptResult(scaled(m, 3.0), True, "ok"))
    adaptation.adapt_fn = second
    window.act_adapt.trigger()
    qtbot.waitUntil(lambda: window.state.adapt == "adapting", timeout=5000)
    assert window.act_revert.isEnabled()
    window.act_revert.trigger()
    qtbot.waitUntil(lambda: not window.state.adapted and window.state.adapt == "idle", timeout=5000)
    second.release.set()
    wait_frames(qtbot, window, 5)
    assert same(original, weights(qtbot, window)) and not window.state.adapted
    assert app_data.saved_adaptation_path(window.state.camera_key).read_bytes() == saved
    third = FakeAdapt(lambda m: AdaptResult(scaled(m, 5.0), True, "ok"))
    adaptation.adapt_fn = third
    window.act_adapt.trigger()
    qtbot.waitUntil(lambda: window.state.adapt == "adapting", timeout=5000)
    window.act_saved.trigger()
    qtbot.waitUntil(lambda: window.state.adapted and window.state.adapt == "idle", timeout=5000)
    third.release.set()
    wait_frames(qtbot, window, 5)
    assert same(adapted, weights(qtbot, window))


def test_degenerate_adaptations_rejected_or_reverted_and_reported(qtbot, window):
    adaptation = window.controller.adaptation
    qtbot.waitUntil(lambda: window.controller.buffer_frames >= 70, timeout=15000)
    original = weights(qtbot, window)
    # The guard rejected it: nothing applied, the reason shown.
    adaptation.adapt_fn = lambda m, k, c, progress, should_cancel, **_: AdaptResult(
        {}, False, "bones collapsed"
    )
    window.act_adapt.trigger()
    qtbot.waitUntil(lambda: "rejected" in adapt_text(window), timeout=5000)
    assert "bones collapsed" in adapt_text(window)
    assert same(original, weights(qtbot, window))
    # Accepted, but its poses are absurd: the pipeline reverts at the first one and says so.
    adaptation.adapt_fn = lambda m, k, c, progress, should_cancel, **_: AdaptResult(
        scaled(m, 1e8), True, "ok"
    )
    window.act_adapt.trigger()
    qtbot.waitUntil(lambda: "diverged" in adapt_text(window), timeout=20000)
    assert "reverted" in adapt_text(window) and "saved copy was deleted" in adapt_text(window)
    qtbot.waitUntil(lambda: not window.act_revert.isEnabled(), timeout=10000)
    assert same(original, weights(qtbot, window)) and not window.state.adapted
    assert not window.act_saved.isEnabled()


# ------------------------------------------------------------------ weights
def test_truncated_weights_fall_back_to_shipped_model(qtbot, make_window, tiny_weights, tmp_path):
    from distpose_app.lifter.model import available_pretrained

    shipped = available_pretrained()
    if not shipped:
        pytest.skip("no shipped weights in pretrained/")
    bad = tmp_path / "cut.pt"
    with open(tiny_weights, "rb") as handle:
        bad.write_bytes(handle.read()[:2000])
    win = make_window(weights=str(bad))
    default = app_data.default_model_name()
    expected = default if default in shipped else shipped[0]
    assert win.state.model_name == expected
    assert f"model {expected}" in win.windowTitle()
    assert "cut.pt" in win.last_warning and f"'{expected}' instead" in win.last_warning
    assert any("cut.pt" in t for t in close_boxes(win))


def test_saved_adaptation_that_no_longer_loads_is_ignored(qtbot, make_window):
    key = app_data.camera_key(DemoSource(lens="strong", size=SIZE, draw=False).name, SIZE)
    path = app_data.saved_adaptation_path(key)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 half a zip file")
    win = make_window()
    qtbot.waitUntil(lambda: "ignored: unreadable" in win.last_warning, timeout=5000)
    assert f"saved adaptation {path} ignored: unreadable" in win.last_warning
    assert not win.act_saved.isEnabled()
    close_boxes(win)
    # Saved for another model: said when the source opens; Use saved adaptation says why not.
    other = TemporalModel(filter_widths=(3, 3), channels=16)
    torch.save({"state_dict": other.state_dict()}, path)
    original = weights(qtbot, win)
    win.choose_source("demo")
    qtbot.waitUntil(lambda: "made for another model" in win.last_warning, timeout=5000)
    assert "ignored: made for another model" in win.status.message.text()
    win.use_saved_adaptation()
    assert "no adaptation is saved" in win.last_refusal
    assert same(original, weights(qtbot, win)) and not win.state.adapted
    wait_frames(qtbot, win, 5)
