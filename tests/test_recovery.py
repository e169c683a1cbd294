"""Recovery files keep the per-joint seen flags; files written before the flags still load."""

from __future__ import annotations

import json
import zlib

import numpy as np

from distpose_app.live import recovery
from distpose_app.live.pipeline import FrameResult
from distpose_app.live.recorder import Recorder


def _result(i: int, seen: np.ndarray, tracked: bool = True) -> FrameResult:
    pose = np.random.default_rng(i).normal(0, 0.3, (17, 3))
    pose[0] = 0
    conf = np.where(seen, 0.9, 0.0)
    return FrameResult(i, i / 30, pose_3d=pose, pose_index=i, pose_timestamp_s=i / 30,
                       pose_tracked=tracked, pose_confidence=conf, pose_seen=seen)  # fmt: skip


def test_seen_flags_survive_a_crash(tmp_path):
    seen = np.ones(17, bool)
    seen[[0, 1, 2, 3, 4, 5, 6, 7]] = False  # the lower body out of the picture
    recorder = Recorder(recovery_dir=tmp_path)
    recorder.start({"source": "test"})
    for i in range(6):
        recorder.add(_result(i, seen, tracked=i != 3))  # frame 3: a held pose, untracked
    recorder.flush()
    path = recorder.recovery_path
    recorder._writer._file.close()  # the process dies: no clean stop
    recorder._writer = None
    assert recovery.find_recoverable(tmp_path)[0].frames == 6
    rec = recovery.load(path)
    expected = np.tile(seen, (6, 1))
    expected[3] = False  # an untracked row saw nothing
    np.testing.assert_array_equal(rec.seen, expected)
    np.testing.assert_array_equal(rec.tracked, [True, True, True, False, True, True])


def test_a_recovery_file_from_before_seen_flags_still_loads(tmp_path):
    """Version 1 files: 288-byte records without the seen field (written by hand here)."""
    assert recovery.RECORD_V1.itemsize == 288 and recovery.RECORD_V2.itemsize == 288 + 17
    assert recovery.RECORD.itemsize == 288 + 17 + 17 * 2 * 4  # version 3: the 2D's image rays
    header = {
        "format": "distpose-recovery",
        "version": 1,
        "started": "2025-01-01T00:00:00",
        "pid": 1,
        "source": "old",
        "record_size": 288,
        "metadata": {"source": "old"},
    }
    records = np.zeros(4, recovery.RECORD_V1)
    records["kind"], records["t"] = recovery.KIND_FRAME, np.arange(4) / 30
    records["tracked"] = [1, 1, 0, 1]
    records["pos"] = np.random.default_rng(0).normal(0, 0.3, (4, 17, 3))
    records["pos"][2] = np.nan
    conf = np.full((4, 17), 0.8, np.float32)
    conf[:, [3, 6]] = 0.0  # the old pipeline zeroed the confidence of joints it did not see
    conf[2] = 0.0
    records["conf"] = conf
    for r in records:
        r["crc"] = zlib.crc32(r.tobytes()[:-4])
    path = tmp_path / "take-old.dprec"
    text = json.dumps(header).encode("ascii")
    path.write_bytes(recovery.MAGIC + text + b"\n" + records.tobytes())
    assert recovery.find_recoverable(tmp_path)[0].frames == 4
    rec = recovery.load(path)
    assert rec.num_frames == 4 and rec.tracked.tolist() == [True, True, False, True]
    expected = conf > 0
    np.testing.assert_array_equal(rec.seen, expected)
    assert rec.seen[:, [3, 6]].sum() == 0 and rec.seen[0].sum() == 15
    np.testing.assert_allclose(rec.positions[0], records["pos"][0], atol=1e-6)
