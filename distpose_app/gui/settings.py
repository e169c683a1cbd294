"""The window's own settings (geometry, last source, folders, demo lens) in QSettings."""

from __future__ import annotations

import os
from pathlib import Path

from PyQt5 import QtCore

from distpose_app.live.app_data import APPLICATION, ORGANISATION


def make_settings() -> QtCore.QSettings:
    """QSettings for the window (~/.config/distpose/distpose-app.conf on Linux); with
    DISTPOSE_APP_DATA set, an ini file in that folder (tests never touch the user's)."""
    override = os.environ.get("DISTPOSE_APP_DATA")
    if override:
        return QtCore.QSettings(str(Path(override) / "settings.ini"), QtCore.QSettings.IniFormat)
    return QtCore.QSettings(ORGANISATION, APPLICATION)


def setting_bool(settings: QtCore.QSettings, key: str, default: bool) -> bool:
    """A boolean setting (ini files give strings back)."""
    value = settings.value(key, default)
    return value in (True, "true", "1", 1) if not isinstance(value, bool) else value
