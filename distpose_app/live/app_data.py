"""Where the app keeps things (its data folder, the log file, per-camera saved adaptations) and
which lifter it loads: the window's non-Qt bookkeeping, shared by the controller and the tests."""

from __future__ import annotations

import re
import time
from pathlib import Path

from distpose_app.core import paths

ORGANISATION, APPLICATION = "distpose", "distpose-app"
LOG_NAME = "distpose-app.log"


def app_data_dir() -> Path:
    """The user's data folder, shared with the CLI (`core.paths.user_data_dir`: platformdirs;
    ~/.local/share/distpose on Linux, $XDG_DATA_HOME honoured); $DISTPOSE_APP_DATA when set
    (tests)."""
    return paths.user_data_dir()


def log_path() -> Path:
    """The window's rotating log file (core.logs.configure_logging), named in Help > About."""
    return app_data_dir() / "logs" / LOG_NAME


def camera_key(name: str, size: tuple[int, int]) -> str:
    """A file-name-safe key for a camera: its readable name and resolution (pixels)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "camera"
    return f"{slug}_{size[0]}x{size[1]}"


def saved_adaptation_path(key: str) -> Path:
    return paths.adaptations_dir() / f"{key}.pt"


def save_adaptation(key: str, result, path: Path | None = None) -> Path:
    """Save an accepted AdaptResult's weights for camera `key` (atomically) at `path` (default
    saved_adaptation_path(key)) and return where."""
    from distpose_app.core.fileio import torch_save_atomic

    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in result.state_dict.items()},
        "summary": {"before": result.before, "after": result.after, "saved": time.ctime()},
    }
    return Path(torch_save_atomic(payload, path or saved_adaptation_path(key)))


def load_adaptation(key: str, model) -> tuple[dict | None, str]:
    """(state_dict, one-line description) saved for camera `key` and fitting `model`, or (None,
    warning) when there is none or it no longer loads (unreadable, made for another model,
    non-finite weights): a stale adaptation is ignored, never fatal."""
    import torch

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


def describe_spec(spec: str) -> str:
    """A source spec ("demo", a camera index, a video path) for messages."""
    if spec == "demo":
        return "the demo"
    if spec.lstrip("-").isdigit():
        return f"camera {spec}"
    return Path(spec).name


def spec_kind(spec: str) -> str:
    """ "demo", "camera" or "file"."""
    if spec == "demo":
        return "demo"
    return "camera" if spec.lstrip("-").isdigit() else "file"


# Source kinds whose 2D is a camera's whole picture, centred on its lens: Adapt then tries no
# shifts of the centre (`adapt_model(whole_picture=)`); a video file may be cropped.
WHOLE_PICTURE_SOURCES = ("camera", "demo")


def default_model_name() -> str:
    """The shipped model the window uses (lifter.model.DEFAULT_LIVE_MODEL)."""
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
