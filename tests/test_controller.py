"""The app's state machine without a screen (live/controller.py): every state and intent, files
that end, cameras that fail or never open, double presses, Revert / saved adaptations / source
switches during Adapt, quitting while recording, messages with a lifetime, the log file."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest
import torch

from distpose_app.adapt.iso import MIN_ADAPT_FRAMES, AdaptResult
from distpose_app.core.logs import configure_logging
from distpose_app.live import app_data, recovery
from distpose_app.live.app_state import MessageBoard, Reply
from distpose_app.live.capture import FakeSource
from distpose_app.live.controller import QUIT_ANSWERS, AppController, ControllerOptions
from distpose_app.live.demo import DemoSource

SIZE = (320, 180)
TIMEOUT = 20.0


def wait(predicate, timeout: float = TIMEOUT, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)


def clip(frames: int = 90) -> DemoSource:
    """A short "video file": the demo's 2D (no MediaPipe) for `frames` frames, then its end;
    reopening it starts again (the feed rewinds it through seek)."""
    return DemoSource(lens="strong", size=SIZE, draw=False, frames=frames)


class FlakyCamera(FakeSource):
    """A live camera with the demo's 2D that fails once `fail_after` is set (unplugged)."""

    def __init__(self):
        super().__init__(None, SIZE, is_live=True, delay_s=1 / 120, name="flaky camera")
        self.demo = DemoSource(lens="strong", size=SIZE, draw=False)

    def read(self):
        frame = super().read()
        if frame is not None:
            demo = self.demo.read()
            frame.keypoints_2d, frame.confidence = demo.keypoints_2d, demo.confidence
        return frame


class FakeAdapt:
    """Stands in for adapt_model: runs until released (or cancelled), then returns an accepted
    AdaptResult whose weights are the model's with the output layer scaled by `factor`."""

    def __init__(self, factor: float = 1.01):
        self.release = threading.Event()
        self.factor = factor
        self.calls = 0

    def __call__(self, model, keypoints, config, progress=None, should_cancel=None, pictures=None,
                 whole_picture=False):  # fmt: skip
        self.calls += 1
        self.whole_picture = whole_picture
        state = {k: v.clone() for k, v in model.state_dict().items()}
        for step in range(2000):
            if should_cancel():
                return AdaptResult(state, False, "cancelled", steps=step)
            if self.release.wait(0.005):
                break
            progress(step % 10, 10)
        state["shrink.weight"] *= self.factor
        return AdaptResult(state, True, "ok", {"symmetry_mm": 2.0}, {"symmetry_mm": 1.0})


@pytest.fixture
def make(tmp_path, monkeypatch, tiny_weights):
    """make(**options) -> a controller (every frame processed, tiny lifter on the CPU) whose
    saved adaptations and recovery files live under tmp_path; closed at the end."""
    monkeypatch.setenv("DISTPOSE_APP_DATA", str(tmp_path / "appdata"))
    monkeypatch.setenv("DISTPOSE_DATA_DIR", str(tmp_path / "data"))
    made = []

    def build(**options) -> AppController:
        opts = dict(device="cpu", weights=tiny_weights, every_frame=True, demo_size=SIZE)
        opts.update(options)
        controller = AppController(ControllerOptions(**opts))
        made.append(controller)
        return controller

    yield build
    for controller in made:
        controller.close()


def run_demo(c: AppController, frames: int = MIN_ADAPT_FRAMES + 10) -> None:
    assert c.open_source("demo", source=DemoSource(lens="strong", size=SIZE, draw=False))
    wait(lambda: c.state.source == "running" and c.buffer_frames >= frames, what="demo frames")


def weights(c: AppController) -> dict:
    return c.call_live_and_wait(lambda e: e.model_state())


def same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def texts(c: AppController) -> str:
    return " | ".join(m.text for m in c.state.messages)


# ------------------------------------------------------------------ files
def test_file_runs_to_a_clear_end_of_file_state_and_replays(make):
    c = make()
    states = []
    c.events.connect(lambda e: states.append(e.state.source) if e.kind == "state" else None)
    assert c.open_source("walk.mp4", source=clip(90))
    wait(lambda: c.state.source == "ended", what="end of file")
    assert c.frames_processed == 90  # every frame: nothing dropped on a short clip
    assert "opening" in states and "running" in states
    assert "End of the file" in texts(c)
    summary = c.call_live_and_wait(lambda e: e.pipeline.stats.summary())
    assert summary == {}  # stats cleared, not frozen at their last values
    # What an ended file allows, and what it refuses with a reason.
    for refusal in (c.start_recording(), c.set_paused(True), c.reconnect()):
        assert not refusal and "ended" in refusal.reason
    assert not c.stop_recording() and not c.cancel_adapt()
    assert c.replay()
    wait(lambda: c.frames_processed >= 120, what="replayed frames")
    wait(lambda: c.state.source == "ended", what="second end")
    assert c.frames_processed == 180
    # Loop on at the end plays it again and keeps playing.
    looped = []
    c.events.connect(lambda e: looped.append(1) if "loop" in texts(c) else None)
    assert c.set_loop(True)
    wait(lambda: c.frames_processed >= 360, what="looping")
    assert c.state.source == "running" and looped
    assert not c.set_loop(True)  # a double press is refused, with a reason
    assert c.set_loop(False)
    wait(lambda: c.state.source == "ended", what="end after loop off")


def test_recording_stops_cleanly_at_the_end_of_a_file(make):
    c = make(every_frame=False)  # real time: the take starts before the 3 s clip ends
    takes = []
    c.events.connect(lambda e: takes.append(e.data) if e.kind == "take" else None)
    c.open_source("walk.mp4", source=clip(90))
    wait(lambda: c.state.source == "running")
    assert c.start_recording()
    assert not c.start_recording()  # double press
    wait(lambda: c.state.source == "ended", what="end of file")
    wait(lambda: bool(takes), what="the take")
    state = c.state
    assert not state.recording and state.take_frames == takes[0].num_frames > 10
    stop = c.stop_recording()
    assert not stop and stop.reason == "not recording"  # no "REC" left behind
    assert "end of the file" in texts(c)
    # The take exports, and its recovery file goes once it is saved.
    path = c.takes.take_recovery[1]
    assert path.is_file()


def test_every_frame_mode_gives_adapt_enough_frames_of_a_short_clip(make):
    fake = FakeAdapt()
    fake.release.set()
    c = make(every_frame=False)
    c.adaptation.adapt_fn = fake
    c.open_source("short.mp4", source=clip(75))
    wait(lambda: c.state.source == "ended", what="end of file")
    # Real-time pacing on a slow machine may drop frames; with every frame on, none are.
    assert c.set_every_frame(True)
    assert c.replay()
    wait(lambda: c.state.source == "running")
    wait(lambda: c.state.source == "ended", what="end of the replay")
    assert c.buffer_frames >= 75  # this pass alone gave all 75 (the buffer keeps the first too)
    assert c.start_adapt()  # on an ended file: the buffer is the clip's
    wait(lambda: c.state.adapt == "idle" and c.state.adapted, what="adapted")
    assert fake.calls == 1
    assert fake.whole_picture is False  # a video may be cropped: the lens fit weighs shifts


def test_too_few_frames_refused_in_the_sources_words(make):
    c = make()
    c.open_source("tiny.mp4", source=clip(20))
    wait(lambda: c.state.source == "ended")
    reply = c.start_adapt()
    assert not reply and "this clip gave 20" in reply.reason and "Every frame" in reply.reason
    assert c.state.adapt == "idle"  # nothing left half-started
    camera = make()
    camera.open_source("0", source=FlakyCamera())
    wait(lambda: camera.state.source == "running")
    reply = camera.start_adapt()
    assert not reply and "head and shoulders" in reply.reason


def test_pause_holds_a_file_where_it_is(make):
    c = make()  # every frame: indices are contiguous, so "where it stopped" is exact
    c.open_source("walk.mp4", source=clip(300))
    wait(lambda: c.frames_processed >= 10)
    assert c.set_paused(True) and not c.set_paused(True)
    time.sleep(0.2)
    held = c.frames_processed
    time.sleep(0.4)
    assert c.frames_processed <= held + 1  # at most the frame already in the slot
    frames = []
    c.events.connect(lambda e: frames.append(e.data.frame_index) if e.kind == "frame" else None)
    assert c.set_paused(False)
    wait(lambda: len(frames) >= 5)
    assert frames[:5] == list(range(held, held + 5))  # resumed where it stopped, none skipped


# ------------------------------------------------------------------ cameras
def test_camera_that_never_opens_then_another_source(make):
    c = make()
    c.open_source("7")  # no camera 7 on any test machine
    wait(lambda: c.state.source == "failed", what="camera 7 failure")
    assert "camera 7 cannot be opened" in c.state.source_error
    assert "camera 7" in texts(c)
    for reply in (c.start_adapt(), c.start_recording(), c.set_paused(True)):
        assert not reply and "lost" in reply.reason
    assert not c.cancel_adapt() and not c.revert()
    assert c.reconnect()  # allowed; it fails again, with the same reason
    wait(lambda: c.state.source == "failed")
    run_demo(c)
    assert "camera 7" not in texts(c)  # the error went with its condition
    assert c.start_recording()
    wait(lambda: c.call_live_and_wait(lambda e: e.pipeline.recorder.num_frames) >= 3)
    assert c.stop_recording()
    wait(lambda: c.state.take_frames >= 3)


def test_camera_lost_mid_take_keeps_the_take_and_reconnects(make):
    camera = FlakyCamera()
    c = make()  # every frame on: files and the demo are read losslessly, never a camera
    c.open_source("0", source=camera)
    wait(lambda: c.state.source == "running")
    assert c.call_live_and_wait(lambda e: e.feed.capture.lossless) is False
    c.start_recording()
    wait(lambda: c.call_live_and_wait(lambda e: e.pipeline.recorder.num_frames) >= 10)
    camera.fail_after = camera.index
    wait(lambda: c.state.source == "failed", what="camera lost")
    assert "unplugged" in c.state.source_error and c.state.recording
    assert "recording is kept" in texts(c)
    camera.fail_after = None
    assert c.reconnect() and not c.reconnect()  # the second press while reconnecting
    wait(lambda: c.state.source == "running", what="reconnected")
    assert "unplugged" not in texts(c)
    camera.fail_after = camera.index
    wait(lambda: c.state.source == "failed")
    assert c.stop_recording()  # stopping works while the source is lost
    wait(lambda: c.state.take_frames >= 10, what="the take")


# ------------------------------------------------------------------ adaptation
def test_double_presses_and_cancel(make):
    c = make()
    fake = FakeAdapt()
    c.adaptation.adapt_fn = fake
    run_demo(c)
    original = weights(c)
    assert c.start_adapt()
    second = c.start_adapt()  # at once: the snapshot is not even taken yet
    assert not second and "already running" in second.reason
    wait(lambda: c.state.adapt == "adapting")
    assert not c.start_adapt()
    assert c.cancel_adapt()
    assert not c.cancel_adapt()  # already cancelling or done
    wait(lambda: c.state.adapt == "idle", what="cancelled")
    assert "cancelled" in texts(c) and same(original, weights(c))
    assert fake.calls == 1 and not c.state.adapted
    assert fake.whole_picture is True  # the demo is a camera's whole picture
    fake.release.set()
    assert c.start_adapt()  # free again
    wait(lambda: c.state.adapted, what="adapted")
    assert not same(original, weights(c))
    assert c.state.saved_adaptation and c.adaptation.live_path.is_file()


def test_revert_during_adapt_cancels_it_and_nothing_is_saved(make):
    c = make()
    first = FakeAdapt(1.01)
    first.release.set()
    c.adaptation.adapt_fn = first
    run_demo(c)
    original = weights(c)
    c.start_adapt()
    wait(lambda: c.state.adapted and c.state.adapt == "idle")
    saved = app_data.saved_adaptation_path(c.state.camera_key)
    saved_bytes = saved.read_bytes()
    second = FakeAdapt(2.0)
    c.adaptation.adapt_fn = second
    c.start_adapt()
    wait(lambda: c.state.adapt == "adapting")
    assert c.revert()  # while it runs
    wait(lambda: not c.state.adapted, what="reverted")
    second.release.set()  # it finishes after the revert
    wait(lambda: c.state.adapt == "idle")
    time.sleep(0.1)
    assert same(original, weights(c)) and not c.state.adapted  # not undone by the result
    assert saved.read_bytes() == saved_bytes  # and the result was not saved
    assert "reverted" in texts(c).lower()


def test_saved_adaptation_and_source_switch_supersede_a_running_adapt(make):
    c = make()
    first = FakeAdapt(1.01)
    first.release.set()
    c.adaptation.adapt_fn = first
    run_demo(c)
    c.start_adapt()
    wait(lambda: c.state.adapted and c.state.adapt == "idle")
    adapted = weights(c)
    c.revert()
    wait(lambda: not c.state.adapted)
    second = FakeAdapt(3.0)
    c.adaptation.adapt_fn = second
    c.start_adapt()
    wait(lambda: c.state.adapt == "adapting")
    assert c.use_saved_adaptation()
    wait(lambda: c.state.adapted and c.state.adapt == "idle", what="saved adaptation live")
    second.release.set()
    time.sleep(0.2)
    assert same(adapted, weights(c))  # the saved one, not the superseded result
    # A source switch during Adapt: its result is discarded, the adaptation reverted.
    third = FakeAdapt(5.0)
    c.adaptation.adapt_fn = third
    c.revert()
    wait(lambda: not c.state.adapted)
    original = weights(c)
    c.start_adapt()
    wait(lambda: c.state.adapt == "adapting")
    run_demo(c, frames=5)
    third.release.set()
    wait(lambda: c.state.adapt == "idle")
    assert "source changed" in texts(c) and same(original, weights(c))


def test_adapt_failure_goes_to_the_log_file_with_its_traceback(make, tmp_path):
    log_file = configure_logging(0, tmp_path / "logs" / "app.log", stderr=False)
    try:
        c = make()

        def broken(*args, **kwargs):
            raise RuntimeError("boom in the adaptation")

        c.adaptation.adapt_fn = broken
        run_demo(c)
        c.start_adapt()
        wait(lambda: "failed" in texts(c), what="failure message")
        assert c.state.adapt == "idle"
        text = log_file.read_text()
        assert "Traceback" in text and "RuntimeError: boom in the adaptation" in text
    finally:
        configure_logging(0, None, stderr=False)
        logging.getLogger("distpose_app").setLevel(logging.WARNING)


# ------------------------------------------------------------------ quitting
def test_quit_while_recording_asks_save_discard_cancel(make):
    c = make()
    run_demo(c, frames=5)
    c.start_recording()
    wait(lambda: c.call_live_and_wait(lambda e: e.pipeline.recorder.num_frames) >= 10)
    ask = c.quit()
    assert not ask and ask.ask == QUIT_ANSWERS
    assert not c.quit("cancel") and c.state.recording and not c.state.closed
    assert not c.quit("later")  # not an answer
    save = c.quit("save")
    assert save and save.data is not None and save.data.num_frames >= 10
    assert not c.state.recording and not c.state.closed  # open until the take is exported
    path = c.takes.take_recovery[1]
    info = [i for i in recovery.find_recoverable() if i.path == path]
    assert info and info[0].complete  # kept as "stopped", never "interrupted"
    # Discard: the take and its file go, then the app closes.
    c2 = make()
    run_demo(c2, frames=5)
    c2.start_recording()
    wait(lambda: c2.call_live_and_wait(lambda e: e.pipeline.recorder.num_frames) >= 5)
    folder = recovery.default_dir()
    before = set(folder.glob("*"))
    assert c2.quit("discard")
    assert c2.state.closed and not (set(folder.glob("*")) - before)
    assert not c2.start_recording()  # closed: every intent refused


def test_close_while_recording_keeps_the_take_as_stopped(make):
    c = make()
    run_demo(c, frames=5)
    c.start_recording()
    wait(lambda: c.call_live_and_wait(lambda e: e.pipeline.recorder.num_frames) >= 5)
    c.close()
    (info,) = recovery.find_recoverable()
    assert info.complete and info.frames >= 5


# ------------------------------------------------------------------ every intent, every state
INTENTS = (
    ("open_source 7", lambda c: c.open_source("7")),
    ("reconnect", lambda c: c.reconnect()),
    ("replay", lambda c: c.replay()),
    ("pause", lambda c: c.set_paused(True)),
    ("resume", lambda c: c.set_paused(False)),
    ("loop", lambda c: c.set_loop(not c.state.loop)),
    ("every frame", lambda c: c.set_every_frame(not c.state.every_frame)),
    ("lens unknown", lambda c: c.set_known_lens(None)),
    ("bad calibration", lambda c: c.load_calibration("/no/such/calibration.yml")),
    ("adapt", lambda c: c.start_adapt()),
    ("adapt again", lambda c: c.start_adapt()),
    ("cancel", lambda c: c.cancel_adapt()),
    ("revert", lambda c: c.revert()),
    ("saved", lambda c: c.use_saved_adaptation()),
    ("record", lambda c: c.start_recording()),
    ("record again", lambda c: c.start_recording()),
    ("stop", lambda c: c.stop_recording()),
    ("stop again", lambda c: c.stop_recording()),
    ("export", lambda c: c.export(csv_path="/no/such/folder/take.csv")),
    ("discard take", lambda c: c.discard_take()),
    ("quit cancel", lambda c: c.quit("cancel")),
)


def into(state: str, c: AppController, fake: FakeAdapt) -> None:
    """Bring a fresh controller into `state`."""
    if state == "none":
        return
    if state == "failed":
        c.open_source("7")
        wait(lambda: c.state.source == "failed")
    elif state == "ended":
        c.open_source("walk.mp4", source=clip(80))
        wait(lambda: c.state.source == "ended")
    else:
        run_demo(c)
    if state == "paused":
        c.set_paused(True)
    elif state == "adapting":
        c.start_adapt()
        wait(lambda: c.state.adapt == "adapting")
    elif state == "recording":
        c.start_recording()


@pytest.mark.parametrize(
    "state", ["none", "running", "paused", "ended", "failed", "adapting", "recording"]
)
def test_every_intent_answers_at_once_in_every_state_and_nothing_sticks(make, state):
    c = make()
    fake = FakeAdapt()
    c.adaptation.adapt_fn = fake
    into(state, c, fake)
    for name, intent in INTENTS:
        start = time.monotonic()
        reply = intent(c)
        took = time.monotonic() - start
        assert isinstance(reply, Reply), name
        assert took < 1.0, f"{name} took {took:.2f} s in state {state}"
        assert reply.ok or reply.reason, f"{name} refused without a reason in state {state}"
    fake.release.set()
    # Whatever happened, the app can still be brought back to work: no stuck state.
    wait(lambda: c.state.adapt == "idle", what="adapt idle")
    if c.state.recording:
        assert c.stop_recording()
        wait(lambda: not c.state.recording)
    wait(lambda: not c.state.exporting)
    run_demo(c, frames=5)
    assert c.start_recording()
    wait(lambda: c.call_live_and_wait(lambda e: e.pipeline.recorder.num_frames) >= 3)
    assert c.stop_recording()
    wait(lambda: c.state.take_frames >= 3)
    assert c.quit()
    assert c.state.closed
    accepted_when_closed = [name for name, intent in INTENTS if intent(c)]
    assert accepted_when_closed == []  # closed: every intent refused, none hangs


# ------------------------------------------------------------------ messages
def test_messages_have_a_lifetime():
    now = [100.0]
    board = MessageBoard(clock=lambda: now[0])
    board.post("Reverted to the unadapted model.", key="adapt")
    board.post("export failed: no folder", "error", key="export")
    board.post("the adapted weights diverged", "warning", key="adapt2")
    now[0] += 7.0
    assert board.expire()
    assert [m.key for m in board.current()] == ["export", "adapt2"]  # info gone after 6 s
    now[0] += 10.0
    board.expire()
    assert [m.key for m in board.current()] == ["export"]  # warnings after 15 s
    now[0] += 1000.0
    board.expire()
    assert [m.key for m in board.current()] == ["export"]  # errors stay ...
    board.post("exported 10 frames", key="export")  # ... until their condition is gone
    assert [m.level for m in board.current()] == ["info"]


def test_lens_error_clears_once_a_good_lens_is_applied(make, tmp_path):
    import cv2

    c = make()
    run_demo(c, frames=5)
    assert not c.load_calibration(str(tmp_path / "missing.yml"))
    assert any(m.key == "lens" and m.level == "error" for m in c.state.messages)
    path = tmp_path / "cam.yml"
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", SIZE[0])
    fs.write("image_height", SIZE[1])
    fs.write("camera_matrix", np.array([[160.0, 0, 160], [0, 160.0, 90], [0, 0, 1]]))
    fs.write("distortion_coefficients", np.array([[-0.3, 0.06, 0.0, 0.0, 0.0]]))
    fs.release()
    assert c.load_calibration(str(path))
    wait(lambda: not any(m.key == "lens" for m in c.state.messages), what="lens error cleared")
    assert c.state.known_lens == "calibrated: cam.yml" and abs(c.state.hfov_deg - 90.0) < 1e-6


# ------------------------------------------------------------------ export settings
def test_export_asks_before_replacing_and_honours_the_root_lock(make, tmp_path):
    import json

    c = make()
    run_demo(c, frames=5)
    c.start_recording()
    wait(lambda: c.call_live_and_wait(lambda e: e.pipeline.recorder.num_frames) >= 20)
    c.stop_recording()
    wait(lambda: c.state.take_frames >= 20)
    target = tmp_path / "take.csv"
    target.write_text("precious")
    reply = c.export(csv_path=str(target))
    assert not reply and reply.ask == ("replace", "cancel") and target in reply.data
    assert target.read_text() == "precious" and not c.state.exporting
    assert c.set_root_lock(True) and not c.set_root_lock(True)
    assert c.export(csv_path=str(target), overwrite=True)
    wait(lambda: c.takes.exports_done == 1, what="the export")
    sidecar = json.loads((tmp_path / "take.csv.json").read_text())
    assert sidecar["world"]["root_locked"] is True
    assert target.read_text() != "precious"
    weights_file = c.options.weights
    refused_input = c.export(bvh_path=weights_file)  # an input is never written
    assert not refused_input and "input" in refused_input.reason
