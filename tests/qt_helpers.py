"""Helpers shared by the GUI tests (no fixtures, no tests)."""


def call_on_live_thread(qtbot, win, fn):
    """Run fn(session) on the live thread (as the window does) and return its result."""
    box = []
    win.worker.call_soon(fn, box.append)
    qtbot.waitUntil(lambda: bool(box), timeout=5000)
    if isinstance(box[0], Exception):
        raise box[0]
    return box[0]
