"""The two panels under the views, each rendered from the controller's state: Adapt's progress
(with Cancel) and outcome, and the source panel shown when a source failed or a file ended
(Reconnect, Replay, Loop, Switch to demo, Switch source)."""

from __future__ import annotations

from PyQt5 import QtCore, QtWidgets


def _row(panel: QtWidgets.QFrame) -> QtWidgets.QHBoxLayout:
    row = QtWidgets.QHBoxLayout(panel)
    row.setContentsMargins(0, 0, 0, 0)
    return row


class AdaptPanel(QtWidgets.QFrame):
    """Progress and Cancel while adapting; the outcome's message while it lives."""

    def __init__(self, cancel):
        super().__init__()
        row = _row(self)
        self.label = QtWidgets.QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setMaximumWidth(260)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.clicked.connect(cancel)
        row.addWidget(self.label, 1)
        row.addWidget(self.progress)
        row.addWidget(self.cancel_button)
        self.setVisible(False)

    def render(self, s) -> None:
        running = s.adapt in ("starting", "adapting", "cancelling")
        message = next((m.text for m in reversed(s.messages) if m.key == "adapt"), "")
        if s.adapt == "starting":
            text = "Adapting: taking the last frames…"
        elif s.adapt == "adapting":
            text = f"Adapting on {s.adapt_frames} frames…"
        elif s.adapt == "cancelling":
            text = "Cancelling…"
        else:
            text = message
        self.label.setText(text)
        self.progress.setVisible(running)
        self.cancel_button.setVisible(s.adapt in ("starting", "adapting"))
        step, total = s.adapt_progress
        if running:
            if total > 0:
                self.progress.setRange(0, total)
                self.progress.setValue(step)
            else:
                self.progress.setRange(0, 0)  # busy until the first step
        self.setVisible(running or bool(text))


class SourcePanel(QtWidgets.QFrame):
    """Shown when the source failed (the take is kept) or a file ended, with what can be done
    next. `win`: the window whose intents the buttons call."""

    def __init__(self, win):
        super().__init__()
        row = _row(self)
        self.label = QtWidgets.QLabel("")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.reconnect_button = QtWidgets.QPushButton("&Reconnect")
        self.reconnect_button.clicked.connect(win.reconnect_source)
        self.replay_button = QtWidgets.QPushButton("Re&play")
        self.replay_button.clicked.connect(win.replay)
        self.loop_button = QtWidgets.QPushButton("&Loop")
        self.loop_button.clicked.connect(lambda: win.toggle_loop(True))
        self.switch_demo_button = QtWidgets.QPushButton("Switch to &demo")
        self.switch_demo_button.clicked.connect(lambda: win.choose_source("demo"))
        self.switch_button = QtWidgets.QPushButton("Switch &source…")
        self.switch_button.clicked.connect(lambda: win.source_combo.showPopup())
        row.addWidget(self.label, 1)
        self.buttons = (self.reconnect_button, self.replay_button, self.loop_button,
                        self.switch_demo_button, self.switch_button)  # fmt: skip
        for button in self.buttons:
            row.addWidget(button)
        self.setVisible(False)

    def render(self, s) -> None:
        failed, ended = s.source == "failed", s.source == "ended"
        self.setVisible(failed or ended)
        if not (failed or ended):
            return
        kept = " The recording is kept and continues once a source is back." if (
            s.recording) else ""  # fmt: skip
        if failed:
            self.label.setStyleSheet("color: #e06060")
            self.label.setText(f"Source lost: {s.source_error}.{kept} Reconnect, or switch to "
                               "another source.")  # fmt: skip
        else:
            name = s.title.split(" — ")[0] or s.spec
            self.label.setStyleSheet("")
            self.label.setText(f"End of {name}. Replay it, loop it, or choose another source.")
        self.reconnect_button.setVisible(failed)
        self.replay_button.setVisible(s.source_kind in ("file", "demo"))
        self.loop_button.setVisible(ended and not s.loop)
        self.switch_demo_button.setVisible(s.spec != "demo" or failed)
