"""distpose bench: the label-free statistics against hand-computed values, the live-model and
clip choices, and one `--quick` run on a tiny random model (real clip when ../shared has it)."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import torch

from distpose_app import bench
from distpose_app.core import metrics
from distpose_app.core.errors import DistposeError
from distpose_app.core.skeleton import BONES, LEFT_JOINTS, NUM_JOINTS, PARENTS, RIGHT_JOINTS
from distpose_app.lifter.model import TemporalModel, save_checkpoint

# Unit directions per joint (from its parent): any fixed set makes bone lengths exact.
_DIRS = np.random.default_rng(3).normal(size=(NUM_JOINTS, 3))
_DIRS /= np.linalg.norm(_DIRS, axis=1, keepdims=True)


def _skeleton(left: float, right: float, centre: float) -> np.ndarray:
    """(17, 3) metres: every left bone `left` long, right bones `right`, the others `centre`."""
    pos = np.zeros((NUM_JOINTS, 3))
    for j in range(1, NUM_JOINTS):
        length = left if j in LEFT_JOINTS else right if j in RIGHT_JOINTS else centre
        pos[j] = pos[PARENTS[j]] + length * _DIRS[j]
    return pos


def test_label_free_stats_hand_computed():
    # Frame 0: left bones 0.30 m, right 0.26 m, centre 0.20 m; frame 1 the same scaled by 1.1.
    a = _skeleton(0.30, 0.26, 0.20)
    poses = np.stack([a, 1.1 * a]) + np.array([5.0, -1.0, 3.0])  # root-relative inside
    s = bench.label_free_stats(np.concatenate([poses, poses]), fps=30.0)
    # |left - right| per pair: 0.04 in frame 0, 0.044 in frame 1 -> mean 0.042 m.
    assert s["symmetry_mm"] == pytest.approx(42.0)
    # Each bone alternates between L and 1.1 L: std 0.05 L; mean over the 16 bones.
    lengths = [0.30 if c in LEFT_JOINTS else 0.26 if c in RIGHT_JOINTS else 0.20 for _, c in BONES]
    assert s["consistency_mm"] == pytest.approx(1000 * 0.05 * np.mean(lengths))
    assert s["consistency_pct"] == pytest.approx(100 * 0.05 / 1.05)
    assert s["mean_bone_mm"] == pytest.approx(1000 * 1.05 * np.mean(lengths))
    assert s["frames"] == 4


def test_jitter_is_the_acceleration_and_skips_gaps():
    fps, accel = 25.0, np.array([0.0, 2.0, 0.0])  # 2 m/s^2 along y for every joint
    t = np.arange(12) / fps
    pos = _skeleton(0.3, 0.3, 0.2) + 0.5 * accel * t[:, None, None] ** 2
    assert bench.mean_joint_acceleration_gappy(pos, fps) == pytest.approx(2.0)
    assert metrics.mean_joint_acceleration(pos, fps) == pytest.approx(2.0)
    gappy = pos.copy()
    gappy[5] = np.nan  # the jump across the gap must not count as acceleration
    gappy[6:] += 1.0
    assert bench.mean_joint_acceleration_gappy(gappy, fps) == pytest.approx(2.0)
    # Rigid skeleton translating: zero consistency and symmetry error, root-relative jitter 0.
    s = bench.label_free_stats(gappy, fps)
    assert s["frames"] == 11
    assert s["consistency_mm"] == pytest.approx(0.0, abs=1e-9)
    assert s["jitter_m_s2"] == pytest.approx(0.0, abs=1e-9)
    assert bench.label_free_stats(np.full((5, NUM_JOINTS, 3), np.nan), fps) == {"frames": 0}


def test_default_live_model_and_clip_choice(tmp_path):
    assert bench.default_live_model(tmp_path) is None
    (tmp_path / "baseline.pt").touch()
    assert bench.default_live_model(tmp_path) == "baseline"
    (tmp_path / "augmented.pt").touch()
    assert bench.default_live_model(tmp_path) == "augmented"
    (tmp_path / "meta.pt").touch()
    assert bench.default_live_model(tmp_path) == "meta"

    assert bench.resolve_clip(None, tmp_path / "absent").synthetic  # no ../shared: demo
    assert bench.resolve_clip("demo").synthetic
    with pytest.raises(DistposeError, match="not found"):
        bench.resolve_clip(str(tmp_path / "nope.avi"))
    media = tmp_path / "shared" / "media"
    media.mkdir(parents=True)
    (media / bench.DEFAULT_CLIP).write_bytes(b"x")
    assert bench.resolve_clip(None, tmp_path / "shared").path == media / bench.DEFAULT_CLIP


def test_targets_and_markdown_flags():
    t = bench.check_targets({"lifter_ms_per_frame": 0.5, "iso_seconds": 4.0,
                             "adapt_fps_ratio": 0.8, "pipeline_overhead_ratio": None})  # fmt: skip
    assert t["lifter_ms_per_frame"]["met"] is True
    assert t["iso_seconds"]["met"] is False
    assert t["adapt_fps_ratio"]["met"] is True  # the bound is inclusive
    assert t["pipeline_overhead_ratio"]["met"] is None


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """One `distpose bench --quick` on a tiny random causal model (RF 9, 32 channels)."""
    from distpose_app.cli import bench as command
    from distpose_app.core.paths import SHARED

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("bench")
    torch.manual_seed(0)
    tiny = TemporalModel(filter_widths=(3, 3), channels=32, causal=True)
    weights = save_checkpoint(folder / "tiny.pt", tiny)
    real = (SHARED / "media" / bench.DEFAULT_CLIP).is_file()
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(
        ["--quick", "--weights", str(weights), "--device", "cpu", "--threads", "1",
         "--json", str(folder / "b.json"), "--markdown", str(folder / "b.md")]
        + ([] if real else ["--clip", "demo"])
    )  # fmt: skip
    assert command.run(args) == 0
    return json.loads((folder / "b.json").read_text()), (folder / "b.md").read_text(), real


def test_quick_bench_json_has_every_key_finite_and_positive(quick_report):
    report, _, real = quick_report
    for key in bench.REQUIRED_KEYS:
        assert key in report, key
    machine = report["machine"]
    assert machine["cores"] >= 1 and machine["torch"] == torch.__version__
    assert machine["device"] == "cpu" and machine["processor"]
    mediapipe_keys = {"mediapipe_ms_per_frame", "pipeline_overhead_ratio"}
    for key in set(bench.REQUIRED_KEYS) - {"machine"}:
        if not real and key in mediapipe_keys:
            assert report[key] is None  # synthetic fallback: no MediaPipe figures
            continue
        assert math.isfinite(report[key]) and report[key] > 0, (key, report[key])
    # Streaming costs O(layers) matrix-vector products; naive re-runs the whole window.
    assert report["lifter_naive_ms_per_frame"] > report["lifter_ms_per_frame"]
    assert report["live_model"] == "tiny" and report["gpu"] in (
        bench.NO_CUDA,
        "skipped (--device cpu)",
    )
    if real:
        # The pipeline does MediaPipe and more: it cannot beat MediaPipe alone by much.
        assert report["pipeline_fps"] < 1.5 * 1000 / report["mediapipe_ms_per_frame"]
        clip = report["clips"][bench.DEFAULT_CLIP]
        assert clip["frames_compared"] > 0
        assert clip["mediapipe"]["mean_bone_mm"] > 0 and clip["tiny"]["jitter_m_s2"] >= 0


def test_quick_bench_markdown_table(quick_report):
    report, text, _ = quick_report
    assert "| measure (live model, CPU) | value | target | met |" in text
    assert f"| lifter, streaming (ms/frame) | {report['lifter_ms_per_frame']:.3f} | <= 1 |" in text
    assert "| tiny | cpu | 9 | 32 |" in text
    assert "GPU: " in text
