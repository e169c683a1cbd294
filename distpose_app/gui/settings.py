"""The window's own settings (geometry, last source, folders, demo lens) in QSettings."""

from __future__ import annotations

from PyQt5 import QtCore

from distpose_app.core import paths


def make_settings() -> QtCore.QSettings:
    """QSettings for the window, in the INI file `core.paths.settings_path()`
    (~/.config/distpose/distpose-app.conf on Linux; DISTPOSE_APP_DATA moves it for tests)."""
    return QtCore.QSettings(str(paths.settings_path()), QtCore.QSettings.IniFormat)


def setting_bool(settings: QtCore.QSettings, key: str, default: bool) -> bool:
    """A boolean setting (ini files give strings back)."""
    value = settings.value(key, default)
    return value in (True, "true", "1", 1) if not isinstance(value, bool) else value
