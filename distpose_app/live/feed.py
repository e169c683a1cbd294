"""A frame source read on its own capture thread and fed to a LivePipeline, surviving lost
cameras and source switches: what the GUI's live worker, soak tests and offline runs drive."""

from __future__ import annotations

import contextlib

from distpose_app.live.capture import CaptureThread, FrameSource
from distpose_app.live.demo import ErrorReadout
from distpose_app.live.pipeline import LivePipeline


class LiveFeed:
    """A source read on a CaptureThread, fed to a LivePipeline: what the app's live thread
    drives. step() -> FrameResult (one processed frame, its pose's seen flags in `pose_seen`),
    None (no new frame yet), or the StopIteration class (the source ended: the poses the
    lifter's lookahead still owed are recorded then, once); raises the SourceError when the
    source failed (camera lost), which is also kept in `error`. The pipeline, its recording and
    its weights survive that: `reconnect()` reopens the same source, `switch_source(other)`
    continues with another, both without losing the take; `restart()` reads a file again from
    its start in the same stream (a loop or a replay: the Adapt buffer and a running adaptation
    stay valid). The source is opened here (errors surface at once) and closed by close().
    realtime: pace files and the demo to their frame rate; lossless: never drop a frame
    (offline processing, "every frame" mode); both can change while running (`set_pacing`).
    `readout` averages the per-frame error of sources with ground truth (the demo) into each
    result's `error_readout` text."""

    def __init__(
        self,
        source: FrameSource,
        pipeline: LivePipeline,
        realtime: bool = True,
        lossless: bool = False,
    ):
        self.pipeline = pipeline
        self.realtime, self.lossless = realtime, lossless
        self.error: Exception | None = None
        self.ended = False  # the source reached its end (until restarted or switched)
        self.paused = False
        self._dropped_before = 0
        self.readout = ErrorReadout()
        self._stream_id = pipeline.stream_id
        self.source = source
        source.open()
        self.capture = self._start_capture(source)

    def _start_capture(self, source: FrameSource) -> CaptureThread:
        capture = CaptureThread(source, realtime=self.realtime, lossless=self.lossless)
        capture.set_paused(self.paused)
        capture.start()
        self.ended = False
        return capture

    def set_pacing(self, realtime: bool, lossless: bool) -> None:
        self.realtime, self.lossless = realtime, lossless
        self.capture.set_pacing(realtime, lossless)

    def set_paused(self, paused: bool) -> None:
        """Hold a file or the demo where it is (a camera keeps delivering; step() is simply
        not called while paused)."""
        self.paused = paused
        self.capture.set_paused(paused)

    @property
    def frames_dropped(self) -> int:
        """Frames the capture thread dropped (over every source of this session)."""
        return self._dropped_before + self.capture.frames_dropped

    def step(self, timeout: float = 0.02):
        frame = self.capture.get(timeout)
        if frame is None:
            self.pipeline.recorder.flush_if_due()  # a stalled source must not hold rows back
            if self.capture.exhausted:
                if self.capture.error is not None:
                    self.error = self.capture.error
                    self.pipeline.flush()  # the lookahead's poses go into the take
                    self.pipeline.recorder.flush()
                    raise self.capture.error
                if not self.ended:
                    self.ended = True
                    self.pipeline.flush()  # the lookahead's poses go into the take
                    self.pipeline.recorder.flush()
                return StopIteration
            return None
        result = self.pipeline.process_frame(frame)
        if self.pipeline.stream_id != self._stream_id:  # new source or lens: a new average
            self._stream_id = self.pipeline.stream_id
            self.readout.reset()
        self.readout.add(result.mpjpe_mm, result.unadapted_mpjpe_mm)
        if result.mpjpe_mm is not None:
            result.error_readout = self.readout.text()
        return result

    def switch_source(self, source: FrameSource) -> None:
        """Continue with `source` (opened here; SourceError if it cannot be): the pipeline
        starts a new stream (lifter history, Adapt buffer, image size and a running adaptation
        are for the old source), the recording goes on after a gap. On failure the session
        stays on no source and can be retried."""
        self.capture.stop()
        self._dropped_before += self.capture.frames_dropped
        self.pipeline.begin_stream()
        self.error = None
        if source is not self.source:
            with contextlib.suppress(Exception):
                self.source.close()
        self.source = source
        source.open()
        self.capture = self._start_capture(source)

    def restart(self) -> None:
        """Read the current (finite) source again from its start, in the same stream: the
        lifter starts afresh (no motion across the jump), the recording continues after a gap,
        the Adapt buffer and a running adaptation stay valid. SourceError if it cannot reopen."""
        self.capture.stop()
        self._dropped_before += self.capture.frames_dropped
        self.pipeline.flush()
        self.pipeline.recorder.new_segment()
        self.error = None
        with contextlib.suppress(Exception):
            self.source.close()
        seek = getattr(self.source, "seek", None)
        if seek is not None:  # a generated source (the demo) rewinds itself
            seek(0)
        self.source.open()
        self.capture = self._start_capture(self.source)

    def reconnect(self) -> None:
        """Reopen the current source (a camera plugged back in); SourceError if it cannot."""
        with contextlib.suppress(Exception):
            self.source.close()
        self.switch_source(self.source)

    def close(self) -> None:
        self.capture.stop()
        self.pipeline.recorder.flush()
