"""Small dialogs: typing a known lens, recovering unfinished takes, the keyboard-shortcut list,
the question asked when quitting while recording, and About (which names the log file)."""

from __future__ import annotations

from PyQt5 import QtCore, QtGui, QtWidgets

from distpose_app import __version__
from distpose_app.core.errors import LensError
from distpose_app.lens.models import Intrinsics, Lens
from distpose_app.lens.strings import PRESETS, parse_lens


def fit_to_screen(widget: QtWidgets.QWidget, fraction: float = 0.9) -> None:
    """Keep a dialog within `fraction` of its screen's available size (long messages wrap)."""
    screen = widget.screen() if hasattr(widget, "screen") else None
    screen = screen or QtWidgets.QApplication.primaryScreen()
    if screen is None:
        return
    area = screen.availableGeometry()
    widget.setMaximumSize(int(area.width() * fraction), int(area.height() * fraction))


class LensDialog(QtWidgets.QDialog):
    """Ask for a lens string (`none`, `brown:k1,...`, `fisheye:...`, a preset) and the camera's
    horizontal field of view, which turns the lens's normalised coordinates into pixels
    (default: what the current source assumes, the demo's own 90°). An invalid string is
    explained under the field, wrapped: the dialog never grows off the screen.
    `result_lens(width, height)` -> (Intrinsics, Lens) after exec_() accepted."""

    WIDTH = 460  # pixels: wide enough for a lens string, narrow enough for any screen

    def __init__(self, parent=None, text: str = "", hfov_deg: float = 70.0):
        super().__init__(parent)
        self.setWindowTitle("Known lens")
        form = QtWidgets.QFormLayout(self)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.AllNonFixedFieldsGrow)
        self.edit = QtWidgets.QLineEdit(text)
        self.edit.setPlaceholderText("e.g. brown:-0.28,0.07  or  " + ", ".join(PRESETS))
        self.hfov = QtWidgets.QDoubleSpinBox()
        self.hfov.setRange(10.0, 179.0)
        self.hfov.setDecimals(1)
        self.hfov.setSuffix("°")
        self.hfov.setValue(hfov_deg)
        self.error = QtWidgets.QLabel("")
        self.error.setStyleSheet("color: #e06060")
        self.error.setWordWrap(True)
        self.error.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Minimum)
        self.error.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
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
        self.setMinimumWidth(min(self.WIDTH, 600))
        self.resize(self.WIDTH, self.sizeHint().height())
        fit_to_screen(self)

    def _check(self) -> None:
        try:
            self.lens = parse_lens(self.edit.text())
        except LensError as exc:
            self.error.setText(str(exc))
            self.error.setToolTip(str(exc))
            self.adjustSize()
            self.resize(max(self.width(), self.WIDTH), self.height())
            return
        self.accept()

    def result_lens(self, width: int, height: int) -> tuple[Intrinsics, Lens]:
        return Intrinsics.from_hfov(self.hfov.value(), width, height), self.lens


# Keys that widgets handle themselves (no action carries them), listed in Help too.
WIDGET_KEYS = (
    ("Reset the 3D view's camera (3D view focused)", "Home"),
    ("Orbit / zoom the 3D view", "Left drag / wheel"),
)


def shortcuts_dialog(parent, actions: list[QtWidgets.QAction]) -> QtWidgets.QDialog:
    """A table of every action with a shortcut (built from the actions, so it never drifts),
    then the keys widgets handle themselves (WIDGET_KEYS)."""
    dialog = QtWidgets.QDialog(parent)
    dialog.setWindowTitle("Keyboard shortcuts")
    layout = QtWidgets.QVBoxLayout(dialog)
    rows = [
        (a.text().replace("&", ""), ", ".join(k.toString() for k in a.shortcuts())) for a in actions
    ]
    rows = [r for r in rows if r[1]] + list(WIDGET_KEYS)
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
    dialog.resize(460, 560)
    fit_to_screen(dialog)
    return dialog


def quit_prompt(parent, frames: int) -> QtWidgets.QMessageBox:
    """Quit while recording: Save (export the take, then quit), Discard (delete it and quit) or
    Cancel. Returns the box (not shown): exec_() it and read `box.choice` ("save", "discard",
    "cancel")."""
    box = QtWidgets.QMessageBox(parent)
    box.setIcon(QtWidgets.QMessageBox.Question)
    box.setWindowTitle("Quit while recording")
    box.setText(f"A take of {frames} frames is being recorded.")
    box.setInformativeText(
        "Save it (choose where to export it, then quit), discard it and quit, or cancel and "
        "keep recording."
    )
    buttons = {
        "save": box.addButton("&Save…", QtWidgets.QMessageBox.AcceptRole),
        "discard": box.addButton("&Discard", QtWidgets.QMessageBox.DestructiveRole),
        "cancel": box.addButton("&Cancel", QtWidgets.QMessageBox.RejectRole),
    }
    box.setDefaultButton(buttons["save"])
    box.setEscapeButton(buttons["cancel"])
    box.choice = "cancel"

    def clicked(button):
        box.choice = next((k for k, b in buttons.items() if b is button), "cancel")

    box.buttonClicked.connect(clicked)
    box.buttons_by_choice = buttons
    return box


def about_dialog(parent, log_file, data_dir) -> QtWidgets.QMessageBox:
    """Version, the log file (worker errors and their tracebacks go there) and the data folder."""
    box = QtWidgets.QMessageBox(parent)
    box.setWindowTitle("About distpose")
    box.setIconPixmap(QtGui.QPixmap())
    box.setText(f"<b>distpose {__version__}</b><br>Real-time 3D human pose from one webcam.")
    box.setInformativeText(
        f"Log file: {log_file}<br>Data folder (saved adaptations, unsaved takes): {data_dir}"
    )
    box.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
    box.setStandardButtons(QtWidgets.QMessageBox.Close)
    return box


class RecoveryDialog(QtWidgets.QDialog):
    """Non-modal offer of the unfinished takes (recovery.RecoveryInfo) found at start: one row
    each (source, start time, frames, duration, how it ended), every column visible. Recover /
    Discard / Later act on the selected take and emit `answered(info, "recover" | "discard" |
    "later")`; the row then goes, the count above updates, and the dialog closes when none is
    left. Discard asks first (`confirm(info) -> bool`, replaceable in tests). `answer(info,
    choice)` does the same without the buttons and without asking."""

    answered = QtCore.pyqtSignal(object, str)
    COLUMNS = ("Source", "Started", "Frames", "Duration", "Ended")

    def __init__(self, takes: list, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Recover unfinished recordings")
        self.setModal(False)
        self.takes = list(takes)
        layout = QtWidgets.QVBoxLayout(self)
        self.text = QtWidgets.QLabel("")
        self.text.setWordWrap(True)
        layout.addWidget(self.text)
        self.table = QtWidgets.QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(QtCore.Qt.ElideMiddle)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.Stretch)  # the source elides
        for column in range(1, len(self.COLUMNS)):
            header.setSectionResizeMode(column, QtWidgets.QHeaderView.ResizeToContents)
        self._fill()
        layout.addWidget(self.table)
        row = QtWidgets.QHBoxLayout()
        row.addStretch(1)
        for label, choice in (("&Recover…", "recover"), ("&Discard…", "discard"),
                              ("&Later", "later")):  # fmt: skip
            button = QtWidgets.QPushButton(label)
            button.clicked.connect(lambda _=False, c=choice: self._answer_selected(c))
            row.addWidget(button)
        layout.addLayout(row)
        self.resize(760, 280)
        fit_to_screen(self)

    def _fill(self) -> None:
        n = len(self.takes)
        self.text.setText(
            f"{n} recording{'s were' if n != 1 else ' was'} not saved (the app stopped or "
            "crashed). Recover opens the export dialog; the take's recovery file is deleted "
            "once exported."
        )
        self.table.setRowCount(n)
        for i, info in enumerate(self.takes):
            ended = "stopped, not saved" if info.complete else "interrupted"
            cells = (info.source, info.started.replace("T", " "), str(info.frames),
                     f"{info.duration_s:.1f} s", ended)  # fmt: skip
            for j, cell in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(cell)
                item.setToolTip(cell)
                self.table.setItem(i, j, item)
        if self.takes:
            self.table.selectRow(0)

    def confirm(self, info) -> bool:
        """Ask before deleting a take for good."""
        answer = QtWidgets.QMessageBox.question(
            self,
            "Discard the recording",
            f"Delete the {info.frames}-frame take from {info.source} "
            f"({info.started.replace('T', ' ')}) for good?",
            QtWidgets.QMessageBox.Discard | QtWidgets.QMessageBox.Cancel,
            QtWidgets.QMessageBox.Cancel,
        )
        return answer == QtWidgets.QMessageBox.Discard

    def _answer_selected(self, choice: str) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not self.takes:
            return
        info = self.takes[rows[0].row() if rows else 0]
        if choice == "discard" and not self.confirm(info):
            return
        self.answer(info, choice)

    def answer(self, info, choice: str) -> None:
        """Answer for one take: "recover", "discard" or "later"."""
        if choice not in ("recover", "discard", "later"):
            raise ValueError(f"unknown answer {choice!r}")
        self.takes = [t for t in self.takes if t.path != info.path]
        self._fill()
        if not self.takes:
            self.close()
        self.answered.emit(info, choice)
