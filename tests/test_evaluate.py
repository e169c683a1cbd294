"""Evaluation extras: imaging strings (@pp, @hfov), the oracle, adaptation variants, per pose
family scoring with masked joints, and the CLI on a tiny external file."""

from __future__ import annotations

import argparse
import json
import math
import shutil

import cv2
import numpy as np
import pytest
import torch
from poses import symmetric_pose

from distpose_app.cli import evaluate as cmd
from distpose_app.core.errors import DistposeError, LensError
from distpose_app.data.external import ExternalData, save_external
from distpose_app.data.lens_sampler import LensSampler
from distpose_app.data.masking import UPPER_BODY
from distpose_app.evaluation import protocol as ev
from distpose_app.lens.models import BrownConrady, Intrinsics, NoLens
from distpose_app.lifter.model import load_checkpoint

W, H = 1280, 720
K90 = Intrinsics.from_hfov(90.0, W, H)
FAMILIES = ("standing", "seated", "crouching")


def _data(seqs_per_family: int = 2, frames: int = 40, families=FAMILIES) -> ExternalData:
    """Camera-frame sequences (metres, z ≈ 3 m) of a swaying rest pose, named like the held-out
    set ('<file>#<family>#<clip>/view0'), seen by the 90° 1280x720 evaluation webcam."""
    rng = np.random.default_rng(0)
    pos, seq, names = [], [], []
    for family in families:
        for k in range(seqs_per_family):
            t = np.arange(frames)[:, None, None] / 30.0
            pose = symmetric_pose()[None] + [0.2 * rng.uniform(-1, 1), 0.0, 3.0]
            sway = 0.1 * np.sin(2 * np.pi * t * rng.uniform(0.3, 1.0)) * [1.0, 0.2, 0.5]
            pos.append(pose + sway * (np.arange(17) / 16.0)[None, :, None])
            seq.append(np.full(frames, len(names)))
            tag = "" if family == "standing" else f"#{family}"
            names.append(f"dataset-1_walk_old_{k:03d}{tag}#00/view0")
    s = len(names)
    return ExternalData(
        positions_3d=np.concatenate(pos), sequence=np.concatenate(seq), fps=30.0,
        intrinsics=np.tile([K90.fx, K90.fy, K90.cx, K90.cy], (s, 1)),
        image_size=np.tile([W, H], (s, 1)), names=np.array(names),
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tiny_weights):
    torch.set_num_threads(1)
    return load_checkpoint(tiny_weights)[0].eval()


# ---------------------------------------------------------------------------- imaging strings
def test_parse_imaging():
    im = ev.parse_imaging("brown:-0.3,0.05@pp=0.08,0.05")
    assert im.lens == BrownConrady(-0.3, 0.05) and im.pp_offset == (0.08, 0.05)
    assert im.hfov_deg is None and im.modified
    im = ev.parse_imaging("none @ hfov=150")
    assert isinstance(im.lens, NoLens) and im.hfov_deg == 150.0 and im.pp_offset == (0.0, 0.0)
    assert not ev.parse_imaging("strong").modified
    assert ev.parse_imaging("fisheye@hfov=140@pp=0,-0.1").pp_offset == (0.0, -0.1)
    for bad in ("none@pp=0.6,0", "none@pp=0.1", "none@hfov=200", "none@zoom=2", "none@hfov",
                "none@hfov=90@hfov=100", "brown:x@pp=0,0", ""):  # fmt: skip
        with pytest.raises(LensError):
            ev.parse_imaging(bad)


def test_true_camera_hand_computed():
    cam = ev.parse_imaging("none@pp=0.08,0.05@hfov=150").true_camera(K90)
    f = 640.0 / math.tan(math.radians(75.0))  # 171.49 px
    assert (cam.fx, cam.fy) == (pytest.approx(f), pytest.approx(f))
    assert (cam.cx, cam.cy) == (pytest.approx(640 + 0.08 * 1280), pytest.approx(360 + 0.05 * 720))
    assert ev.parse_imaging("none").true_camera(K90) == K90


def test_distorted_pixels_match_opencv():
    data = _data(1, 5)
    text = "brown:-0.3,0.05,0,0.001,-0.002@pp=0.08,0.05@hfov=70"
    got = ev.distorted_pixels(data, text)
    im = ev.parse_imaging(text)
    cam = im.true_camera(K90)
    ref, _ = cv2.projectPoints(data.positions_3d.reshape(-1, 1, 3), np.zeros(3), np.zeros(3),
                               cam.matrix, im.lens.opencv_coeffs())  # fmt: skip
    np.testing.assert_allclose(got.reshape(-1, 2), ref.reshape(-1, 2), atol=1e-6)


def test_wider_field_of_view_shrinks_the_person():
    data = _data(1, 5)
    wide, normal = ev.distorted_pixels(data, "none@hfov=150"), ev.distorted_pixels(data, "none")
    spread = lambda px: np.ptp(px[..., 0], axis=-1).mean()  # noqa: E731
    assert spread(wide) / spread(normal) == pytest.approx(1 / math.tan(math.radians(75)))


IMAGING = ["none", "strong", "division:-0.3", "none@pp=0.08,0.05", "none@hfov=150",
           "brown:-0.3,0.05@pp=0.08,0.05", "fisheye@hfov=140",
           "brown:0.3@pp=-0.05,0.1@hfov=40"]  # fmt: skip


@pytest.mark.parametrize("text", IMAGING)
def test_oracle_input_is_the_ideal_pinhole_projection(text):
    data = _data(1, 10)
    px = ev.distorted_pixels(data, text)
    oracle = ev.oracle_input(data, px, text, 0, 0, 10)
    xyz = data.positions_3d[:10]
    ideal = K90.to_pixels(xyz[..., :2] / xyz[..., 2:3])  # the trained-on projection
    expected = np.stack([ideal[..., 0] / W * 2 - 1, ideal[..., 1] / W * 2 - H / W], axis=-1)
    np.testing.assert_allclose(oracle, expected, atol=1e-6)
    if text != "none":  # the observed input differs from it
        assert np.abs(ev._normalised(data, px, 0, 0, 10) - expected).max() > 1e-3


def test_lens_sets_against_the_sampler():
    meta = {"augmented": {"lens_sampler": LensSampler().describe()}}
    inside = cmd._sampler_check(meta, [*ev.LENS_SETS["in"], *ev.LENS_SETS["out"],
                                       "none@hfov=100", "strong@hfov=60"])  # fmt: skip
    assert all(inside[t] for t in ev.LENS_SETS["in"])
    assert not any(inside[t] for t in ev.LENS_SETS["out"])
    assert inside["none@hfov=100"] and inside["strong@hfov=60"]  # within training's 50-120°
    # The "out" lenses stay monotonic over the evaluation webcam's image.
    from distpose_app.lens.models import is_monotonic

    for t in ev.LENS_SETS["out"]:
        assert is_monotonic(ev.parse_imaging(t).lens, K90.corner_radius), t


# ---------------------------------------------------------------------------- lifting, methods
def test_lift_many_equals_lifting_each_alone(tiny):
    rng = np.random.default_rng(3)
    seqs = [rng.uniform(-0.5, 0.5, (n, 17, 2)) for n in (12, 30, 12, 5)]
    seqs[1][4:9, 2] = np.nan  # unseen joints pass through
    many = ev.lift_many(tiny, seqs, 30.0, batch=1)
    for kp, got in zip(seqs, many):
        np.testing.assert_allclose(got, ev.lift(tiny, kp, 30.0), atol=1e-5)
    assert [len(x) for x in ev.lift_many(tiny, seqs, 25.0)] == [12, 30, 12, 5]  # resampled path


def test_method_names():
    assert ev.adapted_methods(["weights", "lens+bn"]) == (
        "augmented+weights", "augmented+lens+bn", "meta+weights", "meta+lens+bn")  # fmt: skip
    assert ev.method_model("meta+lens+bn") == "meta" and ev.method_model("oracle") == "baseline"
    assert ev.method_model("augmented+truelens") == "augmented"
    with pytest.raises(DistposeError):
        ev.adapted_methods(["magic"])
    with pytest.raises(DistposeError):
        ev.method_model("augmented+magic")


class _Calls(list):
    """The buffer shape of every fit (the list) and the configuration each fit was given."""

    def __init__(self):
        super().__init__()
        self.configs: list = []


@pytest.fixture
def fake_lens_adapt(monkeypatch):
    """lens_adapt.lens_adapt replaced by one that records its buffer and fits the identity."""
    from distpose_app.adapt import lens_fit as la

    calls = _Calls()

    def lens_adapt(model, keypoints_2d, config=None, cancel=None, progress=None, pictures=None):
        calls.append(keypoints_2d.shape)
        calls.configs.append(config)
        return la.LensAdaptResult(la.ScreenLens(), True, "ok", 1.0, 0.9, 2, 0.25,
                                  evidence={"k1": 0.0})  # fmt: skip

    monkeypatch.setattr(la, "lens_adapt", lens_adapt)
    return calls


def test_adaptation_variants_in_the_lens_table(tiny, fake_lens_adapt):
    data = _data(3, 40)
    models = {"baseline": tiny, "augmented": tiny}
    methods = ("augmented", "oracle", "augmented+truelens",
               *ev.adapted_methods(ev.ADAPTATIONS, ["augmented"]))  # fmt: skip
    rows = ev.evaluate_lens(models, data, "strong@pp=0.05,0", methods, adapt_seconds=3.0,
                            fewshot_k=10)  # fmt: skip
    got = {r["method"]: r for r in rows}
    assert list(got) == list(methods)
    assert fake_lens_adapt == [(90, 17, 2), (90, 17, 2)]  # lens and lens+bn, model-rate buffer
    # An identity fitted lens changes nothing; the true lens is the oracle's input.
    assert got["augmented+lens"]["mpjpe_mm"] == pytest.approx(got["augmented"]["mpjpe_mm"])
    assert got["augmented+truelens"]["mpjpe_mm"] == pytest.approx(got["oracle"]["mpjpe_mm"])
    for m in methods[3:]:
        assert isinstance(got[m]["accepted"], bool) and got[m]["seconds"] >= 0, m
    assert "bn_accepted" in got["augmented+lens+bn"]
    assert got["augmented+lens"]["fitted_lens"] == {"k1": 0.0, "k2": 0.0, "scale": 1.0,
                                                    "cx": 0.0, "cy": 0.0}  # fmt: skip
    assert got["augmented+lens"]["lens_evidence"] == {"k1": 0.0}  # what the verdict rests on
    table = ev.markdown_table(rows)
    assert "N-MPJPE" in table and table.count("\n") == 2
    r = got["augmented"]
    assert f"{r['mpjpe_mm']:.1f} ({r['p_mpjpe_mm']:.1f}, {r['n_mpjpe_mm']:.1f})" in table


def test_whole_picture_data_adapt_without_centre_shifts(tiny, fake_lens_adapt):
    # The Demo's data are a camera's whole picture: evaluate's Adapt must weigh no shifts of the
    # centre, as the app's does there, unless the test camera itself moves the principal point.
    from dataclasses import replace

    data = _data(2, 40)
    for marked, lens, expect_shifts in ((False, "strong", True), (True, "strong", False),
                                        (True, "strong@pp=0.05,0", True)):  # fmt: skip
        rows = ev.evaluate_lens({"augmented": tiny}, replace(data, whole_picture=marked), lens,
                                ("augmented+lens",), adapt_seconds=2.0)  # fmt: skip
        assert bool(fake_lens_adapt.configs[-1].centre_shifts) == expect_shifts, (marked, lens)
        assert rows[0]["whole_picture"] == (not expect_shifts)


# ---------------------------------------------------------------------------- pose families
def test_evaluate_poses_per_family_and_mask(tiny):
    data = _data(2, 20)
    rows = ev.evaluate_poses({"augmented": tiny}, data, "none", ("legs", "lower_body"))
    keys = {(r["family"], r["mask"]) for r in rows}
    assert keys == {(f, m) for f in (*FAMILIES, "all") for m in ("none", "legs", "lower_body")}
    cell = {(r["family"], r["mask"]): r for r in rows}
    assert cell[("all", "none")]["frames"] == len(data.sequence)
    assert cell[("seated", "none")]["frames"] == 40 and cell[("seated", "none")]["sequences"] == 2
    assert cell[("standing", "legs")]["vs_standing"] == pytest.approx(1.0)
    assert cell[("seated", "none")]["upper_vs_unmasked"] == pytest.approx(1.0)
    # Independent recomputation of one cell: seated sequences (ids 2, 3), legs NaN, 9 joints.
    gt = data.positions_3d - data.positions_3d[:, :1]
    legs = [2, 3, 5, 6]  # RKnee, RFoot, LKnee, LFoot
    errs = []
    for s in (2, 3):
        sel = data.sequence == s
        kp = K90.to_pixels(data.positions_3d[sel, :, :2] / data.positions_3d[sel, :, 2:])
        kp = np.stack([kp[..., 0] / W * 2 - 1, kp[..., 1] / W * 2 - H / W], axis=-1)
        kp[:, legs] = np.nan
        pred = ev.lift(tiny, kp, 30.0)
        errs.append(np.linalg.norm(pred[:, UPPER_BODY] - gt[sel][:, UPPER_BODY], axis=-1))
    r = cell[("seated", "legs")]
    assert r["upper_mpjpe_mm"] == pytest.approx(1000 * np.concatenate(errs).mean(), rel=1e-5)
    assert r["upper_vs_unmasked"] == pytest.approx(
        r["upper_mpjpe_mm"] / cell[("seated", "none")]["upper_mpjpe_mm"]
    )
    assert r["upper_vs_unmasked"] != pytest.approx(1.0)  # masking reached the model
    table = ev.pose_markdown_table(rows)
    assert table.count("\n") == 1 + 4 and "upper, lower body masked" in table


def test_evaluate_poses_needs_names(tiny):
    data = _data(1, 20)
    data.names = None
    with pytest.raises(DistposeError, match="names"):
        ev.evaluate_poses({"m": tiny}, data)
    with pytest.raises(DistposeError, match="mask"):
        ev.evaluate_poses({"m": tiny}, _data(1, 20), masks=("tail",))


def test_pose_targets():
    def row(family, mask, vs, up):
        return {"model": "m", "family": family, "mask": mask, "vs_standing": vs,
                "upper_vs_unmasked": up}  # fmt: skip

    rows = [row("standing", "none", 1.0, 1.0), row("seated", "none", 1.25, 1.0),
            row("crouching", "none", 1.4, 1.0), row("kneeling", "none", 2.0, 1.0),
            row("standing", "legs", 1.0, 1.1), row("seated", "legs", 1.2, 1.15),
            row("all", "legs", 1.0, 1.5)]  # fmt: skip
    (t,) = ev.pose_targets(rows)
    assert t["worst_seated_crouching_vs_standing"] == 1.4 and t["family_target_met"] is False
    assert t["worst_upper_legs_masked_vs_unmasked"] == 1.15 and t["masking_target_met"] is True


# ---------------------------------------------------------------------------- CLI
def test_subset_keeps_the_first_of_each_family():
    data = cmd.subset_sequences(_data(3, 4), [0, 3, 4])
    assert data.num_sequences == 3 and list(np.unique(data.sequence)) == [0, 1, 2]
    assert [ev.sequence_families(data)[i] for i in range(3)] == ["standing", "seated", "seated"]
    assert len(data.positions_3d) == 12


def _args(tmp_path, data_path, **kw):
    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    argv = ["--data", str(data_path), "--weights-dir", str(tmp_path / "w"),
            "--json", str(tmp_path / "out.json")]  # fmt: skip
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", *([v] if isinstance(v, str) else v)]
    return p.parse_args(argv)


def test_cli_poses_and_lens_table(tiny_weights, tmp_path, fake_lens_adapt):
    torch.set_num_threads(1)
    (tmp_path / "w").mkdir()
    for name in ("baseline", "augmented"):
        shutil.copy(tiny_weights, tmp_path / "w" / f"{name}.pt")
    d = _data(2, 40)
    path = tmp_path / "d.npz"
    save_external(path, d.positions_3d, d.sequence, d.fps, d.intrinsics, d.image_size,
                  names=d.names)  # fmt: skip
    args = _args(tmp_path, path, lens="division:-0.3")
    args.poses = True
    assert cmd.run(args) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["lens"] == "division:-0.3" and out["masks"] == ["none", "legs", "lower_body"]
    assert {r["model"] for r in out["results"]} == {"baseline", "augmented"}
    assert [t["model"] for t in out["targets"]] == ["baseline", "augmented"]
    assert (tmp_path / "out.md").read_text().startswith("| model | family |")

    args = _args(tmp_path, path, lens=["none@hfov=150", "brown:0.3"],
                 methods=["augmented", "oracle"], adapt=["lens"], adapt_models=["augmented"],
                 adapt_seconds="3")  # fmt: skip
    assert cmd.run(args) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    methods = {(r["lens"], r["method"]) for r in out["results"]}
    assert ("none@hfov=150", "augmented+lens") in methods and len(methods) == 6
    assert (tmp_path / "out.png").is_file()

    args = _args(tmp_path, path, lens=["none", "strong"])
    args.poses = True
    with pytest.raises(DistposeError, match="one --lens"):
        cmd.run(args)


def test_cli_evaluates_detections_with_unseen_joints(tiny_weights, tmp_path):
    """keypoints_2d with NaN (unseen joints) load, and both tables score them as unseen."""
    torch.set_num_threads(1)
    (tmp_path / "w").mkdir()
    shutil.copy(tiny_weights, tmp_path / "w" / "augmented.pt")
    d = _data(1, 40)
    kp = K90.to_pixels(d.positions_3d[..., :2] / d.positions_3d[..., 2:])
    kp[:, 7] = np.nan  # Spine: a detector without that joint
    kp[10:20, 13] = np.nan  # a wrist lost for ten frames
    path = tmp_path / "d.npz"
    save_external(path, d.positions_3d, d.sequence, d.fps, d.intrinsics, d.image_size,
                  keypoints_2d=kp, names=d.names)  # fmt: skip
    args = _args(tmp_path, path, lens="none", methods=["augmented"], input_2d="detections",
                 masks=["legs"])  # fmt: skip
    args.poses, args.models = True, ["augmented"]
    assert cmd.run(args) == 0
    rows = json.loads((tmp_path / "out.json").read_text())["results"]
    got = next(r for r in rows if r["family"] == "all" and r["mask"] == "none")
    # Independent recomputation: every sequence lifted with its NaN joints as unseen.
    model = load_checkpoint(tiny_weights)[0].eval()
    gt = d.positions_3d - d.positions_3d[:, :1]
    errs = []
    for s in range(d.num_sequences):
        sel = d.sequence == s
        x = np.stack([kp[sel, :, 0] / W * 2 - 1, kp[sel, :, 1] / W * 2 - H / W], axis=-1)
        errs.append(np.linalg.norm(ev.lift(model, x, 30.0) - gt[sel], axis=-1))
    assert got["mpjpe_mm"] == pytest.approx(1000 * np.concatenate(errs).mean(), rel=1e-5)
    # The lens table (evaluation and adaptation halves) runs on them too, noise included.
    args = _args(tmp_path, path, lens=["none", "mild"], methods=["augmented", "oracle"],
                 input_2d="detections", noise_px="2")  # fmt: skip
    shutil.copy(tiny_weights, tmp_path / "w" / "baseline.pt")
    assert cmd.run(args) == 0
    rows = json.loads((tmp_path / "out.json").read_text())["results"]
    assert len(rows) == 4 and all(math.isfinite(r["mpjpe_mm"]) for r in rows)
