"""Small dialogs: typing a known lens, recovering unfinished takes, the keyboard-shortcut list."""

from __future__ import annotations

from PyQt5 import QtCore, QtWidgets

from distpose_app.core.errors import LensError
from distpose_app.lens.models import Intrinsics, Lens
from distpose_app.lens.strings import PRESETS, parse_lens


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


class RecoveryDialog(QtWidgets.QDialog):
    """Non-modal offer of the unfinished takes (recovery.RecoveryInfo) found at start: one row
    each (source, start time, frames, duration, how it ended). Recover / Discard / Later act on
    the selected take and emit `answered(info, "recover" | "discard" | "later")`; the row then
    goes, and the dialog closes when none is left. `answer(info, choice)` does the same without
    the buttons (tests)."""

    answered = QtCore.pyqtSignal(object, str)

    def __init__(self, takes: list, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Recover unfinished recordings")
        self.setModal(False)
        self.takes = list(takes)
        layout = QtWidgets.QVBoxLayout(self)
        text = QtWidgets.QLabel(
            f"{len(self.takes)} recording(s) were not saved (the app stopped or crashed). "
            "Recover opens the export dialog; the take's recovery file is deleted once exported."
        )
        text.setWordWrap(True)
        layout.addWidget(text)
        self.table = QtWidgets.QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Source", "Started", "Frames", "Duration", "Ended"])
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
        self._fill()
        layout.addWidget(self.table)
        row = QtWidgets.QHBoxLayout()
        row.addStretch(1)
        for label, choice in (("&Recover…", "recover"), ("&Discard", "discard"),
                              ("&Later", "later")):  # fmt: skip
            button = QtWidgets.QPushButton(label)
            button.clicked.connect(lambda _=False, c=choice: self._answer_selected(c))
            row.addWidget(button)
        layout.addLayout(row)
        self.resize(680, 260)

    def _fill(self) -> None:
        self.table.setRowCount(len(self.takes))
        for i, info in enumerate(self.takes):
            ended = "stopped, not saved" if info.complete else "interrupted"
            cells = (info.source, info.started.replace("T", " "), str(info.frames),
                     f"{info.duration_s:.1f} s", ended)  # fmt: skip
            for j, cell in enumerate(cells):
                self.table.setItem(i, j, QtWidgets.QTableWidgetItem(cell))
        self.table.resizeColumnsToContents()
        if self.takes:
            self.table.selectRow(0)

    def _answer_selected(self, choice: str) -> None:
        rows = self.table.selectionModel().selectedRows()
        if self.takes:
            self.answer(self.takes[rows[0].row() if rows else 0], choice)

    def answer(self, info, choice: str) -> None:
        """Answer for one take: "recover", "discard" or "later"."""
        if choice not in ("recover", "discard", "later"):
            raise ValueError(f"unknown answer {choice!r}")
        self.takes = [t for t in self.takes if t.path != info.path]
        self._fill()
        if not self.takes:
            self.close()
        self.answered.emit(info, choice)
