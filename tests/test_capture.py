"""Frame sources and the capture thread: fakes that stop or fail, drop counting, video files."""

from __future__ import annotations

import os
import time

import cv2
import numpy as np
import pytest

from distpose_app.core.errors import DistposeError
from distpose_app.live.capture import (
    CameraSource,
    CaptureThread,
    FakeSource,
    Frame,
    FrameSource,
    SourceError,
    VideoFileSource,
    list_cameras,
    open_source,
)


def _write_video(path, frames=10, size=(64, 48), fourcc="mp4v", fps=30.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i, np.uint8))
    writer.release()
    return path


def _drain(thread: CaptureThread) -> list[Frame]:
    frames = []
    while not thread.exhausted:
        frame = thread.get(timeout=1.0)
        if frame is not None:
            frames.append(frame)
    return frames


def test_sources_satisfy_protocol(tmp_path):
    assert isinstance(FakeSource(), FrameSource)
    assert isinstance(VideoFileSource(tmp_path / "x.mp4"), FrameSource)
    assert isinstance(CameraSource(0), FrameSource)


def test_lossless_thread_delivers_every_frame_in_order():
    source = FakeSource(frames=7, is_live=False)
    thread = CaptureThread(source, realtime=False, lossless=True)
    thread.start()
    frames = _drain(thread)
    thread.join(2)
    assert [f.index for f in frames] == list(range(7))
    assert [int(f.image[0, 0, 0]) for f in frames] == list(range(7))
    assert thread.error is None and thread.end_reason == "end of stream"
    assert thread.frames_dropped == 0 and source.closed
    assert all(f.received_s is not None for f in frames)


def test_slot_keeps_only_the_newest_frame_and_counts_drops():
    thread = CaptureThread(FakeSource(frames=20, is_live=False), realtime=False)
    thread.start()
    thread.ended.wait(5)  # nobody reads while it runs: 19 frames are overwritten
    frame = thread.get()
    assert frame.index == 19
    assert thread.frames_read == 20 and thread.frames_dropped == 19
    assert thread.get() is None and thread.exhausted


def test_live_source_that_stops_delivering_is_reported():
    errors = []
    thread = CaptureThread(FakeSource(stop_after=3, is_live=True), on_error=errors.append,
                           lossless=True)  # fmt: skip
    thread.start()
    frames = _drain(thread)
    assert [f.index for f in frames] == [0, 1, 2]  # what came before the loss is kept
    assert isinstance(thread.error, SourceError) and isinstance(thread.error, DistposeError)
    assert "stopped delivering" in str(thread.error) and "fake camera" in str(thread.error)
    assert errors == [thread.error]


def test_source_that_raises_is_reported_not_silent():
    errors = []
    source = FakeSource(fail_after=2, name="cam X")
    thread = CaptureThread(source, on_error=errors.append, lossless=True)
    thread.start()
    frames = _drain(thread)
    assert len(frames) == 2 and len(errors) == 1
    assert "cam X was unplugged" in str(errors[0]) and thread.end_reason == str(errors[0])
    assert source.closed


def test_unexpected_exception_becomes_source_error():
    class Broken(FakeSource):
        def read(self):
            raise RuntimeError("driver crashed")

    errors = []
    thread = CaptureThread(Broken(name="cam B"), on_error=errors.append)
    thread.start()
    thread.join(2)
    assert isinstance(errors[0], SourceError)
    assert "cam B" in str(errors[0]) and "RuntimeError: driver crashed" in str(errors[0])


def test_stop_ends_an_endless_live_source():
    source = FakeSource(delay_s=0.005)
    thread = CaptureThread(source)
    thread.start()
    assert thread.get(timeout=2.0) is not None
    thread.stop()
    assert not thread.is_alive() and thread.ended.is_set()
    assert thread.end_reason == "stopped" and thread.error is None and source.closed


def test_realtime_paces_a_file_to_its_fps():
    thread = CaptureThread(FakeSource(frames=6, fps=50.0, is_live=False), lossless=True)
    t0 = time.monotonic()
    thread.start()
    frames = _drain(thread)
    elapsed = time.monotonic() - t0
    assert len(frames) == 6 and elapsed >= 5 / 50.0 * 0.9  # frame 5 is due at 0.1 s


def test_video_file_round_trip(tmp_path):
    path = _write_video(tmp_path / "clip.mp4", frames=10)
    source = VideoFileSource(path)
    source.open()
    assert source.size == (64, 48) and source.fps == pytest.approx(30.0)
    assert source.frame_count == 10 and source.name == "clip.mp4" and not source.is_live
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    source.close()
    assert [f.index for f in frames] == list(range(10))
    np.testing.assert_allclose([f.timestamp_s for f in frames], np.arange(10) / 30.0)
    # mp4v is lossy; flat grey frames survive to within a few levels, in order
    means = np.array([f.image.mean() for f in frames])
    np.testing.assert_allclose(means, 20 * np.arange(10), atol=5)
    assert (np.diff(means) > 10).all()
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("missing.mp4", None, "not found"),
        ("empty.mp4", b"", "empty"),
        ("notes.mp4", b"this is a text file, not a video\n" * 20, "not a video"),
    ],
)
def test_bad_video_files_name_the_file(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=expected) as info:
        VideoFileSource(path).open()
    assert str(path) in str(info.value)


def test_truncated_video_file(tmp_path):
    path = _write_video(tmp_path / "take.avi", frames=30, fourcc="MJPG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    source = VideoFileSource(path)
    source.open()  # AVI: the header survives, the frames stop early
    frames = 0
    with pytest.raises(SourceError, match="truncated") as info:
        while source.read() is not None:
            frames += 1
    assert 0 < frames < 30 and str(path) in str(info.value)
    # an mp4 loses its index at the end: it does not open at all
    mp4 = _write_video(tmp_path / "take.mp4", frames=30)
    mp4.write_bytes(mp4.read_bytes()[:-400])
    with pytest.raises(SourceError, match="take.mp4"):
        VideoFileSource(mp4).open()


def test_open_source_and_cameras():
    assert isinstance(open_source("1"), CameraSource) and open_source(" 2 ").index == 2
    assert isinstance(open_source("walk.avi"), VideoFileSource)
    with pytest.raises(SourceError):
        CameraSource(-1)
    if not os.path.exists("/dev/video0"):
        assert list_cameras() == []
        with pytest.raises(SourceError, match="camera 0"):
            CameraSource(0).open()
