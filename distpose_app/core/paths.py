"""Default locations. `../shared` (beside the checkout) holds the mocap archive and test media
on development machines; users point --archive/--data elsewhere. DISTPOSE_SHARED overrides it."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("DISTPOSE_SHARED", REPO.parent / "shared"))
DEFAULT_ARCHIVE = SHARED / "data" / "bandai-namco-motion.tar.xz"
PRETRAINED_DIR = REPO / "pretrained"
CACHE_DIR = Path(os.environ.get("DISTPOSE_CACHE", REPO / ".cache"))
