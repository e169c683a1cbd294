"""Recording and exporting as a part of the app's state machine (controller.py): the take being
recorded, the stopped take waiting to be exported (its crash-recovery file kept until then), a
take recovered from a crash, and the background export."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from distpose_app.core.errors import DistposeError
from distpose_app.live.app_state import Reply, accepted, refused, source_refusal

log = logging.getLogger(__name__)


class Takes:
    """The recording part of the controller (`host`: an AppController). take: the stopped
    Recording ready to export (None: none); take_recovery: (Recorder | None, recovery file) of
    it; last_export: export_recording's result dict of the last export (None after a failure);
    exports_done: finished exports, successful or not."""

    def __init__(self, host):
        self.host = host
        self.take = None
        self.take_recovery = None
        self.last_export: dict | None = None
        self.exports_done = 0
        self.export_thread: threading.Thread | None = None

    def start(self) -> Reply:
        state = self.host.state
        if state.closed:
            return refused("the app is closing")
        if state.recording:
            return refused("already recording")
        if state.source != "running":
            return refused(source_refusal(state, "record"))

        def done(result):
            if isinstance(result, Exception):
                self.host.post(f"recording failed: {result}", "error", key="recording",
                               recording=False)  # fmt: skip

        self.host.publish(recording=True)
        self.host.clear("recording")
        self.host.call_live(lambda e: e.start_recording(self.host.model_name), done)
        return accepted("recording")

    def stop(self) -> Reply:
        """End the take; it is kept (its recovery file too) until exported or discarded."""
        state = self.host.state
        if state.closed:
            return refused("the app is closing")
        if not state.recording:
            return refused("not recording")
        self.host.publish(recording=False)
        self.host.call_live(lambda e: e.stop_recording(), self.stopped)
        return accepted("stopping the recording")

    def stopped(self, stopped, why: str = "recording stopped") -> None:
        """stopped: (Recording, recovery file or None, Recorder) from engine.stop_recording."""
        if isinstance(stopped, Exception):
            self.host.post(f"recording failed: {stopped}", "error", key="recording")
            return
        recording, path, recorder = stopped
        self.take = recording
        self.take_recovery = (recorder, path) if path is not None else None
        n = recording.num_frames
        self.host.board.clear("recovery")
        if recorder.recovery_error:
            error = f"crash recovery was off for this take: {recorder.recovery_error}"
            self.host.board.post(error, "warning", key="recovery")
        self.host.post(f"{why}: {n} frames; Export with Ctrl+E", key="recording", seconds=10.0,
                       recording=False, take_frames=n)  # fmt: skip
        self.host.emit("take", recording)

    def inputs(self) -> list:
        """The files the take came from, which an export must never write: the lifter's
        weights, the take's recovery file, the video file being played."""
        state = self.host.state
        metadata = (self.take.metadata or {}) if self.take is not None else {}
        files = [self.host.options.weights, metadata.get("recovered_from")]
        if self.take_recovery is not None:
            files.append(self.take_recovery[1])
        if state.source_kind == "file":
            files.append(state.spec)
        return [f for f in files if f]

    def export(self, bvh_path=None, csv_path=None, confirmed=(), overwrite=False) -> Reply:
        """Write the stopped take as BVH and/or CSV in the background; its recovery file is
        deleted once it is saved. A target that is one of the take's inputs, a folder or in a
        missing folder fails like an export (an "export_failed" event). Existing files other
        than `confirmed` (which a save dialog already asked about) are refused with
        ask=("replace", "cancel") and data=[their paths], unless `overwrite`."""
        from distpose_app.export import ExportOptions, export_recording
        from distpose_app.export.targets import existing_targets

        state = self.host.state
        if state.closed:
            return refused("the app is closing")
        if state.exporting:
            return refused("an export is already running")
        if self.take is None or self.take.num_frames == 0:
            return refused("nothing to export: record a take first (Ctrl+R)")
        recording, take, inputs = self.take, self.take_recovery, self.inputs()
        options = ExportOptions(root_lock=state.root_lock)
        try:
            existing = existing_targets(bvh_path, csv_path, inputs, confirmed)
        except DistposeError as exc:  # onto an input, a folder, a missing folder
            self._failed(exc)
            return refused(f"export failed: {exc}")
        if existing and not overwrite:
            names = ", ".join(str(p) for p in existing)
            return Reply(False, f"{names} exist already", ("replace", "cancel"), existing)

        def job():
            def progress(fraction, message):
                self.host.publish(export_progress=float(fraction))

            try:
                result = export_recording(recording, bvh_path=bvh_path, csv_path=csv_path,
                                          options=options, progress=progress, inputs=inputs,
                                          overwrite=True)  # asked above  # fmt: skip
            except Exception as exc:
                if not isinstance(exc, DistposeError):
                    log.exception("the export failed")
                self._failed(exc)
                return
            self.discard_recovery(take)
            self.last_export = result
            self.exports_done += 1
            files = ", ".join(str(result[k]) for k in ("bvh", "csv") if result.get(k))
            self.host.post(f"exported {result['frames']} frames to {files}", key="export",
                           exporting=False)  # fmt: skip
            self.host.emit("exported", result)

        self.host.publish(exporting=True, export_progress=0.0)
        thread = threading.Thread(target=job, name="distpose-export", daemon=True)
        self.export_thread = thread
        thread.start()
        return accepted("exporting")

    def _failed(self, exc: Exception) -> None:
        self.last_export = None
        self.exports_done += 1
        self.host.post(f"export failed: {exc}", "error", key="export", exporting=False)
        self.host.emit("export_failed", f"export failed: {exc}")

    def discard_recovery(self, take) -> None:
        """The take is saved or dropped: delete its recovery file. take: (Recorder | None,
        path) or None."""
        from distpose_app.live import recovery

        if take is None:
            return
        recorder, path = take
        if recorder is not None and recorder.recovery_path == path:
            recorder.discard_recovery()
        else:  # a recovered take, or the recorder has moved on to a new take
            recovery.discard(path)
        if self.take_recovery == take:
            self.take_recovery = None

    def discard(self) -> Reply:
        """Drop the stopped take and its recovery file."""
        state = self.host.state
        if state.closed:
            return refused("the app is closing")
        if state.exporting:
            return refused("the take is being exported")
        if self.take is None:
            return refused("there is no stopped take")
        self.discard_recovery(self.take_recovery)
        self.take = None
        self.host.publish(take_frames=0)
        return accepted("take discarded")

    def recover(self, path) -> Reply:
        """Load a take a crash (or an unsaved stop) left behind as the take to export; its
        recovery file is deleted once exported."""
        from distpose_app.live import recovery

        if self.host.state.closed:
            return refused("the app is closing")
        if self.host.state.exporting:
            return refused("an export is running")
        try:
            recording = recovery.load(path)
        except DistposeError as exc:
            return refused(f"cannot recover {path}: {exc}")
        self.take, self.take_recovery = recording, (None, Path(path))
        self.host.post(f"recovered {recording.num_frames} frames; export to keep them",
                       key="recording", take_frames=recording.num_frames)  # fmt: skip
        return accepted(f"recovered {recording.num_frames} frames", data=recording)
