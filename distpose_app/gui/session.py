"""The live session behind the window: one frame source, the pipeline, the recorder, and where
per-camera adaptations and settings are kept. It wires the non-Qt stages together
(capture.py, demo.py, pipeline.py, model.py); it is driven by `workers.LiveWorker` on its own
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

from distpose_app.errors import WeightsError

DEFAULT_MODEL = "distpose"  # pretrained/<name>.pt tried first; else any shipped model
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
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in result.state_dict.items()},
        "summary": {"before": result.before, "after": result.after, "saved": time.ctime()},
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_adaptation(key: str) -> tuple[dict, str]:
    """(state_dict, one-line description) saved for camera `key`; WeightsError when it is
    missing or unreadable (the caller ignores it with a warning)."""
    path = saved_adaptation_path(key)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        state = payload["state_dict"]
    except Exception as exc:
        raise WeightsError(f"{path}: cannot be read ({type(exc).__name__})") from None
    return state, f"{key} ({payload.get('summary', {}).get('saved', 'unknown date')})"


def describe_camera(cam) -> str:
    return getattr(cam, "label", None) or f"{cam.index}: {cam.name}"


def describe_spec(spec: str) -> str:
    if spec == "demo":
        return "the demo"
    if spec.lstrip("-").isdigit():
        return f"camera {spec}"
    return Path(spec).name


def list_cameras() -> list:
    from distpose_app.capture import list_cameras as probe

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


@dataclass
class SessionInfo:
    spec: str
    demo_lens: str = "moderate"
    title: str = ""
    camera_key: str = ""
    model_name: str = ""
    device: str = ""
    warning: str = ""


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
def load_model(weights: str | None):
    """(model, name, warning): --weights, else the shipped model (DEFAULT_MODEL first), else an
    untrained lifter with a warning so that the window still runs (a fresh clone without
    pretrained/ weights)."""
    from distpose_app import model as lifter

    if weights:
        model, _ = lifter.load_checkpoint(weights)
        return model, Path(weights).name, ""
    names = lifter.available_pretrained()
    if names:
        name = DEFAULT_MODEL if DEFAULT_MODEL in names else names[0]
        model, _ = lifter.load_pretrained(name)
        return model, name, ""
    model = lifter.TemporalModel(channels=256, causal=True).eval()
    return model, "untrained", "no trained weights in pretrained/: the 3D pose is meaningless"


class LiveSession:
    """Source + pipeline for the window (built on the live thread by `open`)."""

    def __init__(self, config: SessionConfig, inner, pipeline, info: SessionInfo):
        self.config, self.inner, self.pipeline, self.info = config, inner, pipeline, info
        self.source = inner.source

    @classmethod
    def open(cls, config: SessionConfig) -> LiveSession:
        from distpose_app import pipeline as live_pipeline

        model, model_name, warning = load_model(config.weights)
        if config.spec == "demo":
            from distpose_app.demo import DemoSource

            source = DemoSource(lens=config.demo_lens, size=config.demo_size)
        else:
            from distpose_app.capture import open_source

            source = open_source(config.spec)
        pipeline = live_pipeline.LivePipeline(model, config.device)
        try:
            inner = live_pipeline.LiveSession(source, pipeline, realtime=config.pace)
        except BaseException:
            pipeline.close()
            raise
        width, height = source.size
        info = SessionInfo(
            spec=config.spec,
            demo_lens=config.demo_lens,
            title=f"{source.name} — {width}×{height} @ {source.fps:g} fps",
            camera_key=camera_key(source.name, (width, height)),
            model_name=model_name,
            device=str(pipeline.device),
            warning=warning,
        )
        session = cls(config, inner, pipeline, info)
        if config.known_lens is not None:
            session.set_known_lens(config.known_lens)
        return session

    def step(self):
        result = self.inner.step()
        if result is None or result is StopIteration:
            return result
        return LiveUpdate(
            image=result.image,
            image_size=tuple(self.source.size),
            keypoints_px=result.keypoints_2d,
            confidence=result.confidence,
            pose_3d=result.pose_3d,
            mpjpe_mm=result.mpjpe_mm,
            buffer_frames=len(self.pipeline.adapt_buffer()),
            recorded_frames=self.pipeline.recorder.num_frames,
            frame_index=result.index,
            extra={"stats": self.pipeline.stats, "pose_confidence": result.pose_confidence},
        )

    # -- commands queued by the window (run on the live thread) ---------------------------
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

    def snapshot_for_adapt(self):
        """(a private copy of the live model, (T, 17, 2) recent normalised 2D)."""
        return self.pipeline.model_copy(), self.pipeline.adapt_buffer()

    def set_model_state(self, state_dict: dict) -> None:
        self.pipeline.set_model_state(state_dict)

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

    def stop_recording(self):
        return self.pipeline.recorder.stop()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.pipeline.close()
