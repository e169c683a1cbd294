"""The CI version of scripts/soak.py: the demo through the live pipeline for 15 s with a take
recording, Adapt pressed, sources switched; no exception and no memory growth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_soak_quarter_minute(tmp_path):
    env = dict(os.environ, DISTPOSE_DATA_DIR=str(tmp_path), OMP_NUM_THREADS="1")
    argv = [sys.executable, str(REPO / "scripts" / "soak.py"), "--minutes", "0.25",
            "--adapt-every", "4", "--take-seconds", "6", "--switch-every", "5",
            "--channels", "128", "--iso-steps", "5"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["exceptions"] == [], proc.stderr[-2000:]
    assert report["frames_processed"] > 300 and report["poses"] > 300
    assert report["rss_growth_mb"] < 50
    assert report["takes"] >= 3 and report["exports"] >= 2 and report["switches"] >= 2
    assert report["adapt_started"] >= 2
    assert report["adapt_applied"] + report["adapt_refused"] == report["adapt_started"]
    assert report["recorded_frames"] >= report["frames_processed"] * 0.9
