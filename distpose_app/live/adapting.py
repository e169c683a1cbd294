"""Adapt as a part of the app's state machine (controller.py): one adaptation at a time, run in
the background on a snapshot of the Adapt buffer, applied on the live thread only if nothing
superseded it. Revert, a saved adaptation, a lens change, a source switch and closing all go
through `supersede(reason)`, which cancels the running one through its ticket: its result is
then refused (never applied, never saved) whenever it finishes."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from distpose_app.core.errors import DistposeError
from distpose_app.live import app_data
from distpose_app.live.app_state import AppState, Reply, accepted, refused, source_refusal

log = logging.getLogger(__name__)


class _AdaptRun:
    """One press of Adapt: its ticket (once the live thread has snapshot the buffer) and why
    it was cancelled. cancel() is thread-safe and reaches the ticket whenever it exists."""

    def __init__(self, number: int):
        self.number = number
        self.ticket = None
        self.reason = ""
        self._lock = threading.Lock()

    def cancel(self, reason: str) -> None:
        with self._lock:
            if not self.reason:
                self.reason = reason
            if self.ticket is not None:
                self.ticket.cancel(self.reason)

    def attach(self, ticket) -> None:
        with self._lock:
            self.ticket = ticket
            if self.reason:
                ticket.cancel(self.reason)

    @property
    def cancelled(self) -> bool:
        return bool(self.reason)


def describe_adapt_result(result) -> str:
    """One line for an applied AdaptResult: time, steps, and the pose statistics it moved."""
    b, a = result.before, result.after
    nan = float("nan")
    return (
        f"Adapted in {result.seconds:.1f} s ({result.steps} steps): bone symmetry "
        f"{b.get('symmetry_mm', nan):.1f} → {a.get('symmetry_mm', nan):.1f} mm, consistency "
        f"{b.get('consistency_pct', nan):.1f} → {a.get('consistency_pct', nan):.1f} %."
    )


class Adaptation:
    """The adaptation part of the controller (`host`: an AppController). adapt_fn(model,
    keypoints, config, progress, should_cancel, pictures, whole_picture) -> AdaptResult
    (default adapt.adapt_model) and adapt_config (its method) may be replaced (tests,
    settings). live_path: the saved file of the adapted weights now live (deleted if they
    diverge)."""

    def __init__(self, host):
        self.host = host
        self.adapt_fn = None
        self.adapt_config = None
        self.last_result = None
        self.started = 0  # adaptations that reached the background job
        self.live_path: Path | None = None
        self._lock = threading.Lock()
        self._run: _AdaptRun | None = None
        self._thread: threading.Thread | None = None
        self._count = 0

    def join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def start(self) -> Reply:
        """Adapt the lifter to the source's lens from the Adapt buffer, in the background."""
        from distpose_app.adapt.iso import MIN_ADAPT_FRAMES

        state = self.host.state
        if state.closed:
            return refused("the app is closing")
        if state.source not in ("running", "ended"):
            return refused(source_refusal(state, "adapt"))
        if self.host.buffer_frames < MIN_ADAPT_FRAMES:
            return refused(too_few_frames(state, MIN_ADAPT_FRAMES, self.host.buffer_frames))
        with self._lock:  # checked and claimed at once: two presses never start two
            if self._run is not None and self._run.cancelled:
                return refused("the cancelled adaptation is still stopping: try again in a moment")
            if self._run is not None:
                return refused("an adaptation is already running: wait for it or cancel it (Esc)")
            self._count += 1
            run = self._run = _AdaptRun(self._count)
        self.host.publish(adapt="starting", adapt_progress=(0, 0))
        self.host.clear("adapt")

        def begin(engine):
            return None if run.cancelled else engine.require_pipeline().begin_adaptation()

        if not self.host.call_live(begin, lambda ticket: self._snapshot(run, ticket)):
            self._closed(run, "the live thread has stopped")
        return accepted("adapting")

    def _snapshot(self, run: _AdaptRun, ticket) -> None:
        """On the live thread: the buffer's snapshot (an AdaptTicket) or why there is none."""
        from distpose_app.adapt.iso import MIN_ADAPT_FRAMES

        if isinstance(ticket, Exception):
            self._closed(run, str(ticket))
            return
        if ticket is None or run.cancelled:
            if ticket is not None:
                ticket.cancel(run.reason)
            self._closed(
                run, f"Adaptation cancelled ({run.reason}): previous weights kept.", "info"
            )
            return
        run.attach(ticket)
        ticket.whole_picture = self.host.state.source_kind in app_data.WHOLE_PICTURE_SOURCES
        needed = max(MIN_ADAPT_FRAMES, getattr(ticket.model, "receptive_field", 0))
        if len(ticket.keypoints_2d) < needed:
            ticket.cancel("too few frames")  # frees the pipeline for the next press
            self._closed(run, too_few_frames(self.host.state, needed, len(ticket.keypoints_2d)))
            return
        self.started += 1
        self.host.publish(adapt="adapting", adapt_frames=len(ticket.keypoints_2d))
        thread = threading.Thread(target=self._job, args=(run, ticket), daemon=True,
                                  name=f"distpose-adapt-{run.number}")  # fmt: skip
        self._thread = thread
        thread.start()

    def _job(self, run: _AdaptRun, ticket) -> None:
        """On the adapt thread: adapt, write the result beside the camera's saved adaptation
        (pending), then let the live thread decide in one step whether it still applies: if so
        it goes live, the pending file replaces the saved one and the state says so, before
        the next frame (so a divergence seen in that frame is reported after, and deletes it);
        if not, the pending file is deleted: a refused result is never saved."""
        from distpose_app.adapt.iso import (
            adapt_model,
            lower_background_priority,
            release_freed_memory,
        )

        def progress(step, total):
            if not run.cancelled:
                self.host.publish(adapt_progress=(int(step), int(total)))

        result, failure = None, None
        lower_background_priority()  # keep the live view's frame rate (docs/bench.md)
        try:
            adapt = self.adapt_fn or adapt_model
            result = adapt(ticket.model, ticket.keypoints_2d, self.adapt_config,
                           progress=progress, should_cancel=ticket.should_cancel,
                           pictures=ticket.pictures,
                           whole_picture=ticket.whole_picture)  # fmt: skip
        except Exception as exc:
            log.exception("the adaptation failed")
            failure = str(exc) if isinstance(exc, DistposeError) else f"{type(exc).__name__}: {exc}"
        finally:
            release_freed_memory()  # its heap arena would keep it (docs/reliability.md)
        self.last_result = result
        key = self.host.state.camera_key
        final = app_data.saved_adaptation_path(key)
        pending, save_error = None, ""
        if result is not None and result.accepted and not ticket.cancelled:
            try:
                pending = app_data.save_adaptation(key, result, final.with_suffix(".pending"))
            except OSError as exc:
                save_error = exc.strerror or str(exc)

        def finish(engine):
            applied, message = engine.require_pipeline().finish_adaptation(ticket, result)
            if failure is not None:
                message = f"the adaptation failed: {failure}; previous weights kept"
            if not applied:
                _discard(pending)
                level = "info" if ticket.cancelled else "warning"
                self._closed(run, message[:1].upper() + message[1:] + ".", level)
                return
            saved = f" Not saved: {save_error}." if save_error else ""
            if pending is not None:
                try:
                    self.live_path = pending.replace(final)
                    saved = f" Saved to {final}."
                except OSError as exc:
                    _discard(pending)
                    saved = f" Not saved: {exc.strerror or exc}."
            text = describe_adapt_result(result) + saved + " Revert: Ctrl+Z."
            self._closed(run, text, "info", applied=True,
                         saved=pending is not None and self.live_path == final)  # fmt: skip

        def failed(answer):
            if isinstance(answer, Exception):
                _discard(pending)
                self._closed(run, f"could not apply the adapted weights: {answer}")

        if not self.host.call_live(finish, failed):
            _discard(pending)
            self._closed(run, "the live thread has stopped: the adaptation was not applied")

    def _closed(self, run: _AdaptRun, message: str, level="warning", applied=False, saved=False):
        with self._lock:
            if self._run is run:
                self._run = None
        changes = {"adapt": "idle", "adapt_progress": (0, 0)}
        if applied:
            changes.update(adapted=True)
        if saved:
            changes.update(saved_adaptation=True)
        self.host.post(message, level, key="adapt", seconds=20.0, **changes)

    def supersede(self, reason: str) -> bool:
        """Cancel the running adaptation, if any (its result will be refused). True if one
        was running."""
        with self._lock:
            run = self._run
        if run is None:
            return False
        run.cancel(reason)
        if self.host.state.adapt != "idle":
            self.host.publish(adapt="cancelling")
        return True

    def cancel(self) -> Reply:
        state = self.host.state
        if state.closed:
            return refused("the app is closing")
        if state.adapt == "idle":
            return refused("no adaptation is running")
        if state.adapt == "cancelling":
            return refused("the adaptation is already being cancelled")
        self.supersede("cancelled")
        return accepted("cancelling")

    def revert(self) -> Reply:
        """Back to the unadapted weights; a running adaptation is cancelled."""
        state = self.host.state
        if state.closed:
            return refused("the app is closing")
        running = self.supersede("reverted")
        if not state.adapted:
            return accepted("adaptation cancelled") if running else refused(
                "the model is not adapted")  # fmt: skip

        def done(result):
            if isinstance(result, Exception):
                self.host.post(f"revert failed: {result}", "error", key="adapt")
                return
            self.live_path = None
            self.host.publish(adapted=False)
            self.host.post("Reverted to the unadapted model.", key="adapt")

        self.host.call_live(lambda e: e.require_pipeline().revert(), done)
        return accepted("reverting")

    def use_saved(self) -> Reply:
        """Apply the adaptation saved for this camera; a running adaptation is cancelled."""
        state = self.host.state
        if state.closed:
            return refused("the app is closing")
        if not state.saved_adaptation:
            return refused("no adaptation is saved for this camera")
        self.supersede("a saved adaptation was loaded")
        key = state.camera_key

        def done(result):
            if isinstance(result, Exception):  # "saved adaptation <file> ignored: <why>"
                self.host.publish(saved_adaptation=False)
                self.host.post(str(result), "warning", key="adapt")
                return
            self.live_path = app_data.saved_adaptation_path(key)
            self.host.publish(adapted=True)
            self.host.post(f"Using the adaptation saved for {result}.", key="adapt")

        self.host.call_live(lambda e: e.use_saved_adaptation(), done)
        return accepted("loading the saved adaptation")


def _discard(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def too_few_frames(state: AppState, needed: int, have: int) -> str:
    """The refusal for a short Adapt buffer, in the source's own words."""
    if state.source_kind == "file":
        return (
            f"Adapt needs at least {needed} frames with a person in view; this clip gave "
            f"{have} so far. Turn on Every frame (the clip is then read without dropping "
            "frames) and Loop, or Replay it, then press Adapt again."
        )
    return (
        f"Adapt needs at least {needed} recent frames with a person in view; the buffer holds "
        f"{have}. Keep at least your head and shoulders in view for a few seconds and press "
        "Adapt again."
    )
