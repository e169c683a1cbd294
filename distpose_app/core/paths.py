"""Default locations. `../shared` (beside the checkout) holds the mocap archive and test media
on development machines; users point --archive/--data elsewhere. DISTPOSE_SHARED overrides it."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("DISTPOSE_SHARED", REPO.parent / "shared"))
DEFAULT_ARCHIVE = SHARED / "data" / "bandai-namco-motion.tar.xz"
# Human3.6M training subjects S1, S5, S6, S7, S8 (../shared/data/README-h36m.md); never S9/S11.
DEFAULT_H36M = SHARED / "data" / "h36m-train-s1-s5-s6-s7-s8.npz"
PRETRAINED_DIR = REPO / "pretrained"
CACHE_DIR = Path(os.environ.get("DISTPOSE_CACHE", REPO / ".cache"))
