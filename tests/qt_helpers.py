"""Helpers shared by the GUI tests (no fixtures, no tests)."""


def call_on_live_thread(qtbot, win, fn):
    """Run fn(engine) on the app's live thread (live.engine.LiveEngine) and return its result."""
    result = win.controller.call_live_and_wait(fn)
    if isinstance(result, Exception):
        raise result
    return result


def recorded(win) -> int:
    """Rows in the take being recorded (the Recorder is thread-safe: read from any thread)."""
    return win.controller.engine.pipeline.recorder.num_frames
