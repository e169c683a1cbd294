"""The distpose main window: source picker, live video with the 2D skeleton, live 3D skeleton,
Adapt / Revert, lens menu, Record / Export, per-stage timings and messages in the status bar.

The window holds no workflow state of its own: `live.controller.AppController` (no Qt) owns the
states (source running / ended / failed, adapting, recording, exporting) and their transitions.
The window forwards the user's intents to it, shows a refusal's reason when it says no, and
renders its state (`render`) and frames whenever they change (through `bridge.ControllerBridge`).
Dialogs (files, lens, quitting while recording, recovered takes) are the window's own.
Every action has a keyboard shortcut (Help > Keyboard shortcuts lists them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PyQt5 import QtCore, QtWidgets

from distpose_app.core.errors import DistposeError
from distpose_app.gui.actions import DEMO_LENSES, build_actions, build_menus, build_toolbar
from distpose_app.gui.bridge import ControllerBridge
from distpose_app.gui.dialogs import (
    LensDialog,
    RecoveryDialog,
    about_dialog,
    quit_prompt,
    shortcuts_dialog,
)
from distpose_app.gui.panels import AdaptPanel, SourcePanel
from distpose_app.gui.settings import make_settings, setting_bool
from distpose_app.gui.skeleton_view import SkeletonView
from distpose_app.gui.status import StatusArea
from distpose_app.gui.video_view import VideoView
from distpose_app.gui.workers import TaskThread
from distpose_app.live import app_data, recovery
from distpose_app.live.controller import AppController, ControllerOptions


@dataclass
class AppOptions:
    """What the command line asked for (see app.py)."""

    source: str | None = None  # "demo", a camera index, a video path; None: last used / demo
    lens: str | None = None  # demo lens
    device: str = "auto"
    weights: str | None = None
    frames: int | None = None  # stop after this many frames (scripted runs)
    screenshot: str | None = None  # save the whole window here after --frames, then quit
    pace: bool = True  # files and the demo in real time; False: every frame, as fast as it goes
    demo_size: tuple[int, int] = (1280, 720)  # the demo camera's image, pixels


class MainWindow(QtWidgets.QMainWindow):
    """See the module docstring. `exit_code` is set when a scripted run ends."""

    def __init__(self, options: AppOptions | None = None, settings: QtCore.QSettings | None = None):
        super().__init__()
        self.options = options or AppOptions()
        self.settings = settings or make_settings()
        self.setWindowTitle("distpose")
        self.exit_code = 0
        self.frames_drawn = 0
        self.last_warning = ""  # the last problem shown in a dialog
        self.last_refusal = ""  # the reason the controller gave for the last refused intent
        self.recovery_dialog: RecoveryDialog | None = None
        self._cameras: list = []
        self._recorded = 0  # rows in the take being recorded (from the frames)
        self._quit_after_export = False
        self._export_progress: QtWidgets.QProgressDialog | None = None
        lens = self.options.lens or self.settings.value("demo/lens", "moderate")
        every = (not self.options.pace) or setting_bool(self.settings, "source/every_frame", False)
        self.controller = AppController(
            ControllerOptions(
                device=self.options.device, weights=self.options.weights,
                demo_size=self.options.demo_size, demo_lens=lens, every_frame=every,
                loop=setting_bool(self.settings, "source/loop", False),
                root_lock=setting_bool(self.settings, "export/root_lock", False),
                max_frames=self.options.frames,
            )
        )  # fmt: skip
        self.bridge = ControllerBridge(self.controller, self)
        self.bridge.state_changed.connect(self.render)
        self.bridge.frame_ready.connect(self._draw_frame)
        self.bridge.event.connect(self._on_event)

        self.video = VideoView()
        self.view3d = SkeletonView()
        splitter = QtWidgets.QSplitter()
        splitter.addWidget(self.video)
        splitter.addWidget(self.view3d)
        splitter.setSizes([640, 640])
        build_actions(self)
        build_menus(self)
        build_toolbar(self)
        self.setCentralWidget(self._central(splitter))
        self.status = StatusArea(self.statusBar())
        self.setMinimumSize(760, 460)
        self._restore_geometry()
        self._fill_source_combo()
        self.render()
        QtCore.QTimer.singleShot(0, self._start_initial_source)

    def _central(self, splitter: QtWidgets.QWidget) -> QtWidgets.QWidget:
        box = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(box)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter, 1)
        self.adapt_panel = AdaptPanel(self.cancel_adapt)
        layout.addWidget(self.adapt_panel)
        self.source_panel = SourcePanel(self)
        layout.addWidget(self.source_panel)
        return box

    # ------------------------------------------------------------------ rendering
    @property
    def state(self):
        """The AppState the window shows now (the controller's, as of the last render: a change
        is on screen once this says so)."""
        return self._shown

    def render(self, _state=None) -> None:
        """Show the controller's current state (called on every change; cheap)."""
        s = self._shown = self.controller.state
        if s.title:
            model = f" — model {s.model_name} on {s.device}" if s.model_name else ""
            self.setWindowTitle(f"distpose — {s.title}{model}")
        self._render_video(s)
        self.source_panel.render(s)
        self.adapt_panel.render(s)
        self._render_actions(s)
        self.status.show_message(s.messages)
        if s.source != "running":
            self.status.stage.setText(
                {"none": "no source", "opening": f"opening {app_data.describe_spec(s.spec)}…",
                 "ended": "end of file: no frames (stats cleared)",
                 "failed": "source lost: no frames"}.get(s.source, "")
            )  # fmt: skip
            self.status.mpjpe.setText("")
        if s.recording:
            self.status.set_recording(f"● REC {self._recorded} frames", True)
        elif s.take_frames:
            self.status.set_recording(f"take: {s.take_frames} frames", False)
        else:
            self.status.set_recording("", False)
        state = "adapted" if s.adapted else "unadapted"
        self.status.lens.setText(f"lens: {s.known_lens or 'unknown'}, {state}")
        self._render_export(s)

    def _render_video(self, s) -> None:
        if s.source == "opening":
            self.video.show_message(f"opening {app_data.describe_spec(s.spec)}…")
        elif s.source == "failed":
            self.video.show_message(f"source lost: {s.source_error}")
            self.view3d.clear_pose()
        elif s.source == "ended":
            self.video.set_overlay("End of the file — Replay: Ctrl+Home · Loop: Ctrl+Shift+Home")
            self.view3d.clear_pose()
        elif s.paused:
            self.video.set_overlay("Paused — Space resumes")
        else:
            self.video.set_overlay("")

    def _render_actions(self, s) -> None:
        idle_adapt = s.adapt == "idle"
        self.act_pause.setChecked(s.paused)
        self.act_pause.setEnabled(s.source == "running")
        self.act_replay.setEnabled(s.source_kind in ("file", "demo") and s.source != "none")
        self.act_loop.setChecked(s.loop)
        self.act_every_frame.setChecked(s.every_frame)
        self.act_record.setChecked(s.recording)
        self.act_record.setText("Stop &recording" if s.recording else "&Record")
        self.act_adapt.setEnabled(idle_adapt)
        self.act_cancel.setEnabled(s.adapt in ("starting", "adapting"))
        self.act_revert.setEnabled(s.adapted or not idle_adapt)
        self.act_saved.setEnabled(s.saved_adaptation)
        exportable = s.take_frames > 0 and not s.exporting
        self.act_export_bvh.setEnabled(exportable)
        self.act_export_csv.setEnabled(exportable)
        self.act_root_lock.setChecked(s.root_lock)
        lens = s.known_lens
        action = (
            self.act_lens_unknown
            if not lens
            else self.act_lens_calib
            if lens.startswith("calibrated")
            else self.act_lens_type
        )
        action.setChecked(True)  # fmt: skip
        if s.demo_lens in DEMO_LENSES:
            self.demo_lens_actions[s.demo_lens].setChecked(True)
            self.lens_combo.setCurrentIndex(DEMO_LENSES.index(s.demo_lens))
        self.lens_combo.setEnabled(s.spec == "demo")
        if s.spec and s.source != "opening":
            self._select_combo(s.spec)

    def _render_export(self, s) -> None:
        dialog = self._export_progress
        if dialog is None:
            return
        if s.exporting:
            dialog.setValue(int(100 * s.export_progress))
        else:
            dialog.reset()
            self._export_progress = None

    def _draw_frame(self) -> None:
        frame = self.bridge.take_frame()
        if frame is None:
            return
        t0 = time.perf_counter()
        self.video.set_frame(frame.image, frame.keypoints_px, frame.confidence,
                             blank_size=frame.image_size)  # fmt: skip
        # The pose trails the input by the lifter's lookahead: dim by its own frame's seen flags.
        self.view3d.set_pose(frame.pose_3d, frame.pose_confidence, frame.pose_seen)
        self.frames_drawn += 1
        self._recorded = frame.recorded_frames
        s = self.controller.state
        if frame.stats is not None:
            frame.stats.add("draw", time.perf_counter() - t0)  # thread-safe
        if s.source != "running":
            return  # a frame that was on its way when the source ended: the state rules
        text = frame.stats.text() if frame.stats is not None else ""
        if frame.buffer_frames:
            text += f"  |  Adapt buffer {frame.buffer_frames} frames"
        self.status.stage.setText(text)
        if frame.mpjpe_mm is not None and np.isfinite(frame.mpjpe_mm):
            # The live feed's moving average (live.demo.ErrorReadout), steadier than one frame.
            self.status.mpjpe.setText(frame.error_readout or f"MPJPE {frame.mpjpe_mm:.0f} mm")
        else:
            self.status.mpjpe.setText("")
        if s.recording:
            self.status.set_recording(f"● REC {frame.recorded_frames} frames", True)
        self._render_video(s)

    def _on_event(self, event) -> None:
        if event.kind == "warning":
            self.warn("distpose", str(event.data))
        elif event.kind == "export_failed":
            self._quit_after_export = False
            self.warn("Export failed", str(event.data))
        elif event.kind == "exported" and self._quit_after_export:
            self.close()
        elif event.kind == "limit" and self.options.frames is not None:
            if event.data == "failed":
                self.exit_code = 2
            # Let the last queued frame be drawn, then take the screenshot and quit.
            QtCore.QTimer.singleShot(300, self._finish_scripted_run)

    def intent(self, reply):
        """Show why an intent was refused (as a short-lived message) and re-render, so a
        checkable action the controller said no to springs back."""
        if not reply.ok and reply.reason:
            self.last_refusal = reply.reason
            self.controller.show(reply.reason, "warning", key="refusal", seconds=8.0)
        self.render()
        return reply

    # ------------------------------------------------------------------ settings
    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 720)

    def _save_settings(self) -> None:
        s = self.controller.state
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("demo/lens", s.demo_lens)
        self.settings.setValue("source/loop", s.loop)
        self.settings.setValue("source/every_frame", s.every_frame)
        self.settings.setValue("export/root_lock", s.root_lock)
        spec = s.spec
        if spec and (spec == "demo" or spec.isdigit() or Path(spec).is_file()):
            self.settings.setValue("source/last", spec)
        self.settings.sync()

    # ------------------------------------------------------------------ sources
    def _fill_source_combo(self) -> None:
        combo = self.source_combo
        combo.clear()
        combo.addItem("Demo (virtual camera)", "demo")
        for cam in self._cameras:
            combo.addItem(getattr(cam, "label", None) or f"{cam.index}: {cam.name}", str(cam.index))
        combo.addItem("Open video file…", "__open__")
        combo.addItem("Refresh camera list", "__refresh__")

    def refresh_cameras(self) -> None:
        """List cameras on a background thread (opening each can take a second)."""
        from distpose_app.live.capture import list_cameras

        task = TaskThread(lambda progress, cancel: list_cameras(), self)
        task.succeeded.connect(self._cameras_listed)
        task.failed.connect(lambda msg: self.controller.show(f"cameras: {msg}", "warning"))
        self._camera_task = task
        task.start()
        self.controller.show("looking for cameras…", seconds=3.0)

    def _cameras_listed(self, cameras) -> None:
        self._cameras = list(cameras)
        self._fill_source_combo()
        self._select_combo(self.controller.state.spec)
        self.controller.show(f"{len(self._cameras)} camera(s) found", seconds=4.0)

    def _select_combo(self, spec: str | None) -> None:
        i = self.source_combo.findData(spec) if spec else -1
        if i < 0 and spec and spec != "demo":
            self.source_combo.insertItem(self.source_combo.count() - 2, Path(spec).name, spec)
            i = self.source_combo.findData(spec)
        if i >= 0 and i != self.source_combo.currentIndex():
            self.source_combo.setCurrentIndex(i)

    def _source_chosen(self, index: int) -> None:
        spec = self.source_combo.itemData(index)
        if spec == "__open__":
            self.open_video_dialog()
        elif spec == "__refresh__":
            self.refresh_cameras()
            self._select_combo(self.controller.state.spec)
        elif spec:
            self.choose_source(spec)

    def open_video_dialog(self) -> None:
        folder = self.settings.value("paths/video", str(Path.home()))
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open video file", folder, "Videos (*.mp4 *.avi *.mov *.mkv *.webm);;All (*)"
        )
        if path:
            self.settings.setValue("paths/video", str(Path(path).parent))
            self.choose_source(path)
        else:
            self._select_combo(self.controller.state.spec)

    def _start_initial_source(self) -> None:
        spec = self.options.source or self.settings.value("source/last", "demo") or "demo"
        if self.options.source is None and spec != "demo" and not spec.isdigit():
            if not Path(spec).is_file():
                spec = "demo"
        if not self.choose_source(spec) and spec != "demo":
            self.choose_source("demo")  # the file was refused with a dialog: run something
        if self.options.frames is None:
            self.refresh_cameras()
            self.offer_recovery()

    def choose_source(self, spec: str, source=None) -> bool:
        """Continue with `spec` ("demo", a camera index, a video path; `source`: a ready
        FrameSource, for tests). A video file that cannot be read is refused with a dialog
        naming it, and the current source runs on. False: refused."""
        reply = self.controller.open_source(spec, source)
        if not reply.ok:
            self.warn("Cannot open the video", reply.reason)
            self._select_combo(self.controller.state.spec)
        self.render()
        return reply.ok

    # Old name: tests and scripts call it.
    start_source = choose_source

    def reconnect_source(self) -> None:
        self.intent(self.controller.reconnect())

    def replay(self) -> None:
        self.intent(self.controller.replay())

    def toggle_loop(self, checked: bool | None = None) -> None:
        on = not self.controller.state.loop if checked is None else bool(checked)
        self.intent(self.controller.set_loop(on))

    def toggle_every_frame(self, checked: bool | None = None) -> None:
        on = not self.controller.state.every_frame if checked is None else bool(checked)
        self.intent(self.controller.set_every_frame(on))

    def toggle_pause(self, checked: bool | None = None) -> None:
        on = not self.controller.state.paused if checked is None else bool(checked)
        self.intent(self.controller.set_paused(on))

    def set_demo_lens(self, name: str) -> None:
        self.settings.setValue("demo/lens", name)
        self.intent(self.controller.set_demo_lens(name))

    # ------------------------------------------------------------------ lens
    def set_lens_unknown(self) -> None:
        self.intent(self.controller.set_known_lens(None))

    def type_lens_dialog(self) -> None:
        hfov = round(self.controller.state.hfov_deg, 1)
        dialog = LensDialog(self, self.settings.value("lens/typed", ""), hfov_deg=hfov)
        if dialog.exec_() == QtWidgets.QDialog.Accepted:
            self.settings.setValue("lens/typed", dialog.edit.text())
            _, lens = dialog.result_lens(1, 1)
            self.intent(self.controller.set_known_lens(
                (dialog.hfov.value(), lens, f"known: {lens.spec()}")))  # fmt: skip
        else:
            self.render()

    def calibration_dialog(self) -> None:
        folder = self.settings.value("paths/calibration", str(Path.home()))
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "OpenCV calibration", folder, "OpenCV FileStorage (*.yml *.yaml *.json *.xml)"
        )
        if not path:
            self.render()
            return
        self.settings.setValue("paths/calibration", str(Path(path).parent))
        self.load_calibration(path)

    def load_calibration(self, path: str) -> None:
        reply = self.controller.load_calibration(path)
        if not reply.ok:
            self.warn("Calibration", reply.reason)
        self.render()

    # ------------------------------------------------------------------ adaptation
    def start_adapt(self) -> None:
        self.intent(self.controller.start_adapt())

    def cancel_adapt(self) -> None:
        self.intent(self.controller.cancel_adapt())

    def revert_adapt(self) -> None:
        self.intent(self.controller.revert())

    def use_saved_adaptation(self) -> None:
        self.intent(self.controller.use_saved_adaptation())

    # ------------------------------------------------------------------ recording / export
    def toggle_record(self, checked: bool | None = None) -> None:
        start = not self.controller.state.recording if checked is None else bool(checked)
        c = self.controller
        self.intent(c.start_recording() if start else c.stop_recording())

    def toggle_root_lock(self, checked: bool | None = None) -> None:
        on = not self.controller.state.root_lock if checked is None else bool(checked)
        self.intent(self.controller.set_root_lock(on))

    def export_dialog(self, fmt: str) -> bool:
        """Ask where to save the take (BVH or CSV) and export it. False: nothing started."""
        if self.controller.takes.take is None:
            return False
        folder = self.settings.value("paths/export", str(Path.home()))
        name = time.strftime("distpose-%Y%m%d-%H%M%S") + f".{fmt}"
        filt = "BVH motion (*.bvh)" if fmt == "bvh" else "CSV table (*.csv)"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, f"Export {fmt.upper()}", str(Path(folder) / name), filt
        )
        if not path:
            return False
        if not path.lower().endswith("." + fmt):
            path += "." + fmt
        self.settings.setValue("paths/export", str(Path(path).parent))
        return self.export(**{f"{fmt}_path": path}, confirmed=[path]).ok

    def export(self, bvh_path: str | None = None, csv_path: str | None = None, confirmed=()):
        """Export the take in the background, with a progress dialog. Existing files that the
        save dialog did not ask about (`confirmed`) are replaced only after `confirm_replace`;
        a forbidden target (an input, a folder) fails with a dialog. Returns the Reply."""
        reply = self.controller.export(bvh_path, csv_path, confirmed)
        if not reply.ok and "replace" in reply.ask:
            if not self.confirm_replace(reply.data):
                self.controller.show(f"not exported: {reply.reason}")
                return reply
            reply = self.controller.export(bvh_path, csv_path, overwrite=True)
        if reply.ok:
            dialog = QtWidgets.QProgressDialog("Exporting…", None, 0, 100, self)
            dialog.setWindowTitle("Export")
            dialog.setMinimumDuration(400)  # short exports finish before it would appear
            dialog.setValue(0)
            self._export_progress = dialog
        elif not reply.reason.startswith("export failed"):  # those come as an event, a dialog
            self.intent(reply)
        self.render()
        return reply

    def confirm_replace(self, paths) -> bool:
        """Ask before an export replaces existing files (a scripted --frames run: never)."""
        if self.options.frames is not None:
            return False
        names = "\n".join(str(p) for p in paths)
        answer = QtWidgets.QMessageBox.question(
            self, "Replace files?", f"These files exist already:\n{names}\n\nReplace them?",
            QtWidgets.QMessageBox.Yes | QtWidgets.QMessageBox.No, QtWidgets.QMessageBox.No,
        )  # fmt: skip
        return answer == QtWidgets.QMessageBox.Yes

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
            self.controller.show(f"discarded the take from {info.started}")
        elif answer == "recover":
            reply = self.controller.recover_take(info.path)
            if not reply.ok:
                self.warn("Recover", reply.reason)
                return
            self.render()
            self.export_dialog("bvh")

    # ------------------------------------------------------------------ misc
    def warn(self, title: str, message: str) -> None:
        """Show a problem in a window-modal box that does not block the event loop (the live
        view keeps running); in a scripted run (--frames), only in the status bar."""
        self.last_warning = message
        if self.options.frames is not None:
            return
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Warning, title, message,
                                    QtWidgets.QMessageBox.Ok, self)  # fmt: skip
        box.setAttribute(QtCore.Qt.WA_DeleteOnClose)
        box.open()

    def show_shortcuts(self) -> None:
        shortcuts_dialog(self, self.actions()).exec_()

    def show_about(self) -> None:
        about_dialog(self, app_data.log_path(), app_data.app_data_dir()).exec_()

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

    def ask_quit(self, frames: int) -> str:
        """Quit while recording: "save", "discard" or "cancel" (a modal question)."""
        box = quit_prompt(self, frames)
        box.exec_()
        return box.choice

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        c = self.controller
        reply = c.quit()
        if not reply.ok and reply.ask:
            choice = self.ask_quit(self._recorded)
            reply = c.quit(choice)
            if choice == "save" and reply.ok:
                # Open until the take is saved; "exported" closes the window, a failed or
                # abandoned export leaves it open with the take kept.
                self._quit_after_export = self.export_dialog("bvh")
                if not self._quit_after_export:
                    c.show("Not quitting: the take is kept. Export it (Ctrl+E) or quit again.")
                event.ignore()
                return
        if not reply.ok:
            self.intent(reply)
            event.ignore()
            return
        self._save_settings()
        self.bridge.detach()
        super().closeEvent(event)
