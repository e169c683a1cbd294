"""The live session behind the window: one frame source, the pipeline, the recorder, and where
per-camera adaptations and settings are kept. It wires the non-Qt stages together (live/:
capture, demo, pipeline, feed; lifter/model); it is driven by `workers.LiveWorker` on its own
thread, so every method here runs off the GUI thread unless said otherwise.
"""

from __future__ import annotations

import copy
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PyQt5 import QtCore

from distpose_app.core.errors import DistposeError, WeightsError
from distpose_app.core.fileio import torch_save_atomic

ORGANISATION, APPLICATION = "distpose", "distpose-app"


# ---------------------------------------------------------------------------------------------
# Where things are kept
# ---------------------------------------------------------------------------------------------
def app_data_dir() -> Path:
    """The user's application-data folder (QStandardPaths.AppDataLocation, e.g.
    ~/.local/share/distpose/distpose-app on Linux); DISTPOSE_APP_DATA overrides it."""
    override = os.environ.get("DISTPOSE_APP_DATA")
    if override:
        return Path(override)
    from PyQt5.QtCore import QStandardPaths

    return Path(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation))


def make_settings() -> QtCore.QSettings:
    """QSettings for the window (~/.config/distpose/distpose-app.conf on Linux); with
    DISTPOSE_APP_DATA set, an ini file in that folder (tests never touch the user's)."""
    override = os.environ.get("DISTPOSE_APP_DATA")
    if override:
        return QtCore.QSettings(str(Path(override) / "settings.ini"), QtCore.QSettings.IniFormat)
    return QtCore.QSettings(ORGANISATION, APPLICATION)


def camera_key(name: str, size: tuple[int, int]) -> str:
    """A file-name-safe key for a camera: its readable name and resolution."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "camera"
    return f"{slug}_{size[0]}x{size[1]}"


def saved_adaptation_path(key: str) -> Path:
    return app_data_dir() / "adaptations" / f"{key}.pt"


def save_adaptation(key: str, result) -> Path:
    """Save an accepted AdaptResult's weights for camera `key` (atomically)."""
    path = saved_adaptation_path(key)
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in result.state_dict.items()},
        "summary": {"before": result.before, "after": result.after, "saved": time.ctime()},
    }
    return torch_save_atomic(payload, path)


def load_adaptation(key: str, model) -> tuple[dict | None, str]:
    """(state_dict, one-line description) saved for camera `key` and fitting `model`, or (None,
    warning) when there is none or it no longer loads (unreadable, made for another model,
    non-finite weights): a stale adaptation is ignored, never fatal."""
    from distpose_app.adapt.iso import load_saved_adaptation

    path = saved_adaptation_path(key)
    state, warning = load_saved_adaptation(path, model)
    if state is None:
        return None, warning or f"no adaptation saved for {key}"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        saved = payload.get("summary", {}).get("saved", "unknown date")
    except Exception:  # the weights loaded a moment ago; only the date is missing
        saved = "unknown date"
    return state, f"{key} ({saved})"


def describe_camera(cam) -> str:
    return getattr(cam, "label", None) or f"{cam.index}: {cam.name}"


def describe_spec(spec: str) -> str:
    if spec == "demo":
        return "the demo"
    if spec.lstrip("-").isdigit():
        return f"camera {spec}"
    return Path(spec).name


def list_cameras() -> list:
    from distpose_app.live.capture import list_cameras as probe

    return probe()


# ---------------------------------------------------------------------------------------------
# What crosses from the live thread to the window
# ---------------------------------------------------------------------------------------------
@dataclass
class SessionConfig:
    spec: str  # "demo", a camera index, or a video path
    demo_lens: str = "moderate"
    device: str = "auto"
    weights: str | None = None
    known_lens: tuple | None = None  # None, (hfov_deg, Lens, text) or (Intrinsics, Lens, text)
    pace: bool = True  # play files and the demo at their frame rate
    demo_size: tuple[int, int] = (1280, 720)  # the demo camera's image, pixels
    source: object | None = None  # a FrameSource to use instead of opening `spec` (tests)


@dataclass
class SessionInfo:
    spec: str
    demo_lens: str = "moderate"
    title: str = ""
    camera_key: str = ""
    model_name: str = ""
    device: str = ""
    warning: str = ""  # weights fallen back to, a saved adaptation ignored... ("" when none)
    saved_adaptation: bool = False  # an adaptation saved for this camera loads


@dataclass
class LiveUpdate:
    """One processed frame for the window. image: BGR (H, W, 3) uint8; keypoints_px: (17, 2)
    pixels or None (no person); confidence (17,); pose_3d (17, 3) metres camera frame,
    root-relative, or None; mpjpe_mm: against the demo's ground truth, else None."""

    image: np.ndarray | None
    image_size: tuple[int, int]
    keypoints_px: np.ndarray | None
    confidence: np.ndarray | None
    pose_3d: np.ndarray | None
    mpjpe_mm: float | None = None
    stage_text: str = ""
    buffer_frames: int = 0
    recorded_frames: int = 0
    frame_index: int = 0
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The session
# ---------------------------------------------------------------------------------------------
def default_model_name() -> str:
    """The shipped model the window uses (model.DEFAULT_LIVE_MODEL)."""
    from distpose_app.lifter import model as lifter

    return getattr(lifter, "DEFAULT_LIVE_MODEL", "augmented")


def load_model(weights: str | None):
    """(model, name, warning): --weights, else the shipped default (default_model_name(), or any
    shipped model). Weights that do not load (missing, truncated, another architecture) fall
    back to the shipped model with a warning naming the file and the problem; with nothing
    shipped (a fresh clone without pretrained/) an untrained lifter runs, with a warning, so the
    window still opens. Raises WeightsError only when --weights fails and nothing is shipped."""
    from distpose_app.lifter import model as lifter

    names = lifter.available_pretrained()
    default = default_model_name()
    if not names:
        if weights:
            model, _ = lifter.load_checkpoint(weights)  # WeightsError names the file
            return model, Path(weights).name, ""
        model = lifter.TemporalModel(channels=256, causal=True).eval()
        return model, "untrained", "no trained weights in pretrained/: the 3D pose is meaningless"
    name = default if default in names else names[0]
    model, meta, warning = lifter.load_model_or_fallback(weights, name)
    used = Path(meta.get("source") or f"{name}.pt")
    model_name = used.name if weights and not warning else used.stem
    return model, model_name, warning or ""


@dataclass
class Notice:
    """Something the window must hear about that is not a frame: kind "source_lost" (the camera
    failed; message says how), "warning" (the pipeline reverted diverged adapted weights...) or
    "recovery" (the crash-recovery file could not be written)."""

    kind: str
    message: str


class LiveSession:
    """Source + pipeline for the window (built on the live thread by `open`).

    A failing source (camera unplugged, a file that breaks off) does not end the session: step()
    reports it once as a Notice("source_lost") and then idles (the take stays recording, its
    recovery file flushed) until `reconnect()` or `switch_source()` succeeds. Other notices (the
    pipeline's warnings, a recovery file that cannot be written) are collected for
    `take_notices()`, which the worker polls after every step."""

    def __init__(self, config: SessionConfig, inner, pipeline, info: SessionInfo):
        self.config, self.inner, self.pipeline, self.info = config, inner, pipeline, info
        self.source = inner.source
        self.lost: str | None = None  # why the source failed, until it is reconnected/switched
        self._notices: list[Notice] = []
        self._recovery_error: str | None = None

    @staticmethod
    def make_source(config: SessionConfig, spec: str):
        """An unopened FrameSource for `spec` ("demo", a camera index, a video path)."""
        if spec == "demo":
            from distpose_app.live.demo import DemoSource

            return DemoSource(lens=config.demo_lens, size=config.demo_size)
        from distpose_app.live.capture import open_source

        return open_source(spec)

    @classmethod
    def open(cls, config: SessionConfig) -> LiveSession:
        from distpose_app.live.feed import LiveFeed
        from distpose_app.live.pipeline import LivePipeline

        model, model_name, warning = load_model(config.weights)
        source = config.source
        if source is None:
            source = cls.make_source(config, config.spec)
        pipeline = LivePipeline(model, config.device)
        try:
            inner = LiveFeed(source, pipeline, realtime=config.pace)
        except BaseException:
            pipeline.close()
            raise
        info = SessionInfo(
            spec=config.spec,
            demo_lens=config.demo_lens,
            model_name=model_name,
            device=str(pipeline.device),
            warning=warning,
        )
        session = cls(config, inner, pipeline, info)
        session._describe_source()
        if config.known_lens is not None:
            session.set_known_lens(config.known_lens)
        return session

    def _describe_source(self) -> None:
        """Title and camera key of the current source; checks its saved adaptation (one that no
        longer loads is reported in info.warning and ignored)."""
        width, height = self.source.size
        self.info.title = f"{self.source.name} — {width}×{height} @ {self.source.fps:g} fps"
        self.info.camera_key = camera_key(self.source.name, (width, height))
        state, message = load_adaptation(self.info.camera_key, self.pipeline.model)
        self.info.saved_adaptation = state is not None
        if state is None and saved_adaptation_path(self.info.camera_key).exists():
            self.info.warning = "; ".join(w for w in (self.info.warning, message) if w)

    def step(self):
        """LiveUpdate, None (no new frame, or the source is lost), or StopIteration (a file
        or finite source ended)."""
        if self.lost is not None:
            self.pipeline.recorder.flush_if_due()
            time.sleep(0.02)
            return None
        try:
            result = self.inner.step()
        except DistposeError as exc:  # SourceError: camera lost, file broken off
            self.lost = str(exc)
            self._notices.append(Notice("source_lost", self.lost))
            return None
        finally:
            self._collect_notices()
        if result is None or result is StopIteration:
            return result
        return LiveUpdate(
            image=result.image,
            image_size=tuple(self.source.size),
            keypoints_px=result.keypoints_2d,
            confidence=result.confidence,
            pose_3d=result.pose_3d,
            mpjpe_mm=result.mpjpe_mm,
            buffer_frames=self.pipeline.buffer_frames,
            recorded_frames=self.pipeline.recorder.num_frames,
            frame_index=result.index,
            extra={
                "stats": self.pipeline.stats,
                "pose_confidence": result.pose_confidence,
                "pose_seen": result.pose_seen,
                "adapted": self.pipeline.is_adapted,
            },
        )

    def _collect_notices(self) -> None:
        for message in self.pipeline.take_warnings():
            self._notices.append(Notice("warning", message))
        error = self.pipeline.recorder.recovery_error
        if error and error != self._recovery_error:
            self._notices.append(Notice("recovery", error))
        self._recovery_error = error

    def take_notices(self) -> list[Notice]:
        """The notices since the last call, oldest first."""
        out, self._notices = self._notices, []
        return out

    # -- commands queued by the window (run on the live thread) ---------------------------
    def switch_source(self, spec: str, source=None) -> SessionInfo:
        """Continue with another source ("demo", a camera index, a video path; or the FrameSource
        `source`) in this session: weights and the take are kept, the recording goes on after a
        gap, a running adaptation is cancelled (its buffer was the old source's). Raises
        SourceError when it cannot be opened; the session then stays lost and can be retried."""
        source = source if source is not None else self.make_source(self.config, spec)
        try:
            self.inner.switch_source(source)
        except DistposeError as exc:
            self.lost = str(exc)
            raise
        self.source = source
        self.lost = None
        self.info.spec = spec
        self.info.warning = ""  # the weights' warning was shown when the session opened
        self._describe_source()
        return self.info

    def reconnect(self) -> SessionInfo:
        """Reopen the current source (a camera plugged back in); SourceError if it cannot."""
        try:
            self.inner.reconnect()
        except DistposeError as exc:
            self.lost = str(exc)
            raise
        self.lost = None
        return self.info

    def set_known_lens(self, known: tuple | None) -> None:
        """known: None (unknown lens), (hfov_deg, Lens, text) or (Intrinsics, Lens, text)."""
        if known is None:
            self.pipeline.set_known_lens(None)
            return
        first, lens, _ = known
        if isinstance(first, float):
            self.pipeline.hfov_deg = first
            self.pipeline.set_known_lens(lens, None)
        else:
            self.pipeline.set_known_lens(lens, first)

    def begin_adaptation(self):
        """A pipeline.AdaptTicket (private model copy, Adapt buffer, stream id); DistposeError
        while one is running."""
        return self.pipeline.begin_adaptation()

    def finish_adaptation(self, ticket, result) -> tuple[bool, str]:
        """Apply `result` (an AdaptResult or None) if `ticket` is still current and its stream
        unchanged -> (applied, message)."""
        return self.pipeline.finish_adaptation(ticket, result)

    def cancel_adaptation(self) -> None:
        self.pipeline.cancel_adaptation()

    def set_model_state(self, state_dict: dict) -> None:
        self.pipeline.set_model_state(state_dict)

    def use_saved_adaptation(self) -> str:
        """Apply the adaptation saved for this camera -> its description; WeightsError with the
        reason when it no longer loads (the current weights stay)."""
        state, message = load_adaptation(self.info.camera_key, self.pipeline.model)
        if state is None:
            raise WeightsError(message)
        self.pipeline.set_model_state(state)
        return message

    def revert(self) -> None:
        self.pipeline.revert()

    def model_state(self) -> dict:
        """A copy of the live weights (tests compare them)."""
        return copy.deepcopy(self.pipeline.model.state_dict())

    def start_recording(self) -> None:
        lens = "known" if self.pipeline.known_lens is not None else "unknown"
        state = "adapted" if self.pipeline.is_adapted else "unadapted"
        self.pipeline.recorder.start(
            {
                "source": self.info.title,
                "lens": {"state": f"{lens}, {state}"},
                "model": {"name": self.info.model_name},
            }
        )
        self._collect_notices()  # a recovery file that could not be created: say so at once

    def stop_recording(self):
        """(Recording, its recovery file or None, the recorder): the file is kept until the take
        is exported (`Recorder.discard_recovery`), so an unsaved take survives a crash."""
        recorder = self.pipeline.recorder
        recording = recorder.stop(keep_recovery=True)
        return recording, recorder.recovery_path, recorder

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.pipeline.close()
