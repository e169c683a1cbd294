"""Probes of what a take meets on disk (docs/reliability.md, "Untrusted input"): a disk that
fills while recording, recovery files that are damaged, foreign or not files at all, and
exports aimed at inputs, at each other or at existing files. No take may be lost, no file the
user did not name may change, and nothing may raise out of the live loop."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import threading
import zlib

import cv2
import numpy as np
import pytest
import torch

from distpose_app.cli import main as cli
from distpose_app.core.errors import DistposeError
from distpose_app.export import (
    ExistingFilesError,
    Recording,
    existing_targets,
    export_recording,
)
from distpose_app.lifter import model as M
from distpose_app.live import recovery
from distpose_app.live.pipeline import FrameResult, LivePipeline
from distpose_app.live.recorder import Recorder

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTPOSE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "recovery"


class _FillingDisk(io.RawIOBase):
    """A file on a disk with `room` bytes left: writes beyond it are cut short, then fail with
    ENOSPC, as a real full disk does (under a real BufferedWriter, whose close() flushes and
    re-raises the error)."""

    def __init__(self, path, mode, room):
        self._file = io.FileIO(path, mode)
        self.room = room

    def writable(self):
        return True

    def write(self, data):
        n = min(len(data), self.room)
        if n == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= n
        return self._file.write(bytes(data[:n]))

    def fileno(self):
        return self._file.fileno()

    def close(self):
        self._file.close()
        super().close()


def _fill_disk(monkeypatch, room):
    """Recovery files opened from now on get `room` bytes; returns the list of their raw files
    (to change the room later)."""
    opened = []

    def fake_open(path, mode="r", *args, **kwargs):
        if mode == "xb":
            raw = _FillingDisk(path, mode, room)
            opened.append(raw)
            return io.BufferedWriter(raw)
        return builtins.open(path, mode, *args, **kwargs)

    monkeypatch.setattr(recovery, "open", fake_open, raising=False)
    return opened


def _result(i):
    pose = np.random.default_rng(i).normal(0, 0.3, (17, 3))
    pose[0] = 0
    return FrameResult(i, i / 30, pose_3d=pose, pose_index=i, pose_timestamp_s=i / 30,
                       pose_tracked=True, pose_confidence=np.full(17, 0.9),
                       pose_seen=np.ones(17, bool))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# A disk that fills during a take
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("keep", [False, True])
def test_disk_fills_mid_take_the_take_stays_in_memory(tmp_path, monkeypatch, keep):
    opened = _fill_disk(monkeypatch, room=10**9)
    recorder = Recorder(recovery_dir=tmp_path / "rec")
    recorder.start({"source": "test"})
    for i in range(50):
        recorder.add(_result(i))
    recorder.flush()
    path = recorder.recovery_path
    opened[0].room = recovery.RECORD.itemsize * 10 + 100  # the disk fills mid-record
    for i in range(50, 400):
        recorder.add(_result(i))  # never raises
        if i % 40 == 0:
            recorder.flush()
    recorder.flush_if_due()
    assert "No space left" in recorder.recovery_error and recorder.is_recording
    recording = recorder.stop(keep_recovery=keep)  # the reported "write to closed file"
    assert recording.num_frames == 400 and recording.tracked.all()
    out = export_recording(recording, tmp_path / "take.bvh", tmp_path / "take.csv")
    assert out["frames"] == 400
    if keep:  # kept until exported, with the frames that reached the disk
        assert recorder.recovery_path == path and path.is_file()
        assert 50 <= recovery.load(path).num_frames < 400
        recorder.discard_recovery()
    assert not path.exists()  # a clean stop (or the discard) leaves nothing behind


def test_disk_full_at_the_first_byte_leaves_no_empty_file(tmp_path, monkeypatch):
    _fill_disk(monkeypatch, room=0)
    recorder = Recorder(recovery_dir=tmp_path / "rec")
    recorder.start()
    assert "No space left" in recorder.recovery_error
    for i in range(20):
        recorder.add(_result(i))
    assert recorder.stop().num_frames == 20
    assert list((tmp_path / "rec").iterdir()) == []  # no 0-byte .dprec


def test_the_live_loop_survives_a_full_disk(tmp_path, monkeypatch):
    opened = _fill_disk(monkeypatch, room=10**9)
    torch.manual_seed(0)
    model = M.TemporalModel(channels=16, filter_widths=(3, 3), causal=True).eval()
    pipe = LivePipeline(model, "cpu", size=(320, 180))
    pipe.recorder.recovery_dir = tmp_path / "rec"
    pipe.recorder.start()
    rng = np.random.default_rng(0)
    base = rng.uniform(80, 240, (17, 2))
    for i in range(120):
        if i == 40:
            opened[0].room = 0
        pipe.process_keypoints(base + rng.normal(0, 1, (17, 2)), np.full(17, 0.9), i / 30, i)
        if i % 10 == 0:
            pipe.recorder.flush()
    pipe.flush()
    assert pipe.recorder.recovery_error and pipe.recorder.is_recording
    recording = pipe.recorder.stop()
    assert recording.num_frames == 120
    export_recording(recording, tmp_path / "t.bvh")


# ---------------------------------------------------------------------------------------------
# Recovery files that are damaged or are not recovery files
# ---------------------------------------------------------------------------------------------
def _take(folder, name, frames=100, header=None):
    """A recovery file as the writer makes it, with `frames` records; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    head = header if header is not None else json.dumps({
        "format": "distpose-recovery", "version": 2, "started": name, "pid": 1,
        "source": name, "record_size": recovery.RECORD.itemsize, "metadata": {},
    }).encode()  # fmt: skip
    records = [recovery.make_record(i / 30, np.full((17, 3), i, np.float32), np.ones(17), True)
               for i in range(frames)]  # fmt: skip
    path = folder / f"take-{name}.dprec"
    path.write_bytes(recovery.MAGIC + head + b"\n" + b"".join(r.tobytes() for r in records))
    return path


def _damage(path, offset, data=None, insert=False):
    body = bytearray(path.read_bytes())
    start = body.index(b"\n", len(recovery.MAGIC)) + 1 + offset
    if insert:
        body[start:start] = data
    else:
        body[start] ^= 0x40  # one flipped bit
    path.write_bytes(bytes(body))


def test_one_bad_file_hides_no_other_take(data_dir):
    good = _take(data_dir, "good")
    odd = _take(data_dir, "list-header", header=b"[1, 2, 3]")
    stringy = _take(data_dir, "string-size", header=json.dumps({"record_size": "305"}).encode())
    notes = data_dir / "notes.dprec"
    notes.write_text("my shopping list")
    (data_dir / "folder.dprec").mkdir()
    link = data_dir / "link.dprec"
    link.symlink_to(good)
    found = recovery.find_recoverable()
    assert [i.path for i in found] == [good] and found[0].frames == 100
    damaged = data_dir / "damaged"
    assert sorted(p.name for p in damaged.iterdir()) == sorted([odd.name, stringy.name,
                                                                  notes.name])  # fmt: skip
    assert (damaged / notes.name).read_text() == "my shopping list"  # moved, never changed
    assert link.is_symlink() and (data_dir / "folder.dprec").is_dir()  # left alone


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (0, 99),  # a bit flip in record 0 (it deleted the whole file)
        (10, 99),  # in record 10 of 100 (only 10 frames came back)
        (99, 99),  # in the last record
    ],
)
def test_bad_records_are_skipped(data_dir, where, expected):
    path = _take(data_dir, "flip")
    _damage(path, where * recovery.RECORD.itemsize + 40)
    (info,) = recovery.find_recoverable()
    assert info.frames == expected and path.is_file()
    rec = recovery.load(path)
    kept = rec.positions[:, 1, 0].round().astype(int).tolist()
    assert kept == [i for i in range(100) if i != where]


def test_reading_resyncs_after_shifted_bytes(data_dir):
    path = _take(data_dir, "shift")
    _damage(path, 30 * recovery.RECORD.itemsize + 7, b"\x00junk\x01", insert=True)
    _damage(path, 60 * recovery.RECORD.itemsize + 7 + 120, b"\xff" * 3, insert=True)
    rec = recovery.load(path)
    kept = rec.positions[:, 1, 0].round().astype(int).tolist()
    assert kept == [i for i in range(100) if i not in (30, 60)]


def test_torn_and_empty_files(data_dir):
    torn = _take(data_dir, "torn")
    torn.write_bytes(torn.read_bytes()[:-100])  # killed mid-record
    empty = _take(data_dir, "empty", frames=0)  # nothing was recorded: nothing to lose
    stub = _take(data_dir, "stub", frames=0)
    stub.write_bytes(stub.read_bytes() + b"\x01" * 100)  # less than one record: kept aside
    (info,) = recovery.find_recoverable()
    assert info.path == torn and info.frames == 99
    assert not empty.exists() and (data_dir / "damaged" / stub.name).is_file()


def test_a_fifo_named_like_a_recovery_file_does_not_block(data_dir):
    good = _take(data_dir, "good")
    fifo = data_dir / "take-fifo.dprec"
    os.mkfifo(fifo)
    result = []
    thread = threading.Thread(target=lambda: result.append(recovery.find_recoverable()),
                              daemon=True)  # fmt: skip
    thread.start()
    thread.join(10)
    assert result and [i.path for i in result[0]] == [good]
    assert fifo.exists()
    if thread.is_alive():  # pragma: no cover - unblock the reader before failing
        with open(fifo, "wb"):
            pass


# ---------------------------------------------------------------------------------------------
# Exports: never onto an input, never two on one path, never over a file without consent
# ---------------------------------------------------------------------------------------------
def _recording(frames=30):
    t = np.arange(frames) / 30
    pos = np.random.default_rng(1).normal(0, 0.2, (frames, 17, 3))
    pos[:, 0] = 0
    return Recording(pos, t)


def _write_video(path, frames=8, size=(96, 64)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 8 * i % 256, np.uint8))
    writer.release()
    return path


def _cli(capsys, *argv):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err.strip().splitlines()


def _state(folder):
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_process_exports_never_overwrite_silently(tmp_path, capsys, tiny_weights):
    video = _write_video(tmp_path / "clip.avi")
    existing = tmp_path / "old.csv"
    existing.write_text("my results\n")
    weights = tmp_path / "w.pt"
    weights.write_bytes(open(tiny_weights, "rb").read())
    before = _state(tmp_path)
    probes = {
        "input video": (["--csv", video], "overwrite the input"),
        "weights": (["--bvh", weights, "--weights", weights], "overwrite the input"),
        "same path": (["--bvh", tmp_path / "out.txt", "--csv", tmp_path / "out.txt"],
                      "one file"),
        "sidecar": (["--bvh", tmp_path / "take.bvh", "--csv", tmp_path / "take.bvh.json"],
                    "one file"),
        "existing": (["--csv", existing], "give --force"),
        "folder": (["--csv", tmp_path], "folder"),
    }  # fmt: skip
    for name, (argv, message) in probes.items():
        if "--weights" not in argv:
            argv = [*argv, "--weights", weights]
        code, err = _cli(capsys, "process", video, *argv, "--quiet")
        assert code == 2 and len(err) == 1 and message in err[0], (name, err)
    assert _state(tmp_path) == before  # nothing the user did not name changed: nothing at all
    code, err = _cli(capsys, "process", video, "--csv", existing, "--force", "--weights",
                     weights, "--quiet", "--device", "cpu")  # fmt: skip
    assert code == 0 and existing.read_text().startswith("frame")
    assert (tmp_path / "old.csv.json").is_file() and video.read_bytes()[:4] == b"RIFF"


def test_export_library_rules(tmp_path):
    rec = _recording()
    source = tmp_path / "take-x.dprec"
    source.write_bytes(b"recovery")
    link = tmp_path / "hard.bvh"
    os.link(source, link)
    with pytest.raises(DistposeError, match="overwrite the input"):
        export_recording(rec, link, inputs=[source])  # a hard link is the same file
    with pytest.raises(DistposeError, match="one file"):
        export_recording(rec, tmp_path / "a.csv.json", tmp_path / "a.csv")
    export_recording(rec, tmp_path / "a.bvh")
    stamp = (tmp_path / "a.bvh").stat().st_mtime_ns
    with pytest.raises(ExistingFilesError) as info:
        export_recording(rec, tmp_path / "a.bvh", tmp_path / "new.csv")
    assert [p.name for p in info.value.paths] == ["a.bvh", "a.bvh.json"]
    assert (tmp_path / "a.bvh").stat().st_mtime_ns == stamp and not (tmp_path / "new.csv").exists()
    export_recording(rec, tmp_path / "a.bvh", overwrite=True)
    assert source.read_bytes() == b"recovery"


def test_existing_targets_asks_only_about_what_was_not_confirmed(tmp_path):
    (tmp_path / "t.bvh").write_text("x")
    (tmp_path / "t.bvh.json").write_text("x")
    (tmp_path / "orphan.csv.json").write_text("x")
    assert [p.name for p in existing_targets(tmp_path / "t.bvh", None)] == ["t.bvh", "t.bvh.json"]
    assert existing_targets(tmp_path / "t.bvh", None, confirmed=[tmp_path / "t.bvh"]) == []
    # a save dialog asks nothing about a file that does not exist, so its sidecar is asked for
    asked = existing_targets(None, tmp_path / "orphan.csv", confirmed=[tmp_path / "orphan.csv"])
    assert [p.name for p in asked] == ["orphan.csv.json"]


def test_the_window_asks_before_replacing(qtbot, tmp_path, monkeypatch, tiny_weights):
    """The app's export goes through existing_targets and `confirm_replace` before its
    background task starts; refused targets fail like any export, with a dialog."""
    from distpose_app.gui.main_window import AppOptions, MainWindow

    monkeypatch.setenv("DISTPOSE_APP_DATA", str(tmp_path / "appdata"))
    options = AppOptions(source="demo", device="cpu", weights=tiny_weights)
    options.pace, options.demo_size = False, (320, 180)
    win = MainWindow(options)
    qtbot.addWidget(win)
    takes = win.controller.takes
    try:
        takes.take = _recording()
        target = tmp_path / "take.bvh"
        target.write_text("precious")
        answers = []
        monkeypatch.setattr(win, "confirm_replace", lambda paths: answers.append(paths) or False)
        assert not win.export(bvh_path=str(target))
        assert target.read_text() == "precious" and [p.name for p in answers[0]] == ["take.bvh"]
        monkeypatch.setattr(win, "confirm_replace", lambda paths: True)
        assert win.export(bvh_path=str(target))
        qtbot.waitUntil(lambda: takes.exports_done == 1, timeout=15000)
        assert target.read_text().startswith("HIERARCHY")
        monkeypatch.setattr(win, "warn", lambda title, message: answers.append(message))
        assert not win.export(bvh_path=tiny_weights)  # the weights are an input
        qtbot.waitUntil(lambda: takes.exports_done == 2, timeout=5000)
        qtbot.waitUntil(lambda: "overwrite the input" in str(answers[-1]), timeout=5000)
    finally:
        win.close()


def test_recovery_writer_and_reader_agree_on_crc():
    rec = recovery.make_record(1.0, np.zeros((17, 3)), np.ones(17), True)
    raw = rec.tobytes()
    assert zlib.crc32(raw[:-4]) == int.from_bytes(raw[-4:], "little")
    assert recovery._valid_at(raw, 0, recovery.RECORD)
    assert not recovery._valid_at(raw[:-1] + b"x", 0, recovery.RECORD)
