import io

from distpose_app.core.progress import Progress, progress


def test_progress_lines_in_logs_every_tenth():
    out = io.StringIO()
    with Progress(20, "work", stream=out) as bar:
        for _ in range(20):
            bar.update()
    lines = out.getvalue().splitlines()
    assert 10 <= len(lines) <= 12  # one line per 10% (plus the final one), not one per step
    assert lines[-1].startswith("work [") and "20/20 100.0%" in lines[-1]


def test_resumed_progress_counts_from_initial():
    out = io.StringIO()
    bar = Progress(10, "resume", stream=out, initial=6)
    bar.update(2)
    bar.close()
    assert "8/10" in out.getvalue()
    assert list(progress([1, 2, 3], desc="x")) == [1, 2, 3]
