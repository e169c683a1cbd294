"""Where things are, for the app and the CLI alike: the shipped weights, the user's folders
(data: recovery files and saved adaptations; settings; cache) and, on development machines, the
`../shared` folder beside the checkout that holds the mocap archive and test media.

The user's folders come from platformdirs (on Linux ~/.local/share/distpose,
~/.config/distpose, ~/.cache/distpose), each overridable by an environment variable so that
tests never touch a user's files: DISTPOSE_APP_DATA (data and settings), DISTPOSE_DATA_DIR
(recovery files only), DISTPOSE_CACHE. DISTPOSE_SHARED overrides `../shared`.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import platformdirs

APP_NAME = "distpose"
SETTINGS_FILE = "distpose-app.conf"  # QSettings' own name for it on Linux, kept
# The checkout's root when running from one (tests, `make`, PYTHONPATH); in an installed wheel
# this is site-packages, which `_in_checkout` tells apart.
REPO = Path(__file__).resolve().parents[2]


def _in_checkout() -> bool:
    return (REPO / "pyproject.toml").is_file() and (REPO / "distpose_app").is_dir()


def _pretrained_dir() -> Path:
    """The shipped weights: the package data of an installed wheel (distpose_app/pretrained,
    found through importlib.resources), else the checkout's top-level pretrained/ folder (the
    same files: setup.py maps that folder into the package)."""
    installed = resources.files("distpose_app") / "pretrained"
    if installed.is_dir():
        return Path(str(installed))
    return REPO / "pretrained"


def user_data_dir() -> Path:
    """The user's data folder (recovery files, saved adaptations); DISTPOSE_APP_DATA overrides."""
    override = os.environ.get("DISTPOSE_APP_DATA")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, False))


def recovery_dir() -> Path:
    """Where unfinished takes are kept until exported: <data>/recovery, or
    $DISTPOSE_DATA_DIR/recovery when that is set."""
    override = os.environ.get("DISTPOSE_DATA_DIR")
    return (Path(override) if override else user_data_dir()) / "recovery"


def adaptations_dir() -> Path:
    """Where the app keeps each camera's accepted adaptation: <data>/adaptations."""
    return user_data_dir() / "adaptations"


def settings_path() -> Path:
    """The app's settings file (INI): <config>/distpose-app.conf, or settings.ini in
    $DISTPOSE_APP_DATA when that is set."""
    override = os.environ.get("DISTPOSE_APP_DATA")
    if override:
        return Path(override) / "settings.ini"
    return Path(platformdirs.user_config_dir(APP_NAME, False)) / SETTINGS_FILE


def _cache_dir() -> Path:
    override = os.environ.get("DISTPOSE_CACHE")
    if override:
        return Path(override)
    # A checkout keeps its git-ignored .cache beside the code; an installed copy the user's.
    return REPO / ".cache" if _in_checkout() else Path(platformdirs.user_cache_dir(APP_NAME, False))


SHARED = Path(os.environ.get("DISTPOSE_SHARED", REPO.parent / "shared"))
DEFAULT_ARCHIVE = SHARED / "data" / "bandai-namco-motion.tar.xz"
# Human3.6M training subjects S1, S5, S6, S7, S8 (../shared/data/README-h36m.md); never S9/S11.
DEFAULT_H36M = SHARED / "data" / "h36m-train-s1-s5-s6-s7-s8.npz"
PRETRAINED_DIR = _pretrained_dir()
CACHE_DIR = _cache_dir()
