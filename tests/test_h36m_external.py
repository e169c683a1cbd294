"""Human3.6M evaluation files in the external format, and per-action evaluation of them."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest
import torch
from h36m_fake import make_model, write_synthetic_h36m

from distpose_app.cli import data as data_cmd
from distpose_app.cli import evaluate as eval_cmd
from distpose_app.core.errors import DistposeError
from distpose_app.data.detector_noise import SPINE
from distpose_app.data.external import load_external
from distpose_app.data.h36m_external import (
    build_h36m_external,
    parse_subjects,
    sequence_action,
)
from distpose_app.evaluation import protocol as ev
from distpose_app.lifter.model import load_checkpoint

J = 17
SILENT = make_model(  # a detector without error: detections = the ground truth through the lens
    bias_m=np.zeros((J, 2)), sigma_m=np.zeros((J, 2)), outlier_prob=np.zeros(J),
    swap_rate=np.zeros(6),
)  # fmt: skip


@pytest.fixture(scope="module")
def fake_h36m(tmp_path_factory):
    """S1 with exact detections, S8 without: 3 takes each (Walking, Sitting, Walking 2)."""
    path = tmp_path_factory.mktemp("h36m") / "h36m.npz"
    return write_synthetic_h36m(path, SILENT, frames=60, sequences=3, subjects=(1, 8),
                                detected=(1,))  # fmt: skip


def _world_and_camera(path, take: int, cam: int):
    with np.load(path) as d:
        world = d["world_3d"][d["sequence"] == take].astype(float)
        return world, d["camera_R"][cam], d["camera_T"][cam], d["camera_f"][cam], d["camera_c"][cam]


def test_subjects_and_actions_parse():
    assert parse_subjects(["S8", "s1,5"]) == [8, 1, 5]
    for forbidden in ("S9", "11"):
        with pytest.raises(DistposeError, match="test subject"):
            parse_subjects([forbidden])
    with pytest.raises(DistposeError, match="subject"):
        parse_subjects(["eight"])
    assert sequence_action("S8/Walking 1/cam0") == "Walking"
    assert sequence_action("S8/WalkTogether/cam3") == "WalkTogether"


def test_ground_truth_file(fake_h36m):
    data, info = build_h36m_external(fake_h36m, ["S8"], stride=2)
    assert info["sequences"] == 3 * 4 and data.fps == 25.0 and info["actions"] == [
        "Sitting", "Walking"]  # fmt: skip
    assert list(data.names[:2]) == ["S8/Walking/cam0", "S8/Walking/cam1"]
    # Camera frame X_cam = R (X_world - T); 2D = the pinhole projection with the camera's f, c.
    world, r, t, f, c = _world_and_camera(fake_h36m, 3, 1)  # S8's first take, camera 1
    sel = data.sequence == 1
    np.testing.assert_allclose(data.positions_3d[sel], ((world - t) @ r.T)[::2], atol=1e-5)
    x = data.positions_3d[sel]
    np.testing.assert_allclose(data.keypoints_2d[sel], x[..., :2] / x[..., 2:] * f + c, atol=1e-3)
    np.testing.assert_array_equal(data.intrinsics[1], [f[0], f[1], c[0], c[1]])
    np.testing.assert_array_equal(data.image_size[1], [1000, 1010])


def test_detection_file_is_undistorted_with_spine_unseen(fake_h36m):
    data, info = build_h36m_external(fake_h36m, ["S1"], input_2d="sh")
    assert info["sequences"] == 12 and data.fps == 50.0
    seen = [j for j in range(J) if j != SPINE]
    assert np.isnan(data.keypoints_2d[:, SPINE]).all()
    assert np.isfinite(data.keypoints_2d[:, seen]).all()
    x = data.positions_3d
    pinhole = (
        x[..., :2] / x[..., 2:] * data.intrinsics[data.sequence][:, None, :2]
        + (data.intrinsics[data.sequence][:, None, 2:])
    )
    # Error-free detections through the lens, undistorted: the pinhole projection again.
    np.testing.assert_allclose(data.keypoints_2d[:, seen], pinhole[:, seen], atol=0.02)
    with pytest.raises(DistposeError, match="no detections"):
        build_h36m_external(fake_h36m, ["S8"], input_2d="sh")
    with pytest.raises(DistposeError, match="ground-truth"):
        build_h36m_external(fake_h36m, ["S1"], input_2d="sh", noise="sh")


def test_noisy_file_follows_the_noise_model(fake_h36m):
    model = make_model(bias_m=np.zeros((J, 2)), outlier_prob=np.zeros(J), swap_rate=np.zeros(6))
    clean, _ = build_h36m_external(fake_h36m, ["S8"])
    noisy, info = build_h36m_external(fake_h36m, ["S8"], noise="sh", noise_model=model, seed=1)
    again, _ = build_h36m_external(fake_h36m, ["S8"], noise="sh", noise_model=model, seed=1)
    np.testing.assert_array_equal(noisy.keypoints_2d, again.keypoints_2d)
    assert info["noise"] == "sh" and info["noise_scale"] == 1.0
    # Back in metres at the root depth, the error has the model's spread.
    to_m = noisy.positions_3d[:, 0, 2] / noisy.intrinsics[noisy.sequence, :2].mean(-1)
    err = (noisy.keypoints_2d - clean.keypoints_2d) * to_m[:, None, None]
    np.testing.assert_allclose(err.std(axis=0), model.array("sigma_m"), rtol=0.35)


def _data_args(*argv):
    p = argparse.ArgumentParser()
    data_cmd.add_arguments(p)
    return p.parse_args(list(argv))


def test_cli_builds_and_evaluates_per_action(fake_h36m, tiny_weights, tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / "s8.npz"
    args = _data_args("h36m-external", "--h36m", str(fake_h36m), "--subjects", "S8",
                      "--out", str(out))  # fmt: skip
    assert data_cmd.run(args) == 0
    assert "12 sequences" in capsys.readouterr().out
    data = load_external(out)
    (tmp_path / "w").mkdir()
    shutil.copy(tiny_weights, tmp_path / "w" / "augmented.pt")
    p = argparse.ArgumentParser()
    eval_cmd.add_arguments(p)
    args = p.parse_args(["--data", str(out), "--weights-dir", str(tmp_path / "w"), "--models",
                         "augmented", "--group-by", "action", "--json",
                         str(tmp_path / "act.json")])  # fmt: skip
    assert eval_cmd.run(args) == 0
    report = json.loads((tmp_path / "act.json").read_text())
    assert report["group_by"] == "action" and report["masks"] == ["none"]
    rows = {r["action"]: r for r in report["results"]}
    assert list(rows) == ["Sitting", "Walking", "all", "mean"]
    assert rows["all"]["frames"] == len(data.sequence) and rows["Sitting"]["sequences"] == 4
    assert rows["mean"]["mpjpe_mm"] == pytest.approx(
        (rows["Sitting"]["mpjpe_mm"] + rows["Walking"]["mpjpe_mm"]) / 2
    )
    # Independent recomputation of the Walking row: root-relative MPJPE over its 8 sequences.
    model = load_checkpoint(tiny_weights)[0].eval()
    errs = []
    for s in range(data.num_sequences):
        if sequence_action(data.names[s]) != "Walking":
            continue
        sel = data.sequence == s
        w, h = data.image_size[s]
        kp = data.keypoints_2d[sel] / w * 2 - [1, h / w]
        pred = ev.lift(model, kp, data.fps)
        gt = data.positions_3d[sel] - data.positions_3d[sel][:, :1]
        errs.append(np.linalg.norm(pred - gt, axis=-1))
    assert rows["Walking"]["mpjpe_mm"] == pytest.approx(1000 * np.concatenate(errs).mean(), 1e-5)
    assert (tmp_path / "act.md").read_text().startswith("| model | action | frames |")
    with pytest.raises(DistposeError, match="needs --data"):
        eval_cmd.run(p.parse_args(["--group-by", "action", "--weights-dir", str(tmp_path / "w"),
                                   "--models", "augmented"]))  # fmt: skip
