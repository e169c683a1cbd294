"""Small dialogs: typing a known lens, and the keyboard-shortcut list."""

from __future__ import annotations

from PyQt5 import QtCore, QtWidgets

from distpose_app.errors import LensError
from distpose_app.lens import PRESETS, Intrinsics, Lens, parse_lens


class LensDialog(QtWidgets.QDialog):
    """Ask for a lens string (`none`, `brown:k1,...`, `fisheye:...`, a preset) and the camera's
    horizontal field of view, which turns the lens's normalised coordinates into pixels.
    `result_lens(width, height)` -> (Intrinsics, Lens) after exec_() accepted."""

    def __init__(self, parent=None, text: str = "", hfov_deg: float = 78.0):
        super().__init__(parent)
        self.setWindowTitle("Known lens")
        form = QtWidgets.QFormLayout(self)
        self.edit = QtWidgets.QLineEdit(text)
        self.edit.setPlaceholderText("e.g. brown:-0.28,0.07  or  " + ", ".join(PRESETS))
        self.hfov = QtWidgets.QDoubleSpinBox()
        self.hfov.setRange(10.0, 179.0)
        self.hfov.setDecimals(1)
        self.hfov.setSuffix("°")
        self.hfov.setValue(hfov_deg)
        self.error = QtWidgets.QLabel("")
        self.error.setStyleSheet("color: #e06060")
        form.addRow("&Lens:", self.edit)
        form.addRow("&Horizontal field of view:", self.hfov)
        form.addRow(self.error)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.Ok | QtWidgets.QDialogButtonBox.Cancel
        )
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.lens: Lens | None = None

    def _check(self) -> None:
        try:
            self.lens = parse_lens(self.edit.text())
        except LensError as exc:
            self.error.setText(str(exc))
            return
        self.accept()

    def result_lens(self, width: int, height: int) -> tuple[Intrinsics, Lens]:
        return Intrinsics.from_hfov(self.hfov.value(), width, height), self.lens


def shortcuts_dialog(parent, actions: list[QtWidgets.QAction]) -> QtWidgets.QDialog:
    """A table of every action with a shortcut (built from the actions, so it never drifts)."""
    dialog = QtWidgets.QDialog(parent)
    dialog.setWindowTitle("Keyboard shortcuts")
    layout = QtWidgets.QVBoxLayout(dialog)
    rows = [(a.text().replace("&", ""), a.shortcut().toString()) for a in actions]
    rows = [r for r in rows if r[1]]
    table = QtWidgets.QTableWidget(len(rows), 2)
    table.setHorizontalHeaderLabels(["Action", "Shortcut"])
    table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
    for i, (name, key) in enumerate(rows):
        table.setItem(i, 0, QtWidgets.QTableWidgetItem(name))
        table.setItem(i, 1, QtWidgets.QTableWidgetItem(key))
    table.resizeColumnsToContents()
    table.horizontalHeader().setStretchLastSection(True)
    layout.addWidget(table)
    close = QtWidgets.QPushButton("Close")
    close.clicked.connect(dialog.accept)
    layout.addWidget(close, alignment=QtCore.Qt.AlignRight)
    dialog.resize(420, 480)
    return dialog
