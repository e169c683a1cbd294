"""`distpose process`: detector + lifter over a video file, exports, bad values."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from distpose_app.cli import process
from distpose_app.core.errors import DistposeError, LensError


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    process.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from distpose_app.lifter.model import TemporalModel, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    save_checkpoint(path, TemporalModel(channels=32, filter_widths=(3, 3), causal=True).eval())
    return str(path)


@pytest.fixture(scope="module")
def blank_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "blank.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (96, 64))
    for _ in range(9):
        writer.write(np.full((64, 96, 3), 40, np.uint8))
    writer.release()
    return path


@pytest.mark.slow
def test_no_person_still_writes_one_row_per_frame(blank_video, weights, tmp_path):
    csv = tmp_path / "take.csv"
    bvh = tmp_path / "take.bvh"
    code = process.run(_args(str(blank_video), "--weights", weights, "--csv", str(csv),
                             "--bvh", str(bvh), "--device", "cpu", "--quiet"))  # fmt: skip
    assert code == 0
    table = pd.read_csv(csv)
    assert len(table) == 9 and (table["tracked"] == 0).all()
    np.testing.assert_allclose(table["timestamp_s"], np.arange(9) / 25.0, atol=1e-6)
    assert not bvh.exists()  # no motion to write


def test_bad_values_are_one_line_errors(blank_video, weights, tmp_path):
    with pytest.raises(SystemExit):  # refused while parsing: argparse's one line, exit 2
        process.run(_args(str(blank_video), "--frames", "-3"))
    with pytest.raises(DistposeError, match="does not exist"):
        process.run(_args(str(blank_video), "--csv", str(tmp_path / "no" / "x.csv")))
    with pytest.raises(DistposeError, match="--frames"):
        process.run(_args("0"))  # a camera without a frame count
    with pytest.raises(LensError):
        process.run(_args(str(blank_video), "--weights", weights, "--lens", "wobbly:1"))
    with pytest.raises(DistposeError, match="unknown device"):
        process.run(_args(str(blank_video), "--weights", weights, "--device", "tpu"))
    with pytest.raises(DistposeError, match="missing.avi"):
        process.run(_args(str(tmp_path / "missing.avi"), "--weights", weights))
    with pytest.raises(DistposeError, match="nope.pt"):
        process.run(_args(str(blank_video), "--weights", str(tmp_path / "nope.pt")))


@pytest.mark.slow
def test_street_walk(media_dir, weights, tmp_path):
    clip = media_dir / "openpose_street_walk.avi"
    if not clip.is_file():
        pytest.skip("openpose_street_walk.avi absent")
    csv, bvh = tmp_path / "walk.csv", tmp_path / "walk.bvh"
    code = process.run(_args(str(clip), "--weights", weights, "--frames", "40", "--csv", str(csv),
                             "--bvh", str(bvh), "--device", "cpu", "--quiet"))  # fmt: skip
    assert code == 0
    table = pd.read_csv(csv)
    assert len(table) == 40 and table["tracked"].mean() > 0.9
    np.testing.assert_allclose(table["timestamp_s"], np.arange(40) / 50.0, atol=1e-6)
    assert bvh.read_text().startswith("HIERARCHY")
    assert (tmp_path / "walk.bvh.json").is_file()


@pytest.mark.slow
def test_upper_body_clip_is_tracked_with_the_legs_flagged(media_dir, weights, tmp_path):
    """Hips and legs below the picture: tracked from the shoulders up, every joint
    written, the lower body flagged unseen. Before, no frame of this clip was tracked."""
    clip = media_dir / "mediapipe_gesture_upper_body.mp4"
    if not clip.is_file():
        pytest.skip("mediapipe_gesture_upper_body.mp4 absent")
    csv = tmp_path / "upper.csv"
    code = process.run(_args(str(clip), "--weights", weights, "--frames", "40", "--csv", str(csv),
                             "--device", "cpu", "--quiet"))  # fmt: skip
    assert code == 0
    table = pd.read_csv(csv)
    tracked = table["tracked"].to_numpy() == 1
    assert len(table) == 40 and tracked.mean() > 0.9
    xyz = table.filter(regex=r"_[xyz]$").to_numpy()
    assert xyz.shape[1] == 51 and np.isfinite(xyz[tracked]).all()
    legs = ["Hips", "RightUpLeg", "RightLeg", "RightFoot", "LeftUpLeg", "LeftLeg", "LeftFoot"]
    assert (table[[f"{n}_seen" for n in legs]] == 0).all().all()
    assert (table.loc[tracked, ["LeftArm_seen", "RightArm_seen"]] == 1).all().all()


@pytest.mark.parametrize("spec, whole", [("0", True), ("video", False)])
def test_adapt_on_a_camera_tries_no_centre_shifts(
    monkeypatch, blank_video, weights, tmp_path, spec, whole
):
    """A camera index is a camera's whole picture, centred on its lens, as in the app: Adapt is
    told so and skips the off-centre check; a video file may be cropped and keeps it."""
    from distpose_app import adapt
    from distpose_app.adapt.iso import AdaptResult
    from distpose_app.live import capture

    frames, rng = 60, np.random.default_rng(0)
    person = np.array([48.0, 32.0]) + rng.normal(0, 8, (frames, 17, 2))  # pixels, 96x64 video
    times = {"capture": 0.0, "mediapipe": 0.0}
    detected = (person, np.ones((frames, 17)), np.arange(frames) / 25.0, times, None)
    monkeypatch.setattr(capture, "open_source", lambda s: capture.VideoFileSource(str(blank_video)))
    monkeypatch.setattr(process, "detect_all", lambda *a, **k: detected)
    told = {}

    def fake_adapt(model, keypoints, method, **kwargs):
        told.update(kwargs)
        stats = {"symmetry_mm": 1.0, "consistency_pct": 1.0}
        return AdaptResult(model.state_dict(), False, "declined by the test", stats, stats)

    monkeypatch.setattr(adapt, "adapt_model", fake_adapt)
    source = "0" if spec == "0" else str(blank_video)
    code = process.run(_args(source, "--frames", str(frames), "--adapt", "lens", "--weights",
                             weights, "--csv", str(tmp_path / "take.csv"), "--device", "cpu",
                             "--quiet"))  # fmt: skip
    assert code == 0 and told["whole_picture"] is whole
