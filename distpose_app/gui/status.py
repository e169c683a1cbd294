"""The status bar: per-stage timings (never hidden by messages), the current message coloured by
its level, the recording, the demo's pose error and the lens. Labels elide their text instead of
overlapping when the window is narrow."""

from __future__ import annotations

from PyQt5 import QtCore, QtWidgets

LEVEL_COLOURS = {"error": "#e05050", "warning": "#d89030", "info": ""}


class ElidedLabel(QtWidgets.QLabel):
    """A label that shrinks below its text's width, eliding the end ("…"); the full text is
    its tooltip."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Preferred)
        self.setMinimumWidth(40)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def text(self) -> str:  # the whole text, whatever is shown
        return self._full

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, QtCore.Qt.ElideRight, self.width())
        super().setText(shown)


class StatusArea:
    """The window's status-bar widgets: stage (timings), message, rec, mpjpe, lens."""

    def __init__(self, bar: QtWidgets.QStatusBar):
        self.bar = bar
        self.stage = ElidedLabel("starting…")
        self.stage.setAccessibleName("Timings")
        self.message = ElidedLabel("")
        self.message.setAccessibleName("Message")
        self.rec = QtWidgets.QLabel("")
        self.mpjpe = QtWidgets.QLabel("")
        self.lens = QtWidgets.QLabel("lens: unknown, unadapted")
        bar.addWidget(self.stage, 3)
        bar.addWidget(self.message, 2)
        for label in (self.rec, self.mpjpe, self.lens):
            bar.addPermanentWidget(label)

    def show_message(self, messages) -> None:
        """The newest error if there is one, else the newest message; all in the tooltip."""
        if not messages:
            self.message.setText("")
            self.message.setStyleSheet("")
            return
        errors = [m for m in messages if m.level == "error"]
        shown = (errors or list(messages))[-1]
        self.message.setText(shown.text)
        colour = LEVEL_COLOURS.get(shown.level, "")
        self.message.setStyleSheet(f"color: {colour}" if colour else "")
        self.message.setToolTip("\n".join(m.text for m in messages))

    def set_recording(self, text: str, recording: bool) -> None:
        self.rec.setText(text)
        self.rec.setStyleSheet("color: #e04040; font-weight: bold" if recording else "")
