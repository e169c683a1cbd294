"""Logging: the rotating log file (core.logs) and `distpose -v` on stderr."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from distpose_app.core import logs


@pytest.fixture(autouse=True)
def reset_logging():
    yield
    logs.configure_logging(0, None, stderr=False)


def test_log_file_rotates_and_keeps_tracebacks(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "LOG_BYTES", 2000)
    path = logs.configure_logging(0, tmp_path / "logs" / "app.log", stderr=False)
    log = logging.getLogger("distpose_app.test")
    try:
        raise RuntimeError("a worker's failure")
    except RuntimeError:
        log.exception("the job failed")
    for i in range(100):
        log.info("line %d of filler to make the file rotate", i)
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["app.log", "app.log.1", "app.log.2", "app.log.3"]  # 3 old ones kept
    assert "line 99" in path.read_text()
    log.debug("not written: the file takes INFO and up")
    assert "not written" not in path.read_text()


def test_unwritable_log_folder_is_reported_not_fatal(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert logs.configure_logging(0, blocker / "logs" / "app.log", stderr=False) is None
    assert "no log file" in capsys.readouterr().err


def test_cli_verbose_logs_to_stderr(tmp_path, capsys, tiny_weights):
    from distpose_app.cli.main import main

    video = tmp_path / "black.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (160, 120))
    for _ in range(5):
        writer.write(np.zeros((120, 160, 3), np.uint8))
    writer.release()
    argv = ["process", str(video), "--quiet", "--weights", tiny_weights, "--device", "cpu"]
    main([*argv, "--csv", str(tmp_path / "quiet.csv")])
    quiet = capsys.readouterr().err
    assert "INFO distpose_app" not in quiet  # without -v: warnings and errors only
    main(["-v", *argv, "--csv", str(tmp_path / "verbose.csv")])
    err = capsys.readouterr().err
    assert "INFO distpose_app.cli.process" in err and "black.avi: 160x120" in err
    assert "detected 5 frames, 0 with a person" in err
