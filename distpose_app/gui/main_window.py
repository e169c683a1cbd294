"""The distpose main window: source picker, live video with the 2D skeleton, live 3D skeleton,
Adapt / Revert, lens menu, Record / Export, per-stage timings in the status bar.

Reliability (issue 6, docs/reliability.md): on start it offers the takes a crash left behind
(`recovery.find_recoverable`); a stopped take keeps its recovery file until it is exported; a
lost camera keeps the take and offers Reconnect / another source in the same session; a bad
video file is refused with a dialog while the current source runs on; Adapt goes through the
pipeline's tickets, so a second press, a source switch or Cancel can never apply stale weights.

The window only wires things together: the live loop runs in `workers.LiveWorker` on its own
thread over a `session.LiveSession`; adaptation and export run in `workers.TaskThread`. Every
action has a keyboard shortcut (Help > Keyboard shortcuts lists them).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PyQt5 import QtCore, QtGui, QtWidgets

from distpose_app.core.errors import DistposeError
from distpose_app.gui import session as live
from distpose_app.gui.dialogs import LensDialog, RecoveryDialog, shortcuts_dialog
from distpose_app.gui.skeleton_view import SkeletonView
from distpose_app.gui.video_view import VideoView
from distpose_app.gui.workers import LiveWorker, TaskThread, start_live
from distpose_app.live import recovery

DEMO_LENSES = ("none", "mild", "moderate", "strong", "pincushion", "fisheye")
PENDING = object()  # adapt_ticket while the live thread has not answered begin_adaptation yet


@dataclass
class AppOptions:
    """What the command line asked for (see app.py)."""

    source: str | None = None  # "demo", a camera index, a video path; None: last used / demo
    lens: str | None = None  # demo lens
    device: str = "auto"
    weights: str | None = None
    frames: int | None = None  # stop after this many frames (scripted runs)
    screenshot: str | None = None  # save the whole window here after --frames, then quit
    pace: bool = True  # demo and video files play in real time (tests turn it off)
    demo_size: tuple[int, int] = (1280, 720)  # the demo camera's image, pixels


class MainWindow(QtWidgets.QMainWindow):
    """See the module docstring. `exit_code` is set when a scripted run ends."""

    def __init__(self, options: AppOptions | None = None, settings: QtCore.QSettings | None = None):
        super().__init__()
        self.options = options or AppOptions()
        self.settings = settings or live.make_settings()
        self.setWindowTitle("distpose")
        self.exit_code = 0
        self.worker: LiveWorker | None = None
        self.thread: QtCore.QThread | None = None
        self._retiring: list[tuple[LiveWorker, QtCore.QThread]] = []
        self.session_info: live.SessionInfo | None = None
        self.adapt_task: TaskThread | None = None
        self.export_task: TaskThread | None = None
        self.recording = None  # the last stopped Recording, ready to export
        self.last_export = None  # export_recording's result dict, None after a failure
        self.exports_done = 0  # finished exports, successful or not
        self.last_warning = ""
        self.is_recording = False
        self.adapted = False
        self.last_adapt_result = None
        # adapt.adapt_model's method: None (the measured default, adapt.DEFAULT_ADAPTATION), a
        # name in adapt.ADAPTATIONS or an adapt.IsoConfig.
        self.adapt_config = None
        self.known_lens: tuple | None = None  # (Intrinsics | None, Lens, description) or None
        self.frames_drawn = 0
        self._cameras: list = []
        self.source_lost: str | None = None  # why the live source failed, until reconnected
        self.adapt_ticket = None  # the pipeline.AdaptTicket of the running adaptation, or PENDING
        self.adapt_fn = None  # adapt_model(model, keypoints, config, progress, should_cancel)
        self.adaptations_started = 0
        self.last_adapt_message = ""
        self.recording_recovery = None  # (Recorder | None, recovery file) of self.recording
        self.recovery_dialog: RecoveryDialog | None = None
        self.last_notice = ""  # the last pipeline warning or recovery-file problem shown
        self.live_adaptation_path = None  # the saved file of the adapted weights now live

        self.video = VideoView()
        self.view3d = SkeletonView()
        splitter = QtWidgets.QSplitter()
        splitter.addWidget(self.video)
        splitter.addWidget(self.view3d)
        splitter.setSizes([640, 640])
        self.setCentralWidget(self._central(splitter))
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status()
        self._restore_settings()
        QtCore.QTimer.singleShot(0, self._start_initial_source)

    # ------------------------------------------------------------------ layout
    def _central(self, splitter: QtWidgets.QWidget) -> QtWidgets.QWidget:
        box = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(box)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter, 1)
        # The adaptation panel: progress + Cancel while running, before/after when done.
        self.adapt_panel = QtWidgets.QFrame()
        row = QtWidgets.QHBoxLayout(self.adapt_panel)
        row.setContentsMargins(0, 0, 0, 0)
        self.adapt_label = QtWidgets.QLabel("")
        self.adapt_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.adapt_progress = QtWidgets.QProgressBar()
        self.adapt_progress.setMaximumWidth(260)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_adapt)
        row.addWidget(self.adapt_label, 1)
        row.addWidget(self.adapt_progress)
        row.addWidget(self.cancel_button)
        self.adapt_panel.setVisible(False)
        layout.addWidget(self.adapt_panel)
        # Shown while the source is lost: the take is kept; reconnect or continue elsewhere.
        self.source_panel = QtWidgets.QFrame()
        row = QtWidgets.QHBoxLayout(self.source_panel)
        row.setContentsMargins(0, 0, 0, 0)
        self.source_label = QtWidgets.QLabel("")
        self.source_label.setStyleSheet("color: #e06060")
        self.source_label.setWordWrap(True)
        self.source_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.reconnect_button = QtWidgets.QPushButton("&Reconnect")
        self.reconnect_button.clicked.connect(self.reconnect_source)
        self.switch_demo_button = QtWidgets.QPushButton("Switch to &demo")
        self.switch_demo_button.clicked.connect(lambda: self.switch_source_live("demo"))
        self.switch_button = QtWidgets.QPushButton("Switch &source…")
        self.switch_button.clicked.connect(lambda: self.source_combo.showPopup())
        row.addWidget(self.source_label, 1)
        for button in (self.reconnect_button, self.switch_demo_button, self.switch_button):
            row.addWidget(button)
        self.source_panel.setVisible(False)
        layout.addWidget(self.source_panel)
        return box

    def _action(self, text, shortcut=None, slot=None, checkable=False, tip=None):
        action = QtWidgets.QAction(text, self)
        if shortcut:
            action.setShortcut(QtGui.QKeySequence(shortcut))
        if slot is not None:
            action.triggered.connect(slot)
        action.setCheckable(checkable)
        if tip:
            action.setStatusTip(tip)
        self.addAction(action)  # shortcuts work even when the menu bar is hidden
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.act_open = a("&Open video file…", "Ctrl+O", self.open_video_dialog)
        self.act_demo = a("&Demo", "Ctrl+M", lambda: self.start_source("demo"))
        self.act_refresh = a("&Refresh cameras", "F5", self.refresh_cameras)
        self.act_pick = a("Choose &source…", "F2", lambda: self.source_combo.showPopup())
        self.act_export_bvh = a("Export &BVH…", "Ctrl+E", lambda: self.export_dialog("bvh"))
        self.act_export_csv = a("Export &CSV…", "Ctrl+Shift+E", lambda: self.export_dialog("csv"))
        self.act_quit = a("&Quit", "Ctrl+Q", self.close)
        self.act_pause = a("&Pause", "Space", self.toggle_pause, checkable=True)
        self.act_record = a("&Record", "Ctrl+R", self.toggle_record, checkable=True)
        self.act_adapt = a(
            "&Adapt to this lens", "Ctrl+A", self.start_adapt,
            tip="Self-supervised adaptation (ISO) on the last seconds of video",
        )  # fmt: skip
        self.act_cancel = a("&Cancel adaptation", "Esc", self.cancel_adapt)
        self.act_revert = a("Re&vert to unadapted", "Ctrl+Z", self.revert_adapt)
        self.act_saved = a("Use &saved adaptation", "Ctrl+Shift+A", self.use_saved_adaptation)
        self.act_lens_unknown = a("&Unknown — adapt", "Ctrl+1", self.set_lens_unknown, True)
        self.act_lens_type = a("Known: &type a lens…", "Ctrl+L", self.type_lens_dialog, True)
        self.act_lens_calib = a(
            "Known: load OpenCV &calibration…", "Ctrl+Shift+L", self.calibration_dialog, True
        )
        group = QtWidgets.QActionGroup(self)
        for action in (self.act_lens_unknown, self.act_lens_type, self.act_lens_calib):
            group.addAction(action)
        self.act_lens_unknown.setChecked(True)
        self.act_reset_view = a("Reset &3D view", "Ctrl+0", lambda: self.view3d.reset_camera())
        self.act_shortcuts = a("&Keyboard shortcuts", "F1", self.show_shortcuts)
        self.demo_lens_actions = {}
        demo_group = QtWidgets.QActionGroup(self)
        for i, name in enumerate(DEMO_LENSES):
            act = a(f"Demo lens: {name}", f"Alt+{i + 1}", None, True)
            act.triggered.connect(lambda _=False, n=name: self.set_demo_lens(n))
            demo_group.addAction(act)
            self.demo_lens_actions[name] = act
        for act in (self.act_cancel, self.act_revert, self.act_saved):
            act.setEnabled(False)
        self._update_export_actions()

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        for act in (self.act_open, self.act_demo, self.act_refresh, self.act_pick):
            m.addAction(act)
        m.addSeparator()
        m.addAction(self.act_export_bvh)
        m.addAction(self.act_export_csv)
        m.addSeparator()
        m.addAction(self.act_quit)
        m = bar.addMenu("&Capture")
        m.addAction(self.act_pause)
        m.addAction(self.act_record)
        m = bar.addMenu("&Adapt")
        for act in (self.act_adapt, self.act_cancel, self.act_revert, self.act_saved):
            m.addAction(act)
        m = bar.addMenu("&Lens")
        for act in (self.act_lens_unknown, self.act_lens_type, self.act_lens_calib):
            m.addAction(act)
        m.addSeparator()
        demo = m.addMenu("&Demo lens")
        for act in self.demo_lens_actions.values():
            demo.addAction(act)
        m = bar.addMenu("&View")
        m.addAction(self.act_reset_view)
        m = bar.addMenu("&Help")
        m.addAction(self.act_shortcuts)

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.setMovable(False)
        tb.addWidget(QtWidgets.QLabel(" Source: "))
        self.source_combo = QtWidgets.QComboBox()
        self.source_combo.setMinimumContentsLength(28)
        self.source_combo.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToContents)
        self.source_combo.setAccessibleName("Source")
        self.source_combo.activated.connect(self._source_chosen)
        tb.addWidget(self.source_combo)
        tb.addWidget(QtWidgets.QLabel("  Demo lens: "))
        self.lens_combo = QtWidgets.QComboBox()
        self.lens_combo.addItems(DEMO_LENSES)
        self.lens_combo.setAccessibleName("Demo lens")
        self.lens_combo.activated.connect(lambda i: self.set_demo_lens(DEMO_LENSES[i]))
        tb.addWidget(self.lens_combo)
        tb.addSeparator()
        for act in (self.act_pause, self.act_record, self.act_adapt, self.act_revert):
            tb.addAction(act)
        tb.addSeparator()
        tb.addAction(self.act_export_bvh)
        tb.addAction(self.act_export_csv)
        self._fill_source_combo()

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.stage_label = QtWidgets.QLabel("starting…")
        self.mpjpe_label = QtWidgets.QLabel("")
        self.lens_label = QtWidgets.QLabel("lens: unknown, unadapted")
        self.rec_label = QtWidgets.QLabel("")
        sb.addWidget(self.stage_label, 1)
        for label in (self.rec_label, self.mpjpe_label, self.lens_label):
            sb.addPermanentWidget(label)

    # ------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 720)
        lens = self.options.lens or self.settings.value("demo/lens", "moderate")
        self.demo_lens = lens
        if lens in DEMO_LENSES:
            self.lens_combo.setCurrentIndex(DEMO_LENSES.index(lens))
            self.demo_lens_actions[lens].setChecked(True)

    def _save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("demo/lens", self.demo_lens)
        spec = self.session_info.spec if self.session_info is not None else ""
        if spec and (spec == "demo" or spec.isdigit() or Path(spec).is_file()):
            self.settings.setValue("source/last", spec)
        self.settings.sync()

    # ------------------------------------------------------------------ sources
    def _fill_source_combo(self) -> None:
        combo = self.source_combo
        combo.clear()
        combo.addItem("Demo (virtual camera)", "demo")
        for cam in self._cameras:
            combo.addItem(live.describe_camera(cam), str(cam.index))
        combo.addItem("Open video file…", "__open__")
        combo.addItem("Refresh camera list", "__refresh__")

    def refresh_cameras(self) -> None:
        """List cameras on a background thread (opening each can take a second)."""
        task = TaskThread(lambda progress, cancel: live.list_cameras(), self)
        task.succeeded.connect(self._cameras_listed)
        task.failed.connect(lambda msg: self.statusBar().showMessage(f"cameras: {msg}", 5000))
        self._camera_task = task
        task.start()
        self.statusBar().showMessage("looking for cameras…", 3000)

    def _cameras_listed(self, cameras) -> None:
        self._cameras = list(cameras)
        current = self.session_info.spec if self.session_info else None
        self._fill_source_combo()
        self._select_combo(current)
        self.statusBar().showMessage(f"{len(self._cameras)} camera(s) found", 4000)

    def _select_combo(self, spec: str | None) -> None:
        i = self.source_combo.findData(spec) if spec else -1
        if i < 0 and spec and spec != "demo":
            self.source_combo.insertItem(self.source_combo.count() - 2, Path(spec).name, spec)
            i = self.source_combo.findData(spec)
        if i >= 0:
            self.source_combo.setCurrentIndex(i)

    def _source_chosen(self, index: int) -> None:
        spec = self.source_combo.itemData(index)
        if spec == "__open__":
            self.open_video_dialog()
        elif spec == "__refresh__":
            self.refresh_cameras()
        elif spec:
            self.start_source(spec)

    def open_video_dialog(self) -> None:
        folder = self.settings.value("paths/video", str(Path.home()))
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open video file", folder, "Videos (*.mp4 *.avi *.mov *.mkv *.webm);;All (*)"
        )
        if path:
            self.settings.setValue("paths/video", str(Path(path).parent))
            self.start_source(path)
        else:
            self._select_combo(self.session_info.spec if self.session_info else None)

    def _start_initial_source(self) -> None:
        spec = self.options.source or self.settings.value("source/last", "demo") or "demo"
        if self.options.source is None and spec != "demo" and not spec.isdigit():
            if not Path(spec).is_file():
                spec = "demo"
        if not self.start_source(spec) and spec != "demo":
            self.start_source("demo")  # the file was refused with a dialog: run something
        if self.options.frames is None:
            self.refresh_cameras()
            self.offer_recovery()

    def start_source(self, spec: str, source=None) -> bool:
        """Stop the current source (keeping any recording) and start `spec`: "demo", a camera
        index, or a video path (`source`: a ready FrameSource, for tests). Opening happens on
        the live thread. A video file that cannot be read is refused with a dialog naming it,
        and the current source runs on. While the source is lost, the new one continues the
        same session instead (switch_source_live), so the take goes on. False: refused."""
        if source is None and not self._video_file_ok(spec):
            self._select_combo(self.session_info.spec if self.session_info else None)
            return False
        if self.source_lost is not None and self.worker is not None:
            self.switch_source_live(spec, source)
            return True
        if self.is_recording:
            self.toggle_record(False)
        self._stop_worker()
        if self.adapt_task is not None:
            self.cancel_adapt()
        self._set_source_lost(None)
        if self.adapt_ticket is PENDING:  # its answer, if any, is refused as stale
            self.adapt_ticket = None
        self.session_info = live.SessionInfo(spec=spec, demo_lens=self.demo_lens)
        self.adapted = False
        self._set_adapt_idle()
        self.view3d.clear_pose()
        self.video.show_message(f"opening {live.describe_spec(spec)}…")
        self._select_combo(spec)
        self.lens_combo.setEnabled(spec == "demo")
        config = live.SessionConfig(
            spec=spec,
            demo_lens=self.demo_lens,
            device=self.options.device,
            weights=self.options.weights,
            known_lens=self.known_lens,
            pace=self.options.pace,
            demo_size=self.options.demo_size,
            source=source,
        )
        worker = LiveWorker(lambda: live.LiveSession.open(config), max_frames=self.options.frames)
        worker.opened.connect(self._session_opened)
        worker.update.connect(self._on_update)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        worker.notice.connect(self._on_notice)
        worker.command_done.connect(lambda done, result: done(result))
        self.worker, self.thread = worker, start_live(worker)
        self.frames_drawn = 0
        return True

    def _stop_worker(self) -> None:
        if self.worker is None:
            return
        worker, thread = self.worker, self.thread
        self.worker = self.thread = None
        # Only the window's slots: worker.finished -> thread.quit must stay connected.
        for signal, slot in (
            (worker.update, self._on_update),
            (worker.opened, self._session_opened),
            (worker.finished, self._on_finished),
            (worker.failed, self._on_failed),
            (worker.notice, self._on_notice),
        ):
            signal.disconnect(slot)
        worker.stop()
        # Keep references until the thread has really ended (deleting a running QThread aborts).
        self._retiring.append((worker, thread))
        thread.finished.connect(lambda: self._retiring.remove((worker, thread)))

    def _session_opened(self, session, info: live.SessionInfo | None = None) -> None:
        # A copy: the live thread updates its own when the source is switched.
        info = dataclasses.replace(info or session.info)
        self.session_info = info
        self.video.show_message("")
        self.setWindowTitle(f"distpose — {info.title} — model {info.model_name} on {info.device}")
        self.act_saved.setEnabled(info.saved_adaptation)
        if info.saved_adaptation:
            self.statusBar().showMessage(
                f"An adaptation saved for {info.camera_key} exists: Adapt > Use saved adaptation "
                "(Ctrl+Shift+A)",
                10000,
            )
        if info.warning:  # weights fallen back to, a saved adaptation ignored: never silent
            self.warn("distpose", info.warning)
        self._update_lens_label()

    # ------------------------------------------------------------------ live updates
    def _on_update(self, update: live.LiveUpdate) -> None:
        t0 = time.perf_counter()
        self.video.set_frame(
            update.image, update.keypoints_px, update.confidence, blank_size=update.image_size
        )
        # The pose trails the input by the lifter's lookahead: dim by its own frame's confidence
        # and seen flags.
        extra = update.extra
        self.view3d.set_pose(update.pose_3d, extra.get("pose_confidence", update.confidence),
                             extra.get("pose_seen"))  # fmt: skip
        self.frames_drawn += 1
        now = time.perf_counter()
        stats = update.extra.get("stats")
        if stats is not None:
            stats.add("draw", now - t0)  # StageStats is thread-safe; the live thread adds the rest
            text = stats.text()
        else:
            text = ""
        if update.buffer_frames:
            text += f"  |  Adapt buffer {update.buffer_frames} frames"
        self.stage_label.setText(text)
        if update.mpjpe_mm is not None and np.isfinite(update.mpjpe_mm):
            # The live feed's moving average (live.demo.ErrorReadout), steadier than one frame.
            text = getattr(update, "error_readout", "") or f"MPJPE {update.mpjpe_mm:.0f} mm"
            self.mpjpe_label.setText(text)
        else:
            self.mpjpe_label.setText("")
        if self.is_recording:
            self.rec_label.setText(f"● REC {update.recorded_frames} frames")
        adapted = update.extra.get("adapted")
        if adapted is not None and adapted != self.adapted:
            self.adapted = bool(adapted)
            self.act_revert.setEnabled(self.adapted)
            self._update_lens_label()
        if self.worker is not None:
            self.worker.ack()

    def _on_failed(self, message: str) -> None:
        self.video.show_message(message)
        self.statusBar().showMessage(message)
        self.warn("distpose", message)
        if self.options.frames is not None:
            self.exit_code = 2

    def _on_notice(self, kind: str, message: str) -> None:
        """A notice from the live thread: the source was lost, the pipeline reverted diverged
        weights, the recovery file cannot be written."""
        if kind == "source_lost":
            self._set_source_lost(message)
            if self.options.frames is not None and self.worker is not None:
                self.exit_code = 2  # a scripted run has nobody to reconnect: end it
                self.worker.stop()
            return
        self.last_notice = message
        if kind == "recovery":
            message = f"crash recovery off: {message}"
            self.rec_label.setToolTip(message)
        else:  # the adapted weights diverged and were reverted: do not offer them again
            if self.live_adaptation_path is not None and "diverged" in message:
                self.live_adaptation_path.unlink(missing_ok=True)
                self.live_adaptation_path = None
                self.act_saved.setEnabled(False)
                message += "; its saved copy was deleted"
            self.adapt_panel.setVisible(True)
            self.adapt_label.setText(message)
        self.statusBar().showMessage(message, 15000)

    def _set_source_lost(self, message: str | None) -> None:
        """Show (message) or hide (None) the lost-source panel. The take goes on recording."""
        self.source_lost = message
        self.source_panel.setVisible(message is not None)
        if message is None:
            return
        kept = ""
        if self.is_recording:
            kept = " The recording is kept and continues once a source is back."
        text = f"Source lost: {message}.{kept} Reconnect, or switch to another source."
        self.source_label.setText(text)
        self.video.show_message(f"source lost: {message}")
        self.view3d.clear_pose()
        self.statusBar().showMessage(text)

    def reconnect_source(self) -> None:
        """Reopen the lost source in the same session (on the live thread)."""
        if self.worker is None:
            return
        self.source_label.setText(f"Reconnecting… ({self.source_lost or 'source'})")
        self.worker.call_soon(lambda s: s.reconnect(), self._source_back)

    def switch_source_live(self, spec: str, source=None) -> None:
        """Continue the current session (weights, the take being recorded) with another source:
        "demo", a camera index, a video path, or a ready FrameSource (tests). A running
        adaptation is cancelled by the pipeline (its frames were the old source's)."""
        if self.worker is None:
            self.start_source(spec, source)
            return
        if source is None and not self._video_file_ok(spec):
            return
        lens = self.demo_lens
        self.source_label.setText(f"Switching to {live.describe_spec(spec)}…")

        def switch(session):
            session.config.demo_lens = lens
            return session.switch_source(spec, source)

        self.worker.call_soon(switch, self._source_back)

    def _source_back(self, result) -> None:
        if isinstance(result, Exception):
            self._set_source_lost(str(result))
            return
        self._set_source_lost(None)
        self._session_opened(self.worker.session if self.worker else None, result)
        self._select_combo(result.spec)
        self.lens_combo.setEnabled(result.spec == "demo")
        self.statusBar().showMessage(f"source back: {result.title}", 6000)

    def _video_file_ok(self, spec: str) -> bool:
        """False (after a dialog naming the file) when `spec` is a video path that is missing,
        empty, a folder or not a video OpenCV can read; True for anything else."""
        if spec == "demo" or spec.lstrip("-").isdigit() or spec.startswith("__"):
            return True
        from distpose_app.live.capture import VideoFileSource

        probe = VideoFileSource(spec)
        try:
            probe.open()  # reads one frame: milliseconds
        except DistposeError as exc:
            self.warn("Cannot open the video", f"{exc}")
            return False
        finally:
            probe.close()
        return True

    def _on_finished(self, reason: str) -> None:
        if reason != "error" and self.options.frames is None:
            self.statusBar().showMessage(f"source ended: {reason}", 8000)
        session = getattr(self.worker, "session", None)
        if self.is_recording and session is not None:
            # The live loop is over, so queued commands would never run: stop the take here
            # (the loop's thread is done with the session).
            self.is_recording = False
            self.act_record.setChecked(False)
            self.act_record.setText("&Record")
            self.rec_label.setStyleSheet("")
            try:
                stopped = session.stop_recording()
            except Exception as exc:  # noqa: BLE001 - shown, never lost silently
                stopped = exc
            self._recording_stopped(stopped)
        if self.adapt_task is None and self.adapt_ticket is not None:
            self._adapt_closed(False, "the source ended while adapting: result discarded")
        if self.options.frames is not None:
            # Let the last queued update be drawn, then take the screenshot and quit.
            QtCore.QTimer.singleShot(300, self._finish_scripted_run)

    def _finish_scripted_run(self) -> None:
        if self.options.screenshot:
            self.save_screenshot(self.options.screenshot)
        self.close()
        QtWidgets.QApplication.instance().exit(self.exit_code)

    def save_screenshot(self, path: str) -> Path:
        """The whole window (the OpenGL view included) as a PNG."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        QtWidgets.QApplication.processEvents()
        if not self.grab().save(str(path)):
            raise DistposeError(f"could not write the screenshot {path}")
        return path

    def toggle_pause(self, paused: bool) -> None:
        if self.worker is not None:
            self.worker.set_paused(bool(paused))
        self.statusBar().showMessage("paused" if paused else "running", 2000)

    # ------------------------------------------------------------------ demo lens / lens menu
    def set_demo_lens(self, name: str) -> None:
        self.demo_lens = name
        self.demo_lens_actions[name].setChecked(True)
        self.lens_combo.setCurrentIndex(DEMO_LENSES.index(name))
        self.settings.setValue("demo/lens", name)
        if self.session_info is not None and self.session_info.spec == "demo":
            self.start_source("demo")

    def set_lens_unknown(self) -> None:
        self._apply_known_lens(None)

    def type_lens_dialog(self) -> None:
        dialog = LensDialog(self, self.settings.value("lens/typed", ""))
        if dialog.exec_() == QtWidgets.QDialog.Accepted:
            self.settings.setValue("lens/typed", dialog.edit.text())
            _, lens = dialog.result_lens(1, 1)
            self._apply_known_lens((dialog.hfov.value(), lens, f"known: {lens.spec()}"))
        else:
            self._check_lens_action()

    def calibration_dialog(self) -> None:
        folder = self.settings.value("paths/calibration", str(Path.home()))
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "OpenCV calibration", folder, "OpenCV FileStorage (*.yml *.yaml *.json *.xml)"
        )
        if not path:
            self._check_lens_action()
            return
        self.settings.setValue("paths/calibration", str(Path(path).parent))
        try:
            self.load_calibration(path)
        except DistposeError as exc:
            self.warn("Calibration", str(exc))
            self._check_lens_action()

    def load_calibration(self, path: str) -> None:
        from distpose_app.lens.calibration import load_opencv_calibration

        intrinsics, lens = load_opencv_calibration(path)
        self._apply_known_lens((intrinsics, lens, f"calibrated: {Path(path).name}"))

    def _check_lens_action(self) -> None:
        if self.known_lens is None:
            self.act_lens_unknown.setChecked(True)
        elif isinstance(self.known_lens[0], float):
            self.act_lens_type.setChecked(True)
        else:
            self.act_lens_calib.setChecked(True)

    def _apply_known_lens(self, known) -> None:
        """known: None (unknown lens), (hfov_deg, Lens, text) or (Intrinsics, Lens, text)."""
        self.known_lens = known
        self._check_lens_action()
        if self.worker is not None:
            self.worker.call_soon(lambda s: s.set_known_lens(known), self._lens_applied)
        self._update_lens_label()

    def _lens_applied(self, result) -> None:
        if isinstance(result, Exception):  # e.g. a calibration for another image size
            self._apply_known_lens(None)
            self.warn("Lens", f"{result}; the lens is back to unknown")

    def _update_lens_label(self) -> None:
        lens = "unknown" if self.known_lens is None else self.known_lens[2]
        state = "adapted" if self.adapted else "unadapted"
        self.lens_label.setText(f"lens: {lens}, {state}")

    # ------------------------------------------------------------------ adaptation
    def start_adapt(self) -> None:
        """Begin an adaptation through the pipeline's ticket (on the live thread): a second
        press while one runs is refused with a message, never a second adaptation."""
        if self.worker is None:
            return
        if self.adapt_ticket is not None or self.adapt_task is not None:
            self._adapt_message("an adaptation is already running: wait for it or cancel it (Esc)")
            return
        self.adapt_ticket = PENDING
        worker = self.worker
        worker.call_soon(lambda s: s.begin_adaptation(), lambda t: self._adapt_snapshot(t, worker))

    def _adapt_snapshot(self, ticket, worker: LiveWorker | None = None) -> None:
        """The live thread's answer to begin_adaptation: an AdaptTicket (start the background
        job) or an exception (say why)."""
        from distpose_app.adapt.iso import (
            MIN_ADAPT_FRAMES,
            adapt_model,
            lower_background_priority,
            release_freed_memory,
        )

        self.adapt_ticket = None
        if isinstance(ticket, Exception):
            self._adapt_refused(str(ticket))
            return
        if worker is not None and worker is not self.worker:  # the source changed meanwhile
            ticket.cancel("the source changed")
            return
        model, keypoints = ticket.model, ticket.keypoints_2d
        needed = max(MIN_ADAPT_FRAMES, getattr(model, "receptive_field", 0))
        if len(keypoints) < needed:
            ticket.cancel("too few frames")  # frees the pipeline for the next press
            self._adapt_refused(
                f"Adapt needs at least {needed} recent frames with a person in view; the "
                f"buffer holds {len(keypoints)}. Keep at least your head and shoulders in "
                "view for a few seconds and press Adapt again."
            )
            return
        adapt = self.adapt_fn or adapt_model
        config = self.adapt_config

        def job(progress, cancel):
            def should_cancel():
                return cancel() or ticket.should_cancel()

            lower_background_priority()  # keep the live view's frame rate (docs/bench.md)
            try:
                return adapt(
                    model, keypoints, config, progress=progress, should_cancel=should_cancel
                )
            finally:
                release_freed_memory()  # its heap arena would keep it (docs/reliability.md)

        task = TaskThread(job, self)
        task.progress.connect(self._adapt_progress)
        task.succeeded.connect(lambda result: self._adapt_done(ticket, worker, result))
        task.failed.connect(lambda message: self._adapt_failed(ticket, worker, message))
        task.finished.connect(self._adapt_task_ended)
        self.adapt_ticket, self.adapt_task = ticket, task
        self.adaptations_started += 1
        self.adapt_panel.setVisible(True)
        self.adapt_progress.setVisible(True)
        self.adapt_progress.setRange(0, 0)
        self.cancel_button.setVisible(True)
        self.act_cancel.setEnabled(True)
        self.adapt_label.setText(f"Adapting on {len(keypoints)} frames…")
        task.start()

    def _adapt_progress(self, step: int, total: int) -> None:
        self.adapt_progress.setRange(0, max(total, 1))
        self.adapt_progress.setValue(step)

    def cancel_adapt(self) -> None:
        """Stop the running adaptation at its next step; the previous weights stay."""
        ticket = self.adapt_ticket
        if ticket is not None and ticket is not PENDING:
            ticket.cancel()  # thread-safe: finish_adaptation will refuse its result
        if self.adapt_task is not None:
            self.adapt_task.cancel()
            self.adapt_label.setText("Cancelling…")

    def _adapt_task_ended(self) -> None:
        self.adapt_task = None
        self.act_cancel.setEnabled(False)
        self.adapt_progress.setVisible(False)
        self.cancel_button.setVisible(False)

    def _adapt_message(self, message: str) -> None:
        """Show an adaptation outcome in the panel and the status bar."""
        self.last_adapt_message = message
        self.adapt_panel.setVisible(True)
        self.adapt_label.setText(message)
        self.statusBar().showMessage(message, 10000)

    def _adapt_refused(self, message: str) -> None:
        self.act_adapt.setEnabled(True)
        self.adapt_progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self._adapt_message(message)

    def _adapt_failed(self, ticket, worker, message: str) -> None:
        """The adaptation raised: release the ticket on the live thread, keep the weights."""
        self._adapt_done(ticket, worker, None, failure=message)

    def _adapt_done(self, ticket, worker, result, failure: str | None = None) -> None:
        """The background job ended: let the pipeline decide on the live thread whether the
        result still applies (not cancelled, same stream, accepted by the guard)."""
        self.last_adapt_result = result
        if worker is None or worker is not self.worker or worker.ended:
            self._adapt_closed(False, "the source changed while adapting: result discarded")
            return
        worker.call_soon(
            lambda s: s.finish_adaptation(ticket, result),
            lambda answer: self._adapt_finished(result, answer, failure),
        )

    def _adapt_finished(self, result, answer, failure: str | None) -> None:
        if isinstance(answer, Exception):
            self._adapt_closed(False, f"could not apply the adapted weights: {answer}")
            return
        applied, message = answer
        if failure is not None:
            message = f"the adaptation failed: {failure}; previous weights kept"
        if not applied:
            self._adapt_closed(False, message[:1].upper() + message[1:] + ".")
            return
        b, a = result.before, result.after
        text = (
            f"Adapted in {result.seconds:.1f} s ({result.steps} steps): bone symmetry "
            f"{b.get('symmetry_mm', float('nan')):.1f} → {a.get('symmetry_mm', float('nan')):.1f}"
            f" mm, consistency {b.get('consistency_pct', float('nan')):.1f} → "
            f"{a.get('consistency_pct', float('nan')):.1f} %.  Revert: Ctrl+Z"
        )
        self._adapt_closed(True, text)
        self.adapted = True
        self.act_revert.setEnabled(True)
        self._update_lens_label()
        if self.session_info is not None:
            try:
                path = live.save_adaptation(self.session_info.camera_key, result)
                self.live_adaptation_path = path
                self.statusBar().showMessage(f"adaptation saved to {path}", 6000)
                self.act_saved.setEnabled(True)
            except OSError as exc:
                self.statusBar().showMessage(f"could not save the adaptation: {exc}", 8000)

    def _adapt_closed(self, applied: bool, message: str) -> None:
        self.adapt_ticket = None
        self.act_adapt.setEnabled(True)
        self.adapt_progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self._adapt_message(message)

    def revert_adapt(self) -> None:
        if self.worker is None:
            return
        self.worker.call_soon(lambda s: s.revert(), self._reverted)

    def _reverted(self, result) -> None:
        if isinstance(result, Exception):
            self.statusBar().showMessage(f"revert failed: {result}", 8000)
            return
        self.live_adaptation_path = None
        self.adapted = False
        self.act_revert.setEnabled(False)
        self.adapt_label.setText("Reverted to the unadapted model.")
        self._update_lens_label()

    def use_saved_adaptation(self) -> None:
        """Apply the adaptation saved for this camera (checked on the live thread against the
        live model); one that no longer loads is ignored with a message."""
        if self.worker is None or self.session_info is None:
            return

        def applied(result):
            if isinstance(result, Exception):  # "saved adaptation <file> ignored: <why>"
                self.statusBar().showMessage(str(result), 10000)
                self.last_warning = str(result)
                return
            self.live_adaptation_path = live.saved_adaptation_path(self.session_info.camera_key)
            self.adapted = True
            self.act_revert.setEnabled(True)
            self._update_lens_label()
            self.adapt_panel.setVisible(True)
            self.adapt_label.setText(f"Using the adaptation saved for {result}.")

        self.worker.call_soon(lambda s: s.use_saved_adaptation(), applied)

    def _set_adapt_idle(self) -> None:
        self.adapt_panel.setVisible(False)
        self.act_revert.setEnabled(False)
        self._update_lens_label()

    # ------------------------------------------------------------------ recording / export
    def toggle_record(self, checked: bool | None = None) -> None:
        start = not self.is_recording if checked is None else bool(checked)
        if self.worker is None or start == self.is_recording:
            self.act_record.setChecked(self.is_recording)
            return
        self.is_recording = start
        self.act_record.setChecked(start)
        self.act_record.setText("Stop &recording" if start else "&Record")
        if start:
            self.rec_label.setToolTip("")
            self.worker.call_soon(lambda s: s.start_recording(), None)
            self.rec_label.setText("● REC")
            self.rec_label.setStyleSheet("color: #e04040; font-weight: bold")
        else:
            self.worker.call_soon(lambda s: s.stop_recording(), self._recording_stopped)
            self.rec_label.setStyleSheet("")

    def _recording_stopped(self, stopped) -> None:
        """stopped: (Recording, recovery file or None, Recorder) from session.stop_recording;
        the recovery file stays until the take is exported."""
        if isinstance(stopped, Exception):
            self.statusBar().showMessage(f"recording failed: {stopped}", 8000)
            self.rec_label.setText("")
            return
        recording, path, recorder = stopped
        self.recording = recording
        self.recording_recovery = (recorder, path) if path is not None else None
        if recorder.recovery_error:
            self.rec_label.setToolTip(f"crash recovery off: {recorder.recovery_error}")
        n = 0 if recording is None else recording.num_frames
        self.rec_label.setText(f"recorded {n} frames")
        self._update_export_actions()
        self.statusBar().showMessage(f"recording stopped: {n} frames; Export with Ctrl+E", 6000)

    def _update_export_actions(self) -> None:
        ok = self.recording is not None and self.recording.num_frames > 0
        self.act_export_bvh.setEnabled(ok)
        self.act_export_csv.setEnabled(ok)

    def export_dialog(self, fmt: str) -> None:
        if self.recording is None:
            return
        folder = self.settings.value("paths/export", str(Path.home()))
        name = time.strftime("distpose-%Y%m%d-%H%M%S") + f".{fmt}"
        filt = "BVH motion (*.bvh)" if fmt == "bvh" else "CSV table (*.csv)"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, f"Export {fmt.upper()}", str(Path(folder) / name), filt
        )
        if path:
            if not path.lower().endswith("." + fmt):
                path += "." + fmt
            self.settings.setValue("paths/export", str(Path(path).parent))
            self.export(**{f"{fmt}_path": path}, confirmed=[path])

    def export(
        self, bvh_path: str | None = None, csv_path: str | None = None, confirmed=()
    ) -> TaskThread | None:
        """Export the last recording in the background, with a progress dialog. Targets that
        are inputs or collide are refused in a dialog; existing files (other than `confirmed`,
        which the save dialog already asked about) are replaced only after `confirm_replace`.
        Returns the task, or None when nothing was started."""
        from distpose_app.export import existing_targets, export_recording

        recording, take = self.recording, self.recording_recovery
        inputs = [self.options.weights, take[1] if take else None,
                  (recording.metadata or {}).get("recovered_from")]  # fmt: skip
        spec = self.session_info.spec if self.session_info is not None else ""
        if spec and Path(spec).is_file():
            inputs.append(spec)
        try:
            existing = existing_targets(bvh_path, csv_path, inputs, confirmed)
        except DistposeError as exc:  # a target that is an input, a folder, or missing
            self._export_failed(str(exc), None)
            return None
        if existing and not self.confirm_replace(existing):
            return None
        dialog = QtWidgets.QProgressDialog("Exporting…", None, 0, 100, self)
        dialog.setWindowTitle("Export")
        dialog.setMinimumDuration(400)  # short exports finish before it would appear
        dialog.setValue(0)

        def job(progress, cancel):
            return export_recording(
                recording,
                bvh_path=bvh_path,
                csv_path=csv_path,
                progress=lambda fraction, message: progress(int(100 * fraction), 100),
                inputs=inputs,
                overwrite=True,  # asked above
            )

        task = TaskThread(job, self)
        task.progress.connect(lambda s, t: dialog.setValue(s))
        task.succeeded.connect(lambda r: self._exported(r, dialog, take))
        task.failed.connect(lambda msg: self._export_failed(msg, dialog))
        self.export_task = task
        task.start()
        return task

    def _exported(self, result: dict, dialog, take=None) -> None:
        dialog.reset()
        self._discard_take_recovery(take)
        files = [str(result[k]) for k in ("bvh", "csv") if result.get(k)]
        self.last_export = result
        self.exports_done += 1
        self.export_task = None
        self.statusBar().showMessage(f"exported {result['frames']} frames to {', '.join(files)}")

    def _export_failed(self, message: str, dialog) -> None:
        if dialog is not None:
            dialog.reset()
        self.last_export = None
        self.exports_done += 1
        self.export_task = None
        self.warn("Export failed", f"export failed: {message}")

    def _discard_take_recovery(self, take) -> None:
        """The take is saved: delete its recovery file. take: (Recorder | None, path)."""
        if take is None:
            return
        recorder, path = take
        if recorder is not None and recorder.recovery_path == path:
            recorder.discard_recovery()
        else:  # a recovered take, or the recorder has moved on to a new take
            recovery.discard(path)
        if self.recording_recovery == take:
            self.recording_recovery = None

    # ------------------------------------------------------------------ crash recovery
    def offer_recovery(self, folder=None) -> RecoveryDialog | None:
        """Offer the takes a crash (or an unsaved stop) left in the recovery folder, in a
        non-modal dialog: Recover (load, export, discard once saved), Discard, or Later."""
        takes = recovery.find_recoverable(folder)
        if not takes:
            return None
        if self.recovery_dialog is not None:
            self.recovery_dialog.close()
        dialog = RecoveryDialog(takes, self)
        dialog.answered.connect(self.answer_recovery)
        self.recovery_dialog = dialog
        dialog.show()
        return dialog

    def answer_recovery(self, info: recovery.RecoveryInfo, answer: str) -> None:
        """answer: "recover" (load the take and open the export dialog; its file is deleted
        once exported), "discard" (delete it) or "later" (leave it for the next start)."""
        if answer == "discard":
            recovery.discard(info.path)
            self.statusBar().showMessage(f"discarded the take from {info.started}", 6000)
        elif answer == "recover":
            try:
                recording = recovery.load(info.path)
            except DistposeError as exc:
                self.warn("Recover", f"cannot recover {info.path}: {exc}")
                return
            self.recording = recording
            self.recording_recovery = (None, info.path)
            self.rec_label.setText(f"recovered {recording.num_frames} frames")
            self._update_export_actions()
            self.statusBar().showMessage(
                f"recovered {recording.num_frames} frames of {info.source}; export to keep them"
            )
            self.export_dialog("bvh")

    # ------------------------------------------------------------------ misc
    def confirm_replace(self, paths) -> bool:
        """Ask before an export replaces existing files (a scripted --frames run: never)."""
        if self.options.frames is not None:
            self.statusBar().showMessage(f"not replacing {', '.join(map(str, paths))}")
            return False
        names = "\n".join(str(p) for p in paths)
        answer = QtWidgets.QMessageBox.question(
            self, "Replace files?", f"These files exist already:\n{names}\n\nReplace them?",
            QtWidgets.QMessageBox.Yes | QtWidgets.QMessageBox.No, QtWidgets.QMessageBox.No,
        )  # fmt: skip
        return answer == QtWidgets.QMessageBox.Yes

    def warn(self, title: str, message: str) -> None:
        """Show a problem in a window-modal box that does not block the event loop (the live
        view keeps running); in a scripted run (--frames), only in the status bar."""
        self.last_warning = message
        self.statusBar().showMessage(message)
        if self.options.frames is not None:
            return
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Warning, title, message,
                                    QtWidgets.QMessageBox.Ok, self)  # fmt: skip
        box.setAttribute(QtCore.Qt.WA_DeleteOnClose)
        box.open()

    def show_shortcuts(self) -> None:
        shortcuts_dialog(self, self.actions()).exec_()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self._save_settings()
        for task in self.findChildren(TaskThread):
            if task is self.adapt_task:
                task.cancel()
            task.wait()  # an export is never cut off half-way; Adapt stops at its next step
        worker, thread = self.worker, self.thread
        self._stop_worker()
        if thread is not None:
            thread.wait(5000)
        for _, t in list(self._retiring):
            t.wait(5000)
        del worker
        super().closeEvent(event)
