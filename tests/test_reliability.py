"""Reliability (docs/reliability.md): every failure a take can meet, provoked for real: a killed
recording process, a lost camera, bad video files and CLI values, messy keypoints, bad weights,
failing exports, and adaptations that are cancelled, diverge or arrive for a source that is
gone."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from distpose_app.adapt import iso as adapt
from distpose_app.cli import main as cli
from distpose_app.core.errors import DataFormatError, DistposeError, WeightsError
from distpose_app.export import export_recording
from distpose_app.lifter import model as M
from distpose_app.live import recovery
from distpose_app.live.capture import FakeSource, SourceError
from distpose_app.live.demo import DemoSource
from distpose_app.live.feed import LiveFeed
from distpose_app.live.pipeline import LivePipeline
from distpose_app.live.recorder import Recorder

REPO = Path(__file__).resolve().parents[1]
SIZE = (320, 180)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: threads only add contention on the shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Recovery files go to a temporary folder, never the user's."""
    monkeypatch.setenv("DISTPOSE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "recovery"


def _model(seed=0, channels=16):
    torch.manual_seed(seed)
    return M.TemporalModel(channels=channels, filter_widths=(3, 3), causal=True).eval()


def _demo_2d(frames, size=SIZE, lens="none"):
    return DemoSource(lens=lens, size=size, draw=False).pose_at(np.arange(frames) / 30.0)[1]


def _record(pipe, keypoints, start=0):
    for i, k in enumerate(keypoints, start):
        pipe.process_keypoints(k, None, i / 30.0, i)


# -- crash-safe recording ------------------------------------------------------------------------
def test_recovery_file_follows_the_take_and_a_torn_tail_is_dropped(data_dir):
    pipe = LivePipeline(_model(), "cpu", size=SIZE)
    pipe.recorder.start({"source": "demo (test)", "lens": {"state": "unknown"}})
    path = pipe.recorder.recovery_path
    assert path.parent == data_dir and path.is_file()
    kp = _demo_2d(40)
    kp[10:14] = np.nan  # a gap: untracked rows
    _record(pipe, kp)
    assert recovery.find_recoverable(data_dir) == []  # being written: not offered
    pipe.recorder.flush()
    # simulate a crash: the bytes as they are on disk now, plus half a record (a torn write)
    crashed = data_dir / "take-crashed.dprec"
    crashed.write_bytes(path.read_bytes() + b"\x07" * (recovery.RECORD.itemsize // 2))
    (info,) = recovery.find_recoverable(data_dir)
    assert info.path == crashed and info.frames == 40 and not info.complete
    assert info.source == "demo (test)" and info.started[:4].isdigit()
    assert info.duration_s == pytest.approx(39 / 30)
    got = recovery.load(crashed)
    ref = pipe.recorder.to_recording()
    np.testing.assert_array_equal(got.tracked, ref.tracked)
    np.testing.assert_array_equal(got.timestamps_s, ref.timestamps_s)
    np.testing.assert_allclose(got.positions, ref.positions, atol=1e-6, equal_nan=True)
    assert np.isfinite(got.positions[got.tracked]).all() and (~got.tracked[10:14]).all()
    assert got.metadata["lens"] == {"state": "unknown"}
    assert got.metadata["recovered_from"] == str(crashed)
    # a record corrupted in the middle: everything before it is kept
    data = bytearray(crashed.read_bytes())
    data[-recovery.RECORD.itemsize * 5] ^= 0xFF
    crashed.write_bytes(bytes(data))
    assert 30 <= recovery.load(crashed).num_frames < 40
    recovery.discard(crashed)
    # a clean stop deletes the take's file; keep_recovery keeps it (marked) until discarded
    pipe.recorder.stop()
    assert not path.exists() and pipe.recorder.recovery_path is None
    pipe.recorder.start({"source": "second"})
    _record(pipe, _demo_2d(10))
    pipe.recorder.stop(keep_recovery=True)
    (info,) = recovery.find_recoverable(data_dir)
    assert info.complete and info.frames == 10 and info.source == "second"
    # Starting another take before that one is saved must not lose it.
    pipe.recorder.start({"source": "third"})
    _record(pipe, _demo_2d(5))
    pipe.recorder.stop()
    (kept,) = recovery.find_recoverable(data_dir)
    assert kept.path == info.path and kept.frames == 10
    recovery.discard(kept.path)
    assert recovery.find_recoverable(data_dir) == []
    (data_dir / "junk.dprec").write_bytes(b"not a recovery file")
    assert recovery.find_recoverable(data_dir) == []
    with pytest.raises(DataFormatError, match="junk.dprec"):
        recovery.load(data_dir / "junk.dprec")


_RECORDING_SCRIPT = """
import sys, time
import torch
torch.set_num_threads(1)
from distpose_app.live.demo import DemoSource
from distpose_app.lifter.model import TemporalModel
from distpose_app.live.feed import LiveFeed
from distpose_app.live.pipeline import LivePipeline
torch.manual_seed(0)
model = TemporalModel(channels=16, filter_widths=(3, 3), causal=True).eval()
pipe = LivePipeline(model, "cpu")
session = LiveFeed(DemoSource(size=(320, 180), draw=False, noise_px=0.5), pipe, realtime=True)
pipe.recorder.start({"source": "demo in a subprocess"})
print("file", pipe.recorder.recovery_path, flush=True)
while True:
    if session.step(0.05) is not None:
        print("frames", pipe.recorder.num_frames, flush=True)
"""


def test_sigkill_while_recording_loses_at_most_a_second(data_dir):
    """A real recording process (30 fps demo, paced like a camera) killed with SIGKILL."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", _RECORDING_SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)  # fmt: skip
    printed, started = 0, None
    try:
        path = Path(proc.stdout.readline().split(" ", 1)[1].strip())
        for line in proc.stdout:
            printed = int(line.split()[1])
            started = started or time.monotonic()
            if time.monotonic() - started > 3.0:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    for line in proc.stdout.read().splitlines():  # what it printed up to its death
        printed = int(line.split()[1])
    assert proc.returncode == -signal.SIGKILL and printed >= 30, proc.stderr.read()[-2000:]
    (info,) = recovery.find_recoverable(data_dir)  # the dead process's lock is gone
    assert info.path == path and not info.complete and info.source == "demo in a subprocess"
    recording = recovery.load(path)
    lost = printed - recording.num_frames
    print(f"printed {printed} frames, recovered {recording.num_frames}")
    assert -1 <= lost <= 30, (printed, recording.num_frames)  # at most ~1 s at 30 fps
    assert np.all(np.diff(recording.timestamps_s) > 0)
    assert recording.tracked.mean() > 0.95
    assert np.isfinite(recording.positions[recording.tracked]).all()
    out = export_recording(recording, data_dir.parent / "recovered.bvh")
    assert out["frames"] == recording.num_frames
    recovery.discard(path)
    assert not path.exists()


def test_recovery_write_failure_does_not_stop_the_recording(data_dir, monkeypatch):
    pipe = LivePipeline(_model(), "cpu", size=SIZE)
    pipe.recorder.start()
    _record(pipe, _demo_2d(20))
    pipe.recorder.flush()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(recovery.os, "fsync", full)
    _record(pipe, _demo_2d(40)[20:], start=20)
    pipe.recorder.flush()
    assert "No space left" in pipe.recorder.recovery_error
    assert pipe.recorder.is_recording and pipe.recorder.num_frames == 40
    monkeypatch.undo()
    recording = pipe.recorder.stop()
    assert recording.num_frames == 40 and recording.tracked.all()
    # an uncreatable folder: memory only, said so
    blocker = data_dir.parent / "file"
    blocker.write_text("x")
    recorder = Recorder(recovery_dir=blocker / "recovery")
    recorder.start()
    assert recorder.is_recording and "no recovery file" in recorder.recovery_error


def test_recorder_keeps_time_increasing_across_sources():
    pipe = LivePipeline(_model(), "cpu", size=SIZE)
    pipe.recorder.start()
    _record(pipe, _demo_2d(20))
    pipe.begin_stream()  # another source: its clock starts at 0 again
    pipe.process_frame(DemoSource(size=(640, 360), draw=False).read())  # a new size is fine
    _record(pipe, _demo_2d(10, size=(640, 360)), start=1)
    t = pipe.recorder.stop().timestamps_s
    assert len(t) == 31 and np.all(np.diff(t) > 0)
    assert t[20] - t[19] >= 1 / 30 - 1e-9  # at least a frame time between the sources
    np.testing.assert_allclose(np.diff(t[20:]), 1 / 30)
    shared = Recorder(recovery_dir=None)
    a = LivePipeline(_model(), "cpu", size=SIZE, recorder=shared)
    shared.start()
    _record(a, _demo_2d(5))
    b = LivePipeline(_model(), "cpu", size=SIZE, recorder=shared)  # a rebuilt pipeline
    _record(b, _demo_2d(5))  # same timestamps again: moved after the first ones
    assert shared.num_frames == 10 and np.all(np.diff(shared.to_recording().timestamps_s) > 0)


# -- lost cameras --------------------------------------------------------------------------------
class _UnpluggedDemo(DemoSource):
    """The demo, unplugged after `fail_after` frames."""

    is_live = True

    def __init__(self, fail_after, **kw):
        super().__init__(**kw)
        self.fail_after = fail_after

    def read(self):
        if self.index >= self.fail_after:
            raise SourceError(f"{self.name} was unplugged")
        return super().read()


def _drain(session, limit=2000):
    results = []
    for _ in range(limit):
        item = session.step(timeout=0.5)
        if item is StopIteration:
            return results
        if item is not None:
            results.append(item)
    raise AssertionError("the session never ended")


def test_camera_lost_mid_take_then_switch_source_keeps_the_recording(tmp_path):
    pipe = LivePipeline(_model(), "cpu")
    camera = _UnpluggedDemo(25, size=SIZE, draw=False)
    session = LiveFeed(camera, pipe, realtime=False, lossless=True)
    pipe.recorder.start({"source": camera.name})
    with pytest.raises(SourceError, match="unplugged"):
        _drain(session)
    assert isinstance(session.error, SourceError)
    assert pipe.recorder.is_recording and pipe.recorder.num_frames == 25
    # the user picks another source: the take goes on
    session.switch_source(DemoSource(lens="moderate", size=(640, 360), frames=30, draw=False))
    assert session.error is None and pipe.size is None  # the new size comes with its frames
    _drain(session)
    pipe.flush()
    session.close()
    recording = pipe.recorder.stop()
    assert recording.num_frames == 55 and recording.tracked.all()
    assert np.all(np.diff(recording.timestamps_s) > 0)
    written = export_recording(recording, tmp_path / "take.bvh", tmp_path / "take.csv")
    assert written["frames"] == 55 and "nan" not in (tmp_path / "take.bvh").read_text().lower()


def test_camera_that_stops_delivering_can_be_reconnected():
    pipe = LivePipeline(_model(), "cpu", detector=_NoPerson())
    camera = FakeSource(size=SIZE, stop_after=6, delay_s=0.002)
    session = LiveFeed(camera, pipe, lossless=True)
    pipe.recorder.start()
    with pytest.raises(SourceError, match="stopped delivering"):
        _drain(session)
    assert pipe.recorder.num_frames == 6
    camera.stop_after = 10  # plugged back in: four more frames, then lost again
    session.reconnect()
    with pytest.raises(SourceError, match="stopped delivering"):
        _drain(session)
    recording = pipe.recorder.stop()
    assert recording.num_frames == 10 and not recording.tracked.any()
    assert np.all(np.diff(recording.timestamps_s) > 0)
    with pytest.raises(SourceError, match="missing.avi"):  # a source that cannot open
        session.switch_source(_missing_video())
    session.close()


def _missing_video():
    from distpose_app.live.capture import VideoFileSource

    return VideoFileSource("/nonexistent/missing.avi")


class _NoPerson:
    def detect(self, image):
        return None


# -- bad video files and command-line values ------------------------------------------------------
@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    M.save_checkpoint(path, _model())
    return str(path)


def _write_video(path, frames=30, size=(96, 64)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 8 * i % 256, np.uint8))
    writer.release()
    return path


def _cli(capsys, *argv):
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse's own errors: one line, exit 2 (cli._Parser)
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    return code, out, err.strip().splitlines()


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.avi", None, "not found"),
        ("empty.avi", b"", "empty"),
        ("notes.avi", b"a shopping list, not a video\n" * 40, "not a video"),
        ("folder.avi", "dir", "not a file"),
    ],
)
def test_bad_video_file_is_one_line_exit_2(tmp_path, capsys, weights, name, content, message):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    code, out, err = _cli(capsys, "process", str(path), "--weights", weights, "--quiet")
    assert code == 2 and out == "" and len(err) == 1
    assert message in err[0] and str(path) in err[0] and err[0].startswith("distpose process:")


def test_truncated_video_exports_what_it_read_and_exits_2(tmp_path, capsys, weights):
    path = _write_video(tmp_path / "cut.avi")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    csv = tmp_path / "cut.csv"
    code, _, err = _cli(capsys, "process", str(path), "--weights", weights, "--csv", str(csv),
                        "--device", "cpu", "--quiet")  # fmt: skip
    assert code == 2 and "truncated" in err[-1] and str(path) in err[-1]
    assert not any("Traceback" in line for line in err)
    rows = len(pd.read_csv(csv))
    assert 0 < rows < 30 and f"the {rows} frames before it" in err[-1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lens", "wobbly:1"], "unknown lens 'wobbly'"),
        (["--lens", "brown:a,b"], "brown"),
        (["--frames", "-5"], "argument --frames: must be >= 1, got -5"),
        (["--frames", "ten"], "argument --frames: expected an integer"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--hfov", "0"], "--hfov"),
    ],
)
def test_bad_cli_values_are_one_line_exit_2(tmp_path, capsys, weights, argv, message):
    video = _write_video(tmp_path / "ok.avi", frames=3)
    code, out, err = _cli(capsys, "process", str(video), "--weights", weights, *argv)
    assert code == 2 and out == "" and len(err) == 1 and message in err[0], err


# -- messy keypoints ----------------------------------------------------------------------------
def test_messy_keypoints_never_put_nan_in_the_3d_or_the_files(tmp_path):
    rng = np.random.default_rng(1)
    kp = _demo_2d(150)
    other = _demo_2d(150, lens="strong")[::-1] * 0.6 + [150.0, 40.0]  # someone else, elsewhere
    inputs = []
    for i, k in enumerate(kp):
        k = k.copy()
        if 20 <= i < 30:
            k = None  # nobody there
        elif 30 <= i < 40:
            k[[2, 3, 5, 6, 12, 13]] = np.nan  # only the upper body seen
        elif 40 <= i < 50:
            k[rng.integers(0, 17, 2)] = np.nan  # a couple of joints lost
        elif 50 <= i < 60:
            k[[3, 16]] = [[5e5, -3e5], [np.inf, 0]]  # joints far out of the image / infinite
        elif 60 <= i < 80 and i % 3:
            k = other[i]  # a second person walks through: the detector jumps between them
        elif 80 <= i < 90:
            k = np.full((17, 2), np.nan)
        elif 90 <= i < 100:
            k = k + rng.normal(0, 40, k.shape)  # a very noisy detection
        inputs.append(k)
    pipe = LivePipeline(_model(channels=32), "cpu", size=SIZE)
    pipe.recorder.start({"source": "messy"})
    results = [pipe.process_keypoints(k, None, i / 30.0, i) for i, k in enumerate(inputs)]
    results += pipe.flush()
    poses = [r.pose_3d for r in results if r.pose_3d is not None]
    assert len(poses) > 100 and all(np.isfinite(p).all() for p in poses)
    recording = pipe.recorder.stop()
    assert recording.num_frames == 150 and 0 < recording.tracked.sum() < 150
    assert np.isfinite(recording.positions[recording.tracked]).all()
    out = export_recording(recording, tmp_path / "messy.bvh", tmp_path / "messy.csv")
    motion = (tmp_path / "messy.bvh").read_text().split("MOTION", 1)[1]
    assert "nan" not in motion.lower() and "inf" not in motion.lower()
    table = pd.read_csv(tmp_path / "messy.csv")
    positions = table.filter(regex=r"_[xyz]$|_[xyz]_m$").to_numpy()
    present = (table["tracked"] == 1) | (table["interpolated"] == 1)
    assert len(table) == 150 and positions.shape[1] == 51
    assert np.isfinite(positions[present.to_numpy()]).all()
    sidecar = json.loads((tmp_path / "messy.csv.json").read_text(),
                         parse_constant=lambda c: pytest.fail(f"{c} in the sidecar"))  # fmt: skip
    assert sidecar["frames"] == 150 and out["interpolated_frames"] > 0
    # the upper body alone is tracked, its legs flagged unseen
    assert recording.tracked[30:40].all() and not recording.seen[30:40, [2, 3, 5, 6]].any()


# -- weights ------------------------------------------------------------------------------------
def test_weights_fall_back_to_the_shipped_model(tmp_path, monkeypatch):
    shipped = tmp_path / "pretrained"
    monkeypatch.setattr(M, "PRETRAINED_DIR", shipped)
    M.save_checkpoint(shipped / "live.pt", _model(channels=24), {"name": "shipped"})
    good = M.save_checkpoint(tmp_path / "mine.pt", _model(channels=32), {"name": "mine"})
    model, meta, warning = M.load_model_or_fallback(good, "live")
    assert warning is None and meta["name"] == "mine" and model.channels == 32
    model, meta, warning = M.load_model_or_fallback(None, "live")
    assert warning is None and meta["name"] == "shipped" and meta["source"].endswith("live.pt")

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:300])
    joints16 = M.save_checkpoint(
        tmp_path / "j16.pt", M.TemporalModel(num_joints=16, filter_widths=(3,), channels=8)
    )
    payload = torch.load(good, weights_only=True)
    payload["config"]["filter_widths"] = [3, 3, 3]  # the weights have two blocks fewer
    torch.save(payload, tmp_path / "arch.pt")
    cases = {
        tmp_path / "gone.pt": "not found",
        truncated: "truncated",
        joints16: "16 joints, expected 17",
        tmp_path / "arch.pt": "do not match",
    }
    for path, problem in cases.items():
        model, meta, warning = M.load_model_or_fallback(path, "live")
        assert meta["name"] == "shipped" and model.channels == 24
        assert str(path) in warning and problem in warning and "'live' instead" in warning
    with pytest.raises(WeightsError, match="truncated.pt.*fallback: no pretrained model 'gone'"):
        M.load_model_or_fallback(truncated, "gone")
    (shipped / "live.pt").unlink()
    with pytest.raises(WeightsError, match="no shipped model"):
        M.load_model_or_fallback(truncated, None)


def test_saved_adaptation_that_no_longer_loads_is_ignored_with_a_warning(tmp_path):
    model = _model(channels=16)
    adapted = _model(seed=1, channels=16)
    good = tmp_path / "cam.pt"
    torch.save({"state_dict": adapted.state_dict(), "summary": {"saved": "today"}}, good)
    state, warning = adapt.load_saved_adaptation(good, model)
    assert warning is None and torch.equal(state["shrink.bias"], adapted.shrink.bias)
    raw = tmp_path / "raw.pt"
    torch.save(adapted.state_dict(), raw)
    assert adapt.load_saved_adaptation(raw, model)[1] is None
    assert adapt.load_saved_adaptation(tmp_path / "none.pt", model) == (None, None)

    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:100])
    torch.save({"state_dict": _model(channels=32).state_dict()}, tmp_path / "wide.pt")
    bigger = M.TemporalModel(channels=16, filter_widths=(3, 3, 3), causal=True)
    torch.save({"state_dict": bigger.state_dict()}, tmp_path / "deeper.pt")
    broken = {k: v.clone() for k, v in adapted.state_dict().items()}
    broken["expand_bn.weight"][0] = float("nan")
    torch.save({"state_dict": broken}, tmp_path / "nan.pt")
    torch.save({"state_dict": "weights"}, tmp_path / "odd.pt")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for name, problem in [("cut.pt", "unreadable"), ("wide.pt", "another model"),
                          ("deeper.pt", "unexpected layers_"), ("nan.pt", "non-finite"),
                          ("odd.pt", "not a weights file")]:  # fmt: skip
        state, warning = adapt.load_saved_adaptation(tmp_path / name, model)
        assert state is None and name in warning and problem in warning, warning
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    pipe = LivePipeline(model, "cpu", size=SIZE)
    pipe.set_model_state(adapt.load_saved_adaptation(good, model)[0])
    assert pipe.is_adapted


# -- exports ------------------------------------------------------------------------------------
def test_failed_exports_keep_the_take_and_leave_no_half_file(tmp_path, data_dir, monkeypatch):
    from distpose_app.core import fileio

    pipe = LivePipeline(_model(channels=32), "cpu", size=SIZE)
    pipe.recorder.start({"source": "demo"})
    _record(pipe, _demo_2d(60))
    take = pipe.recorder.stop(keep_recovery=True)  # kept on disk until saved
    kept = pipe.recorder.recovery_path
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DistposeError, match="folder .*nowhere does not exist"):
        export_recording(take, tmp_path / "nowhere" / "take.bvh")

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "fsync", disk_full)
    with pytest.raises(DistposeError, match="take.bvh: No space left on device"):
        export_recording(take, out / "take.bvh", out / "take.csv")
    monkeypatch.undo()

    def no_permission(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(fileio.tempfile, "mkstemp", no_permission)
    with pytest.raises(DistposeError, match="take.csv: Permission denied"):
        export_recording(take, None, out / "take.csv")
    monkeypatch.undo()
    assert list(out.iterdir()) == []  # no half file, no temporary file
    assert kept.is_file() and recovery.load(kept).num_frames == 60  # the take is safe on disk
    assert take.num_frames == 60 and pipe.recorder.num_frames == 60  # ... and in memory
    written = export_recording(take, out / "take.bvh", out / "take.csv")  # the retry works
    assert written["frames"] == 60
    assert sorted(p.name for p in out.iterdir()) == [
        "take.bvh", "take.bvh.json", "take.csv", "take.csv.json"]  # fmt: skip
    assert len(pd.read_csv(out / "take.csv")) == 60
    pipe.recorder.discard_recovery()
    assert not kept.exists()


# -- adaptation ---------------------------------------------------------------------------------
def _adapt_pipe(frames=90):
    pipe = LivePipeline(_model(channels=16), "cpu", size=SIZE)
    _record(pipe, _demo_2d(frames, lens="moderate"))
    return pipe


def _weights(pipe):
    return {k: v.clone() for k, v in pipe.model.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("cancel_at", [0, 1, 4])
def test_cancel_at_any_moment_keeps_the_previous_weights(cancel_at):
    pipe = _adapt_pipe()
    before = _weights(pipe)
    ticket = pipe.begin_adaptation()
    config = adapt.IsoConfig(steps=6, params="all", lr=1e-3, crop_frames=8, crops_per_step=2)

    def progress(done, total):
        if done >= cancel_at:
            pipe.cancel_adaptation()  # the user presses Cancel (a thread-safe flag)

    if cancel_at == 0:
        ticket.cancel()
    result = adapt.iso_adapt(ticket.model, ticket.keypoints_2d, config, progress,
                             ticket.should_cancel)  # fmt: skip
    assert result.reason == "cancelled" and not result.accepted
    applied, message = pipe.finish_adaptation(ticket, result)
    assert not applied and "cancelled" in message and "previous weights kept" in message
    assert _same(_weights(pipe), before) and not pipe.is_adapted
    assert pipe.begin_adaptation() is not ticket  # a new Adapt may start


def test_cancel_from_another_thread_while_adapting():
    pipe = _adapt_pipe()
    before = _weights(pipe)
    ticket = pipe.begin_adaptation()
    started = threading.Event()
    out = []

    def work():
        out.append(adapt.iso_adapt(ticket.model, ticket.keypoints_2d,
                                   adapt.IsoConfig(steps=10_000, crops_per_step=2),
                                   lambda d, t: started.set(),
                                   ticket.should_cancel))  # fmt: skip

    thread = threading.Thread(target=work)
    thread.start()
    assert started.wait(30)
    pipe.cancel_adaptation()
    thread.join(30)
    assert not thread.is_alive() and out[0].reason == "cancelled" and out[0].steps < 10_000
    assert not pipe.finish_adaptation(ticket, out[0])[0] and _same(_weights(pipe), before)


def test_diverging_adaptation_is_reverted_and_reported():
    pipe = _adapt_pipe()
    before = _weights(pipe)
    # the guard of iso_adapt: a wild learning rate is rejected, the weights stay
    ticket = pipe.begin_adaptation()
    config = adapt.IsoConfig(steps=5, params="all", lr=10.0, crop_frames=8, crops_per_step=2)
    result = adapt.iso_adapt(ticket.model, ticket.keypoints_2d, config)
    applied, message = pipe.finish_adaptation(ticket, result)
    assert not result.accepted and not applied and "rejected" in message
    assert _same(_weights(pipe), before)
    # non-finite weights never load
    broken = {k: v.clone() for k, v in before.items()}
    broken["shrink.weight"][0, 0, 0] = float("inf")
    with pytest.raises(WeightsError, match="not finite"):
        pipe.set_model_state(broken)
    assert _same(_weights(pipe), before) and not pipe.is_adapted
    with pytest.raises(WeightsError, match="do not fit"):
        pipe.set_model_state({"shrink.bias": torch.zeros(3)})
    assert _same(_weights(pipe), before)
    # weights that pass the checks but blow up live: reverted at the first absurd pose
    wild = {k: v.clone() for k, v in before.items()}
    wild["shrink.bias"] += torch.linspace(-1e4, 1e4, 51)
    ticket = pipe.begin_adaptation()
    assert pipe.finish_adaptation(ticket, adapt.AdaptResult(wild, True, "adapted")) == (
        True, "adapted")  # fmt: skip
    pipe.recorder.start()
    kp = _demo_2d(100, lens="moderate")
    results = [pipe.process_keypoints(kp[i], None, i / 30, i) for i in range(90, 100)]
    assert not pipe.is_adapted and _same(_weights(pipe), before)
    assert any("diverged" in w for w in pipe.take_warnings()) and pipe.take_warnings() == []
    poses = [r.pose_3d for r in results if r.pose_3d is not None]
    assert len(poses) >= 8 and all(np.abs(p).max() < 10 for p in poses)
    recording = pipe.recorder.stop()
    assert np.nanmax(np.abs(recording.positions)) < 10


def test_adapt_twice_and_source_switch_while_adapting():
    pipe = _adapt_pipe()
    before = _weights(pipe)
    first = pipe.begin_adaptation()
    with pytest.raises(DistposeError, match="already running"):
        pipe.begin_adaptation()  # pressing Adapt twice
    good = adapt.AdaptResult(_model(seed=3).state_dict(), True, "adapted")
    # the source changes while it runs: the result is for the old camera
    pipe.begin_stream(size=SIZE)
    assert first.cancelled and "source" in first.reason
    applied, message = pipe.finish_adaptation(first, good)
    assert not applied and "source" in message and _same(_weights(pipe), before)
    # a stream change that is not a cancel (e.g. computed, then reset) is refused by its tag
    _record(pipe, _demo_2d(90, lens="moderate"))
    second = pipe.begin_adaptation()
    pipe._adaptation = None  # as if superseded
    third = pipe.begin_adaptation()
    assert not pipe.finish_adaptation(second, good)[0]
    pipe.stream_id += 1
    applied, message = pipe.finish_adaptation(third, good)
    assert not applied and "source changed" in message
    fourth = pipe.begin_adaptation()
    assert pipe.finish_adaptation(fourth, None) == (False, "the adaptation failed: previous "
                                                           "weights kept")  # fmt: skip
    fifth = pipe.begin_adaptation()
    assert pipe.finish_adaptation(fifth, good) == (True, "adapted") and pipe.is_adapted
