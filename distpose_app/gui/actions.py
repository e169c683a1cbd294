"""The window's actions (every one with a keyboard shortcut), its menus and its toolbar. Actions
only forward intents to the window; which are enabled or checked is rendered from the
controller's state (main_window.MainWindow.render)."""

from __future__ import annotations

from PyQt5 import QtGui, QtWidgets

DEMO_LENSES = ("none", "mild", "moderate", "strong", "pincushion", "fisheye")

ADAPT_TIP = (
    "Adapt to this camera's lens from the last seconds of video: fits the lens's distortion by "
    "self-supervision (no calibration pattern), in the background; Revert (Ctrl+Z) undoes it"
)


def _action(win, text, shortcut=None, slot=None, checkable=False, tip=None):
    action = QtWidgets.QAction(text, win)
    if shortcut:
        action.setShortcut(QtGui.QKeySequence(shortcut))
    if slot is not None:
        action.triggered.connect(slot)
    action.setCheckable(checkable)
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    win.addAction(action)  # shortcuts work even when the menu bar is hidden
    return action


def build_actions(win) -> None:
    """Create win.act_* (and win.demo_lens_actions) wired to the window's intent methods."""
    a = lambda *args, **kw: _action(win, *args, **kw)  # noqa: E731
    win.act_open = a("&Open video file…", "Ctrl+O", win.open_video_dialog)
    win.act_demo = a("&Demo", "Ctrl+M", lambda: win.choose_source("demo"))
    win.act_refresh = a("&Refresh cameras", "F5", win.refresh_cameras)
    win.act_pick = a("Choose &source…", "F2", lambda: win.source_combo.showPopup())
    win.act_export_bvh = a("Export &BVH…", "Ctrl+E", lambda: win.export_dialog("bvh"))
    win.act_export_csv = a("Export &CSV…", "Ctrl+Shift+E", lambda: win.export_dialog("csv"))
    win.act_root_lock = a(
        "Export in &place (root lock)", "Ctrl+Shift+P", win.toggle_root_lock, checkable=True,
        tip="Exports keep the root above the origin (motion in place, height kept) instead of "
        "travelling as the person did",
    )  # fmt: skip
    win.act_quit = a("&Quit", "Ctrl+Q", win.close)
    win.act_pause = a("&Pause", "Space", win.toggle_pause, checkable=True,
                      tip="Hold the source where it is (Space)")  # fmt: skip
    win.act_replay = a("Re&play from the start", "Ctrl+Home", win.replay,
                       tip="Play the video file again from its first frame")  # fmt: skip
    win.act_loop = a("&Loop video files", "Ctrl+Shift+Home", win.toggle_loop, checkable=True,
                     tip="Start a video file again when it ends")  # fmt: skip
    win.act_every_frame = a(
        "Process &every frame", "Ctrl+Shift+F", win.toggle_every_frame, checkable=True,
        tip="Read files and the demo as fast as the pipeline goes, every frame processed (no "
        "real-time pacing): Adapt and Record get all of a short clip",
    )  # fmt: skip
    win.act_record = a("&Record", "Ctrl+R", win.toggle_record, checkable=True,
                       tip="Record the 3D poses for export (Ctrl+R again stops)")  # fmt: skip
    win.act_adapt = a("&Adapt to this lens", "Ctrl+A", win.start_adapt, tip=ADAPT_TIP)
    win.act_cancel = a("&Cancel adaptation", "Esc", win.cancel_adapt)
    win.act_revert = a("Re&vert to unadapted", "Ctrl+Z", win.revert_adapt)
    win.act_saved = a("Use &saved adaptation", "Ctrl+Shift+A", win.use_saved_adaptation)
    win.act_lens_unknown = a("&Unknown — adapt", "Ctrl+1", win.set_lens_unknown, True)
    win.act_lens_type = a("Known: &type a lens…", "Ctrl+L", win.type_lens_dialog, True)
    win.act_lens_calib = a(
        "Known: load OpenCV &calibration…", "Ctrl+Shift+L", win.calibration_dialog, True
    )
    group = QtWidgets.QActionGroup(win)
    for action in (win.act_lens_unknown, win.act_lens_type, win.act_lens_calib):
        group.addAction(action)
    win.act_lens_unknown.setChecked(True)
    win.act_reset_view = a("Reset &3D view", "Ctrl+0", lambda: win.view3d.reset_camera())
    win.act_shortcuts = a("&Keyboard shortcuts", "F1", win.show_shortcuts)
    win.act_about = a("&About distpose (log file)", "Shift+F1", win.show_about)
    win.demo_lens_actions = {}
    demo_group = QtWidgets.QActionGroup(win)
    for i, name in enumerate(DEMO_LENSES):
        act = a(f"Demo lens: {name}", f"Alt+{i + 1}", None, True)
        act.triggered.connect(lambda _=False, n=name: win.set_demo_lens(n))
        demo_group.addAction(act)
        win.demo_lens_actions[name] = act


def build_menus(win) -> None:
    bar = win.menuBar()
    m = bar.addMenu("&File")
    for act in (win.act_open, win.act_demo, win.act_refresh, win.act_pick):
        m.addAction(act)
    m.addSeparator()
    m.addAction(win.act_export_bvh)
    m.addAction(win.act_export_csv)
    m.addAction(win.act_root_lock)
    m.addSeparator()
    m.addAction(win.act_quit)
    m = bar.addMenu("&Capture")
    for act in (win.act_pause, win.act_replay, win.act_loop, win.act_every_frame):
        m.addAction(act)
    m.addSeparator()
    m.addAction(win.act_record)
    m = bar.addMenu("&Adapt")
    for act in (win.act_adapt, win.act_cancel, win.act_revert, win.act_saved):
        m.addAction(act)
    m = bar.addMenu("&Lens")
    for act in (win.act_lens_unknown, win.act_lens_type, win.act_lens_calib):
        m.addAction(act)
    m.addSeparator()
    demo = m.addMenu("&Demo lens")
    for act in win.demo_lens_actions.values():
        demo.addAction(act)
    m = bar.addMenu("&View")
    m.addAction(win.act_reset_view)
    m = bar.addMenu("&Help")
    m.addAction(win.act_shortcuts)
    m.addAction(win.act_about)


def build_toolbar(win) -> None:
    tb = win.addToolBar("Main")
    tb.setObjectName("main-toolbar")
    tb.setMovable(False)
    tb.addWidget(QtWidgets.QLabel(" Source: "))
    win.source_combo = QtWidgets.QComboBox()
    win.source_combo.setMinimumContentsLength(24)
    win.source_combo.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToMinimumContentsLength)
    win.source_combo.setAccessibleName("Source")
    win.source_combo.activated.connect(win._source_chosen)
    tb.addWidget(win.source_combo)
    tb.addWidget(QtWidgets.QLabel("  Demo lens: "))
    win.lens_combo = QtWidgets.QComboBox()
    win.lens_combo.addItems(DEMO_LENSES)
    win.lens_combo.setAccessibleName("Demo lens")
    win.lens_combo.activated.connect(lambda i: win.set_demo_lens(DEMO_LENSES[i]))
    tb.addWidget(win.lens_combo)
    tb.addSeparator()
    short = {
        win.act_replay: "Replay",
        win.act_loop: "Loop",
        win.act_adapt: "Adapt",
        win.act_revert: "Revert",
        win.act_export_bvh: "BVH…",
        win.act_export_csv: "CSV…",
    }
    for act, text in short.items():
        act.setIconText(text)  # the toolbar's text; menus keep the full one
    for act in (win.act_pause, win.act_replay, win.act_loop, win.act_record, win.act_adapt,
                win.act_revert):  # fmt: skip
        tb.addAction(act)
    tb.addSeparator()
    tb.addAction(win.act_export_bvh)
    tb.addAction(win.act_export_csv)
    # Record's text changes ("Stop recording"): its button keeps the widest text's width, so
    # the toolbar (and the window) never changes size when it does.
    button = tb.widgetForAction(win.act_record)
    metrics = button.fontMetrics()
    widest = max(metrics.horizontalAdvance(t) for t in ("Record", "Stop recording"))
    button.setFixedWidth(widest + 16)
    win.toolbar = tb
