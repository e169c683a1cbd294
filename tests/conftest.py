"""Shared fixtures. ../shared (real mocap and clips) is optional: tests needing it skip."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# cv2 (and so mediapipe) points Qt at its own plugins, which breaks the xcb platform under a
# real display: import it first, then drop its variables before any QApplication exists.
import cv2  # noqa: F401
import pytest

os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
os.environ.pop("QT_QPA_FONTDIR", None)

# Recordings write crash-recovery files; tests keep theirs out of the user's data folder.
os.environ.setdefault("DISTPOSE_DATA_DIR", tempfile.mkdtemp(prefix="distpose-tests-"))

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DISTPOSE_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared, or skip the test when it is absent (a user's fresh clone)."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return SHARED


@pytest.fixture(scope="session")
def bandai_archive(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "bandai-namco-motion.tar.xz"
    if not path.is_file():
        pytest.skip("Bandai-Namco archive absent from ../shared/data")
    return path


@pytest.fixture(scope="session")
def media_dir(shared_dir: Path) -> Path:
    path = shared_dir / "media"
    if not path.is_dir():
        pytest.skip("../shared/media absent")
    return path


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> str:
    """A small random causal lifter (receptive field 9, 32 channels) saved as a checkpoint."""
    import torch

    from distpose_app.lifter.model import TemporalModel, save_checkpoint

    torch.manual_seed(0)
    model = TemporalModel(filter_widths=(3, 3), channels=32, dropout=0.0, causal=True)
    return str(save_checkpoint(tmp_path_factory.mktemp("w") / "tiny.pt", model.eval()))
