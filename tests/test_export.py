"""BVH / CSV export: round trips through the project's BVH reader, continuity, gaps, sidecars,
atomic writes, and the One Euro filter."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from distpose_app.core.errors import DistposeError
from distpose_app.core.rotations import euler_to_matrix, matrix_to_euler
from distpose_app.core.skeleton import BONES, PARENTS, bone_lengths
from distpose_app.data.bvh import forward_kinematics, read_bvh
from distpose_app.export import (
    BVH_JOINT_NAMES,
    ExportOptions,
    Recording,
    csv_columns,
    export_recording,
    one_euro_filter,
    prepare_motion,
    unwrap_euler,
)
from distpose_app.export import skeleton_fit as fit

FPS = 30.0
LENGTHS = fit.DEFAULT_BONE_LENGTHS
RAW = ExportOptions(one_euro=False, align_world=False, smooth_root=False)


# ---------------------------------------------------------------------------------------
# Synthetic motion, built in world axes (X subject's left, Y up, Z forward/towards camera)
# ---------------------------------------------------------------------------------------
def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


STAND = {12: (0.05, -1, 0.1), 13: (0, -1, 0.6), 15: (-0.05, -1, 0.1), 16: (0, -1, 0.6)}
SIDE = {12: (1, 0.1, 0.1), 13: (1, 0.2, 0.5), 15: (-1, 0.1, 0.1), 16: (-1, 0.2, 0.5)}
OVERHEAD = {12: (0.1, 1, 0), 13: (0, 1, 0.2), 15: (-0.1, 1, 0), 16: (0, 1, 0.2)}
SQUAT = {
    2: (-0.2, -0.15, 1),
    3: (0, -1, -0.35),
    5: (0.2, -0.15, 1),
    6: (0, -1, -0.35),
    7: (0, 1, 0.6),
    8: (0, 1, 0.3),
    9: (0, 1, 0.2),
    12: (-0.4, -0.2, 1),  # reaching forward and across the body
    13: (-0.3, 0, 1),
    15: (0.4, -0.2, 1),
    16: (0.3, 0, 1),
}


def _directions(key):
    dirs = fit.REST_DIRECTIONS.copy()
    for j, d in key.items():
        dirs[j] = _unit(d)
    return dirs


def _pose(dirs, yaw=0.0):
    """Chain the bone directions (17, 3) with LENGTHS, turn by `yaw` about Y, feet on floor."""
    pos = np.zeros((17, 3))
    lengths = fit.joint_lengths(LENGTHS)
    for j in range(1, 17):
        pos[j] = pos[PARENTS[j]] + lengths[j] * _unit(dirs[j])
    c, s = np.cos(yaw), np.sin(yaw)
    pos = pos @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
    pos[:, 1] -= pos[[3, 6], 1].min()
    return pos


def synthetic_world(frames=120):
    """Stand -> arms out -> arms overhead -> deep squat reaching across -> stand, turning 360
    degrees about the vertical."""
    keys = [_directions(k) for k in (STAND, SIDE, OVERHEAD, SQUAT, STAND)]
    out = []
    for i in range(frames):
        u = 4 * i / (frames - 1)
        k = min(int(u), 3)
        w = 0.5 - 0.5 * np.cos(np.pi * (u - k))
        dirs = (1 - w) * keys[k] + w * keys[k + 1]
        dirs[0] = 0
        pose = _pose(dirs, yaw=2 * np.pi * i / (frames - 1))
        pose[:, 0] += 0.5 * np.sin(i / 20)  # some global trajectory
        out.append(pose)
    return np.array(out)


def world_to_camera(world, depth=3.0):
    """Inverse of fit.camera_to_world, placing the subject `depth` metres in front."""
    cam = world * np.array([1.0, -1.0, -1.0])
    cam[..., 2] += depth
    return cam


def make_recording(world, fps=FPS, **kwargs):
    F = len(world)
    return Recording(
        positions=world_to_camera(world),
        timestamps_s=np.arange(F) / fps,
        confidence=np.full((F, 17), 0.9),
        metadata=kwargs.pop("metadata", {}),
        **kwargs,
    )


def read_back(path):
    """(FK positions (F, 17, 3) in the file's units, Bvh) through the project's reader."""
    bvh = read_bvh(path)
    positions, _ = forward_kinematics(bvh)
    order = [bvh.names.index(name) for name in BVH_JOINT_NAMES]
    return np.asarray(positions)[:, order], bvh


def rotation_channels(bvh):
    """(F, 17*3) degrees: the rotation channels of the motion block."""
    motion = np.asarray(bvh.motion)
    return np.concatenate([motion[:, 3:6], motion[:, 6:]], axis=1)


# ---------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["ZXY", "ZYX", "XYZ"])
def test_round_trip_synthetic_extreme_poses(tmp_path, order):
    world = synthetic_world()
    rec = make_recording(world)
    options = ExportOptions(
        one_euro=False, align_world=False, smooth_root=False, channel_order=order
    )
    out = export_recording(rec, tmp_path / "take.bvh", tmp_path / "take.csv", options)
    back, bvh = read_back(out["bvh"])
    # The input is already a rigid skeleton: BVH -> FK gives the input back (cm -> m).
    expected = fit.camera_to_world(rec.positions)
    assert np.abs(back / 100.0 - expected).max() < 1e-3
    assert bvh.channels[0][:3] == ["Xposition", "Yposition", "Zposition"]
    assert all(ch == [f"{a}rotation" for a in order] for ch in bvh.channels[1:])
    # The CSV carries the same positions in metres.
    df = pd.read_csv(out["csv"])
    csv = df[[f"{n}_{a}" for n in BVH_JOINT_NAMES for a in "xyz"]].to_numpy().reshape(-1, 17, 3)
    assert np.abs(csv - back / 100.0).max() < 1e-3
    # Continuous angles (fast only near gimbal lock); with Y outermost or innermost the
    # 360-degree turn accumulates in the root's Y channel instead of wrapping.
    angles = rotation_channels(bvh)
    assert np.abs(np.diff(angles, axis=0)).max() < 90.0
    if order[1] != "Y":
        assert np.ptp(angles[:, order.index("Y")]) > 350.0


def test_round_trip_default_cleanup_noisy(tmp_path):
    """With every clean-up on and noisy, non-rigid input, the BVH reproduces the exported
    (rigid, aligned, filtered) positions, which the CSV holds, within 1 mm."""
    rng = np.random.default_rng(1)
    world = synthetic_world(90) + rng.normal(0, 0.01, (90, 17, 3))
    rec = make_recording(world)
    out = export_recording(rec, tmp_path / "a.bvh", tmp_path / "a.csv")
    back, bvh = read_back(out["bvh"])
    motion = prepare_motion(rec, ExportOptions())
    assert np.abs(back / 100.0 - motion.positions).max() < 1e-3
    df = pd.read_csv(out["csv"])
    csv = df[[f"{n}_{a}" for n in BVH_JOINT_NAMES for a in "xyz"]].to_numpy().reshape(-1, 17, 3)
    assert np.abs(csv - back / 100.0).max() < 1e-3
    lengths = bone_lengths(csv)
    assert np.ptp(lengths, axis=0).max() < 1e-5  # rigid: constant bone lengths
    assert np.abs(np.diff(rotation_channels(bvh), axis=0)).max() < 180.0


def test_round_trip_real_mocap(tmp_path, bandai_archive):
    from distpose_app.data import mocap

    sequences = mocap.iter_bandai_archive(bandai_archive, progress=False)
    try:
        world = np.asarray(next(sequences).positions, dtype=float)[:300]
    finally:
        sequences.close()
    rec = make_recording(world)
    out = export_recording(rec, tmp_path / "m.bvh", tmp_path / "m.csv")
    back, bvh = read_back(out["bvh"])
    motion = prepare_motion(rec, ExportOptions())
    assert np.isfinite(back).all()
    assert np.abs(back / 100.0 - motion.positions).max() < 1e-3
    assert np.abs(np.diff(rotation_channels(bvh), axis=0)).max() < 180.0
    # The rigid fit stays close to the real motion (same frame after alignment).
    fitted = prepare_motion(rec, RAW).positions
    error = np.linalg.norm(fitted - fit.camera_to_world(rec.positions), axis=-1)
    assert np.median(error) < 0.005 and np.percentile(error, 95) < 0.02
    assert abs(bvh.frame_time - 1 / FPS) < 1e-6


# ---------------------------------------------------------------------------------------
# BVH structure, frame time, units, options
# ---------------------------------------------------------------------------------------
def test_bvh_hierarchy_and_frame_time(tmp_path):
    world = synthetic_world(40)
    F = len(world)
    t = np.cumsum(np.full(F, 0.04) + np.random.default_rng(0).uniform(-0.004, 0.004, F))
    rec = Recording(world_to_camera(world), t)
    path = export_recording(rec, bvh_path=tmp_path / "t.bvh", options=RAW)["bvh"]
    text = path.read_text()
    _, bvh = read_back(path)
    assert list(bvh.names) == list(BVH_JOINT_NAMES)
    assert [BVH_JOINT_NAMES.index(bvh.names[p]) if p >= 0 else -1 for p in bvh.parents] == list(
        PARENTS
    )
    assert len(bvh.channels[0]) == 6 and all(len(c) == 3 for c in bvh.channels[1:])
    assert text.count("End Site") == 5
    assert abs(bvh.frame_time - np.median(np.diff(t))) < 1e-6
    assert np.asarray(bvh.motion).shape == (F, 6 + 16 * 3)
    # T-pose rest offsets: lengths in cm, left = right, hips on the X axis, legs down.
    offsets = np.asarray(bvh.offsets)
    lengths = np.linalg.norm(offsets[1:], axis=1)
    assert np.allclose(lengths, LENGTHS * 100, atol=1e-4)
    assert np.allclose(offsets[4], -offsets[1]) and offsets[4][0] > 0
    assert offsets[2][1] < 0 and offsets[7][1] > 0


def test_units_and_bad_options(tmp_path):
    rec = make_recording(synthetic_world(20))
    out = export_recording(rec, tmp_path / "m.bvh", options=ExportOptions(units="m"))
    back, _ = read_back(out["bvh"])
    assert 0.7 < back[:, 0, 1].mean() < 1.1  # hips about 0.9 m above the floor, in metres
    with pytest.raises(DistposeError, match="YXZ"):
        export_recording(rec, tmp_path / "x.bvh", options=ExportOptions(channel_order="YXZ"))
    with pytest.raises(DistposeError, match="inch"):
        export_recording(rec, tmp_path / "x.bvh", options=ExportOptions(units="inch"))
    with pytest.raises(DistposeError, match="nothing to export"):
        export_recording(rec)
    assert not (tmp_path / "x.bvh").exists()


def test_world_alignment_tilted_camera(tmp_path):
    """A camera pitched down by 25 degrees: the export stands upright on the floor, facing +Z,
    travels as the person did, the camera above the origin; the sidecar's camera is pitched."""
    world = synthetic_world(60)
    a = np.radians(25)
    tilt = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rec = Recording(world_to_camera(world) @ tilt.T, np.arange(60) / FPS)
    options = ExportOptions(one_euro=False, smooth_root=False, plant_feet=False)
    motion = prepare_motion(rec, options)
    P = motion.positions
    # Up from the planted foot's plane, pulled towards the body's up (this motion squats,
    # leans and turns on the spot, so the feet spread little): within 2 degrees.
    camera = motion.world.camera_info()
    assert abs(camera["pitch_deg"] - 25.0) < 2.0 and abs(camera["roll_deg"]) < 2.0
    assert np.abs(P[..., 1] - world[..., 1]).max() < 0.03  # heights above the true floor
    # the camera (at floor level in this scene) stands above the origin, the person 3 m away
    np.testing.assert_allclose(camera["position_m"], [0.0, 0.0, 0.0], atol=0.05)
    np.testing.assert_allclose(P[0, 0, [0, 2]], [0.0, -3.0], atol=0.1)
    travel = P[:, 0, 0] - P[0, 0, 0]
    assert np.abs(travel - (world[:, 0, 0] - world[0, 0, 0])).max() < 0.01
    # Facing: at frame 0 (no turn yet) the pelvis' forward (left x up) is +Z.
    forward = np.cross(P[0, 4] - P[0, 1], P[0, 7] - P[0, 0])
    assert _unit(forward)[2] > 0.95
    assert not motion.root_locked and motion.has_trajectory
    locked = prepare_motion(rec, ExportOptions(root_lock=True))
    assert locked.root_locked and not locked.feet_planted
    assert np.abs(locked.positions[:, 0, [0, 2]]).max() < 1e-9
    assert np.ptp(locked.positions[:, 0, 1]) > 0.2  # the squat still moves the hips down


# ---------------------------------------------------------------------------------------
# CSV and sidecar
# ---------------------------------------------------------------------------------------
def test_csv_columns_units_and_sidecar(tmp_path):
    world = synthetic_world(30)
    meta = {
        "source": {"kind": "camera", "index": 0},
        "lens": {"state": "adapted", "statistics": {"steps": 50, "loss_before": 0.2}},
        "model": {"name": "distpose-81", "version": "1.0"},
    }
    rec = make_recording(world, metadata=meta)
    seen = []
    out = export_recording(
        rec, tmp_path / "s.bvh", tmp_path / "s.csv", RAW, progress=lambda f, m: seen.append(f)
    )
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    df = pd.read_csv(out["csv"])
    assert list(df.columns) == csv_columns()
    assert list(df.columns[:5]) == ["frame", "timestamp_s", "Hips_x", "Hips_y", "Hips_z"]
    assert len(df) == 30 and list(df["frame"]) == list(range(30))
    assert np.allclose(df["timestamp_s"], np.arange(30) / FPS, atol=1e-6)
    assert np.allclose(df["LeftArm_conf"], 0.9) and set(df["tracked"]) == {1}
    xyz = df[[f"{n}_{a}" for n in BVH_JOINT_NAMES for a in "xyz"]].to_numpy().reshape(-1, 17, 3)
    # Metres, Y up: the thigh is 0.45 m long and the head is above the hips.
    assert np.allclose(bone_lengths(xyz)[:, BONES.index((1, 2))], 0.45, atol=1e-5)
    assert (df["Head_y"] > df["Hips_y"]).all()
    for key in ("bvh", "csv"):
        side = out[f"{key}_sidecar"]
        assert side.name == f"s.{key}.json"
        info = json.loads(side.read_text())
        for field in (
            "units",
            "axes",
            "frame_rate_hz",
            "skeleton",
            "source",
            "lens",
            "model",
            "distpose_version",
        ):
            assert field in info, field
        assert info["skeleton"]["names"] == list(BVH_JOINT_NAMES)
        assert info["skeleton"]["parents"] == list(PARENTS)
        assert info["lens"]["state"] == "adapted" and info["lens"]["statistics"]["steps"] == 50
        assert info["model"]["name"] == "distpose-81"
        assert info["source"]["kind"] == "camera"
        assert abs(info["frame_rate_hz"] - FPS) < 1e-6
    assert json.loads(out["bvh_sidecar"].read_text())["units"] == "cm"
    assert json.loads(out["csv_sidecar"].read_text())["units"] == "m"


def test_seen_flags_reach_the_csv_and_the_sidecars(tmp_path):
    world = synthetic_world(40)
    tracked = np.ones(40, dtype=bool)
    tracked[30:35] = False  # a short gap: interpolated rows have no seen joint
    seen = np.ones((40, 17), dtype=bool)
    seen[:, [2, 3, 5, 6]] = False  # knees and ankles never seen (under a desk)
    seen[:10, 0] = False  # the pelvis seen in 20 of the 35 tracked frames
    seen[20:30, 0] = False
    rec = make_recording(world, tracked=tracked, seen=seen)
    rec.positions[~tracked] = np.nan
    out = export_recording(rec, tmp_path / "p.bvh", tmp_path / "p.csv", RAW)
    df = pd.read_csv(out["csv"])
    names = [f"{n}_seen" for n in BVH_JOINT_NAMES]
    # the seen columns follow the older ones; only the two contact columns come after them
    assert list(df.columns) == csv_columns() and list(df.columns[-19:-2]) == names
    flags = df[names].to_numpy()
    assert set(np.unique(flags)) == {0, 1}
    np.testing.assert_array_equal(flags.astype(bool), seen & tracked[:, None])
    assert df["interpolated"][30:35].all() and (flags[30:35] == 0).all()
    # positions of unseen joints are still written (the lifter's estimate)
    assert np.isfinite(df[["RightLeg_x", "RightFoot_y"]].to_numpy()[tracked]).all()
    csv_info = json.loads(out["csv_sidecar"].read_text())["seen"]
    fraction = csv_info["fraction_of_tracked_frames"]
    assert fraction["Hips"] == pytest.approx(15 / 35, abs=1e-4)
    assert fraction["RightLeg"] == 0 and fraction["Head"] == 1
    assert csv_info["tracked_frames"] == 35 and "_seen" in csv_info["columns"]
    bvh_info = json.loads(out["bvh_sidecar"].read_text())["seen"]
    assert "BVH cannot carry" in bvh_info["note"] and bvh_info["columns"] is None
    assert bvh_info["fraction_of_tracked_frames"] == fraction
    # without flags, a recording counts joints with a confidence as seen
    rec = Recording(world_to_camera(world[:5]), np.arange(5) / FPS,
                    np.tile(np.linspace(0, 1, 17), (5, 1)))  # fmt: skip
    assert rec.seen.sum(axis=1).tolist() == [16] * 5 and not rec.seen[:, 0].any()
    with pytest.raises(DistposeError, match="seen flags"):
        make_recording(world[:5], seen=np.ones((5, 16), bool))


# ---------------------------------------------------------------------------------------
# Gaps
# ---------------------------------------------------------------------------------------
def test_gaps_short_interpolated_long_kept(tmp_path):
    world = synthetic_world(120)
    rec = make_recording(world)
    tracked = np.ones(120, dtype=bool)
    tracked[:3] = False  # leading gap: cannot be interpolated
    tracked[20:25] = False  # 5 frames = 0.17 s: interpolated
    tracked[50:80] = False  # 30 frames = 1 s: kept as a gap
    rec.positions[~tracked] = np.nan
    rec.tracked = tracked
    rec.confidence[~tracked] = 0.0
    out = export_recording(rec, tmp_path / "g.bvh", tmp_path / "g.csv", RAW)
    assert out["interpolated_frames"] == 5 and out["gap_frames"] == 33
    df = pd.read_csv(out["csv"])
    assert len(df) == 120  # no frame dropped
    assert list(df["tracked"]) == tracked.astype(int).tolist()
    assert df["interpolated"].sum() == 5 and df["interpolated"][20:25].all()
    pos = df[[c for c in df.columns if c[-2:] in ("_x", "_y", "_z")]].to_numpy()
    assert np.isnan(pos[50:80]).all() and np.isnan(pos[:3]).all()
    assert np.isfinite(pos[3:50]).all() and np.isfinite(pos[80:]).all()
    # Interpolated hips move linearly in time between the neighbouring tracked frames.
    hips = df[["Hips_x", "Hips_y", "Hips_z"]].to_numpy()
    w = (np.arange(20, 25) - 19) / 6
    assert np.allclose(hips[20:25], (1 - w[:, None]) * hips[19] + w[:, None] * hips[25], atol=1e-5)
    # BVH: every frame present, long gaps hold the last tracked pose.
    back, bvh = read_back(out["bvh"])
    assert len(back) == 120 and np.isfinite(back).all()
    assert np.abs(back[50:80] - back[49]).max() < 1e-3
    assert np.abs(back[:3] - back[3]).max() < 1e-3
    # A longer max_gap_s interpolates the long gap too.
    opts = ExportOptions(one_euro=False, align_world=False, smooth_root=False, max_gap_s=1.5)
    assert export_recording(rec, csv_path=tmp_path / "h.csv", options=opts)["gap_frames"] == 3


@pytest.mark.parametrize(
    "case", ["all_nan", "single_frame", "one_point", "collinear", "zero_bones", "garbage"]
)
def test_never_nan(tmp_path, case):
    rng = np.random.default_rng(2)
    F = 1 if case == "single_frame" else 12
    pos = world_to_camera(synthetic_world(12))[:F].copy()
    if case == "all_nan":
        pos[:] = np.nan
    elif case == "one_point":
        pos[:] = 1.0
    elif case == "collinear":
        pos[:] = np.linspace(0, 1, 17)[None, :, None] * np.array([0.0, 1.0, 0.0])
    elif case == "zero_bones":
        pos[:, [2, 3, 12, 13]] = pos[:, [1, 1, 11, 11]]
    elif case == "garbage":
        pos = rng.normal(0, 1, pos.shape)
        pos[3, 5] = np.inf
        pos[7] = np.nan
    rec = Recording(pos, np.arange(F) / FPS)
    for order in ("ZXY", "XYZ"):
        opts = ExportOptions(channel_order=order)
        out = export_recording(rec, tmp_path / f"n{order}.bvh", tmp_path / f"n{order}.csv", opts)
        text = out["bvh"].read_text().lower()
        assert "nan" not in text and "inf" not in text
        back, bvh = read_back(out["bvh"])
        assert np.isfinite(back).all() and np.isfinite(np.asarray(bvh.motion)).all()
        assert len(back) == F
        json.loads(out["bvh_sidecar"].read_text())
        assert len(pd.read_csv(out["csv"])) == F


# ---------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------
def test_atomic_write_failure_leaves_no_file(tmp_path, monkeypatch):
    rec = make_recording(synthetic_world(10))
    target = tmp_path / "take.bvh"

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(DistposeError, match="take.bvh"):
        export_recording(rec, target)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one
    monkeypatch.undo()
    # An existing file under the name survives a failed overwrite untouched.
    target.write_text("previous")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(13, "denied")))
    with pytest.raises(DistposeError):
        export_recording(rec, target)
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.bvh"]


def test_missing_folder_named(tmp_path):
    rec = make_recording(synthetic_world(5))
    missing = tmp_path / "nope" / "take.csv"
    with pytest.raises(DistposeError, match="nope"):
        export_recording(rec, csv_path=missing)


# ---------------------------------------------------------------------------------------
# Euler unwrapping, One Euro
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["ZXY", "ZYX", "XYZ"])
def test_unwrap_euler_continuous_same_rotations(order):
    # A spin about each axis in turn, through gimbal-free and wrapping territory.
    t = np.linspace(0, 1, 200)[:, None]
    angles = np.concatenate([4 * np.pi * t, 0.6 * np.sin(6 * t), 3 * np.pi * t], axis=1)
    R = euler_to_matrix(angles, order)
    raw = matrix_to_euler(R, order)
    unwrapped = unwrap_euler(raw)
    assert np.abs(np.diff(unwrapped, axis=0)).max() < np.radians(30)
    assert np.allclose(euler_to_matrix(unwrapped, order), R, atol=1e-9)


def test_one_euro_reduces_jitter_and_follows_step():
    rng = np.random.default_rng(3)
    F = 300
    t = np.arange(F) / FPS
    clean = np.where(t < 5.0, 0.0, 0.3)[:, None, None] * np.ones((F, 1, 3))
    noisy = clean + rng.normal(0, 0.005, clean.shape)
    out = one_euro_filter(noisy, t, min_cutoff_hz=1.0, beta=1.5)
    still = slice(30, 140)
    assert np.std(np.diff(out[still], axis=0)) < 0.25 * np.std(np.diff(noisy[still], axis=0))
    assert np.abs(out[still] - clean[still]).std() < 0.5 * np.abs(noisy - clean)[still].std()
    after = int(5.3 * FPS)  # 0.3 s after the 30 cm step it is within 2 cm
    assert np.abs(out[after:] - 0.3).max() < 0.02


def test_one_euro_without_beta_is_exponential_smoothing():
    """beta = 0: a first-order low-pass with alpha = 1 / (1 + tau / dt), tau = 1 / (2 pi fc)."""
    from scipy.signal import lfilter

    x = np.random.default_rng(4).normal(size=(50, 1, 1))
    t = np.arange(50) / FPS
    alpha = 1.0 / (1.0 + FPS / (2 * np.pi * 2.0))
    ref = lfilter([alpha], [1, alpha - 1], x[1:, 0, 0], zi=[(1 - alpha) * x[0, 0, 0]])[0]
    out = one_euro_filter(x, t, min_cutoff_hz=2.0, beta=0.0)
    assert np.allclose(out[1:, 0, 0], ref) and out[0, 0, 0] == x[0, 0, 0]


def test_one_euro_restarts_after_gap():
    t = np.arange(20) / FPS
    x = np.zeros((20, 1, 3))
    x[10:] = 1.0
    valid = np.ones(20, dtype=bool)
    valid[8:10] = False
    out = one_euro_filter(x, t, valid=valid)
    assert np.allclose(out[10], 1.0)  # no lag carried across the gap


def test_exported_files_get_ordinary_permissions(tmp_path):
    from distpose_app.core.fileio import write_atomic

    old = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "take.csv", "frame\n0\n")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # readable by others, like any saved file
