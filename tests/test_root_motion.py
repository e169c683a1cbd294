"""Root motion: the translation solve, trajectory smoothing, the floor and world frame, foot
contacts and planting, frame-rate resampling, root lock, and what the files carry."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest

from distpose_app.core.timing import GridResampler, frame_rate, grid_times, interpolate_at
from distpose_app.data.bvh import forward_kinematics, read_bvh
from distpose_app.export import (
    BVH_JOINT_NAMES,
    ExportOptions,
    Recording,
    csv_columns,
    export_recording,
    prepare_motion,
    resample_recording,
)
from distpose_app.export import skeleton_fit as fit
from distpose_app.export.contacts import PLANT_CONTACT, detect_contacts, plant_feet, two_bone_ik
from distpose_app.export.ground import estimate_world, ground_normal
from distpose_app.export.trajectory import (
    RootFilter,
    pixel_rays,
    smooth_trajectory,
    solve_root_translation,
)
from distpose_app.live import recovery

FPS = 30.0
K = np.array([640.0, 640.0, 640.0, 360.0])  # a 90 degree 1280x720 webcam


def _unit(v):
    return np.asarray(v, float) / np.linalg.norm(v)


def walker(frames=90, speed=1.0, fps=FPS):
    """A rigid-skeleton walk in world metres (Y up, floor at y = 0, ankles on it when planted):
    the root moves along +X at `speed` m/s, the feet alternate between planted (still, on the
    floor) and swinging (twice the body's speed, lifted 8 cm). Returns (positions (F, 17, 3),
    true contacts (F, 2) right, left)."""
    t = np.arange(frames) / fps
    step = 0.5  # seconds per step: each foot plants for one step, swings for the next
    rest = fit.rest_pose(fit.DEFAULT_BONE_LENGTHS)
    rest[:, 1] -= rest[[3, 6], 1].min()
    out = np.repeat(rest[None], frames, axis=0)
    root_x = speed * t
    out[..., 0] += root_x[:, None]
    contacts = np.zeros((frames, 2), bool)
    for k, (ankle, phase) in enumerate(((3, 0.0), (6, 1.0))):
        cycle = (t / step + phase) % 2.0  # [0, 1): planted, [1, 2): swinging
        planted = cycle < 1.0
        contacts[:, k] = planted
        # where the foot stands: the root's position at the middle of its planted step
        start = t - cycle * step
        foot_x = np.where(
            planted,
            speed * (start + 0.5 * step),
            speed * (start + 0.5 * step) + 2 * speed * step * (cycle - 1.0),
        )
        out[:, ankle, 0] = foot_x + rest[ankle, 0]
        out[:, ankle, 1] = np.where(planted, 0.0, 0.08 * np.sin(np.pi * (cycle - 1.0)))
        # knee half way between hip and ankle, pushed forward: lengths are not kept here (the
        # exporter's rigid fit restores them); this is about where the ankle goes
        out[:, ankle - 1] = 0.5 * (out[:, ankle - 2] + out[:, ankle]) + np.array([0, 0, 0.05])
    return out, contacts


def camera_view(world, pitch_deg=15.0, height=1.2, distance=4.0):
    """World metres -> camera metres (x right, y down, z forward) for a camera `distance` m in
    front of the start (+Z side), `height` m up, looking back at -Z and pitched down."""
    a = np.radians(pitch_deg)
    # world -> level camera: x = X, y = -(Y - height), z = -(Z - distance)
    level = np.array([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])
    pitch = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    R = pitch @ level
    centre = np.array([0.5, height, distance])
    return (world - centre) @ R.T, R, centre


def project(cam):
    return cam[..., :2] / cam[..., 2:3] * K[:2] + K[2:]


# ---------------------------------------------------------------------------------------
# Translation solve and smoothing
# ---------------------------------------------------------------------------------------
def test_solve_recovers_the_translation_from_exact_data():
    world, _ = walker(20)
    cam, _, _ = camera_view(world)
    rays = pixel_rays(project(cam), K)
    relative = cam - cam[:, :1]
    T, ok = solve_root_translation(relative, rays)
    assert ok.all()
    np.testing.assert_allclose(T, cam[:, 0], atol=1e-9)


def test_solve_with_partial_views_an_outlier_and_too_few_joints():
    world, _ = walker(10)
    cam, _, _ = camera_view(world)
    rays = pixel_rays(project(cam), K)
    relative = cam - cam[:, :1]
    upper = rays.copy()
    upper[:, :7] = np.nan  # hips and legs out of the picture: the upper body alone
    T, ok = solve_root_translation(relative, upper)
    assert ok.all()
    np.testing.assert_allclose(T, cam[:, 0], atol=1e-9)
    wrong = rays.copy()
    wrong[:, 13] += 0.05  # one wrist detected 32 px off
    plain, _ = solve_root_translation(relative, wrong, iterations=1)
    robust, _ = solve_root_translation(relative, wrong)
    err = lambda T: np.linalg.norm(T - cam[:, 0], axis=-1).max()  # noqa: E731
    assert err(robust) < 0.3 * err(plain)
    few = np.full_like(rays, np.nan)
    few[:, [11, 14]] = rays[:, [11, 14]]  # two joints: not enough
    T, ok = solve_root_translation(relative, few)
    assert not ok.any() and np.isnan(T).all()


def test_smoothing_keeps_a_steady_walk_and_removes_depth_jitter():
    t = np.arange(90) / FPS
    truth = np.stack([0.8 * t - 0.5, 0.3 + 0 * t, 3.0 + 0.5 * t], axis=-1)
    np.testing.assert_allclose(smooth_trajectory(truth, t), truth, atol=1e-3)
    rng = np.random.default_rng(0)
    noisy = truth * (1 + 0.03 * rng.standard_normal(90))[:, None]  # 3 % depth (scale) noise
    noisy[40] *= 1.5  # one wild depth
    smooth = smooth_trajectory(noisy, t)
    err = lambda x: np.linalg.norm(x - truth, axis=-1).mean()  # noqa: E731
    assert err(smooth) < 0.5 * err(noisy)
    # the image position is kept: smoothing depth moves the root along its ray
    ray = lambda x: x[:, :2] / x[:, 2:]  # noqa: E731
    assert np.abs(ray(smooth) - ray(noisy)).max() < 0.03


def test_live_root_filter_follows_without_lag_and_holds_through_nan():
    f = RootFilter()
    t = np.arange(60) / FPS
    out = [f(ti, np.array([0.5 * ti, 0.2, 3.0])) for ti in t]
    assert abs(out[-1][0] - 0.5 * t[-1]) < 0.05  # a steady move is followed closely
    held = f(2.1, np.array([np.nan, 0, 3.0]))
    np.testing.assert_allclose(held, out[-1])


# ---------------------------------------------------------------------------------------
# Floor and world frame
# ---------------------------------------------------------------------------------------
def test_world_frame_from_a_walk_seen_by_a_pitched_camera():
    world, _ = walker(120)
    cam, R, centre = camera_view(world, pitch_deg=20.0, height=1.5)
    frame, contacts = estimate_world(cam, np.arange(120) / FPS)
    assert frame.method == "feet" and contacts.any()
    out = frame.to_world(cam)
    # up and floor: every height as in the truth (ankles planted at 0)
    np.testing.assert_allclose(out[..., 1], world[..., 1], atol=1e-6)
    # the camera stands above the origin; the person starts 4 m in front of it (-Z), half a
    # metre to its left, and walks along +X (the camera's right), as in the video
    np.testing.assert_allclose(frame.camera_position, [0.0, 1.5, 0.0], atol=1e-9)
    np.testing.assert_allclose(out[0, 0], world[0, 0] - [0.5, 0.0, 4.0], atol=1e-6)
    np.testing.assert_allclose(out[:, 0, 0] - out[0, 0, 0], world[:, 0, 0] - world[0, 0, 0],
                               atol=1e-6)  # fmt: skip
    info = frame.camera_info()
    assert abs(info["pitch_deg"] - 20.0) < 1e-6 and abs(info["roll_deg"]) < 1e-6
    assert abs(info["height_m"] - 1.5) < 1e-6


def test_floor_follows_steps_that_climb_away_from_the_body_up():
    # The lifter's body stands upright while its steps drift upwards along the walk (its size
    # error changing with the view, as on held-out walks): the floor must follow the steps, not
    # the body's up, or the steps far from the lowest ones are never planted.
    world, truth = walker(120)  # 4 m along +X
    slope = 0.1
    sloped = world.copy()
    sloped[..., 1] += slope * world[:, :1, 0]  # the whole body rises with its root: still upright
    sloped[:, [3, 6], 1] += slope * (world[:, [3, 6], 0] - world[:, :1, 0])  # feet on the slope
    cam, R, _ = camera_view(sloped, pitch_deg=15.0, height=1.5)
    frame, contacts = estimate_world(cam, np.arange(120) / FPS)
    floor_up_world = _unit([-slope, 1.0, 0.0])
    angle = np.degrees(np.arccos(frame.rotation[1] @ (R @ floor_up_world)))
    assert angle < 0.5
    # steps at both ends of the walk are on the floor
    assert contacts[:30].any() and contacts[-30:].any()
    assert (contacts == truth).mean() > 0.9


def test_planting_contacts_accept_a_floating_still_foot():
    # The lifter's feet float up to ~12 cm during a contact; the image sees them still.
    world, truth = walker(120)
    t = np.arange(120) / FPS
    floating = world.copy()
    floating[:, 6, 1] += 0.1  # the left foot hovers 10 cm above the floor
    cam, _, _ = camera_view(world)
    rays = pixel_rays(project(cam), K)[:, [3, 6]]
    args = dict(rays=rays, depth=cam[:, [3, 6], 2])
    strict = detect_contacts(floating[:, [3, 6]], t, **args)
    assert not strict[:, 1].any()
    planting = detect_contacts(floating[:, [3, 6]], t, **args, **PLANT_CONTACT)
    assert (planting[:, 1] == truth[:, 1]).mean() > 0.9


def test_ground_normal_follows_spread_feet_and_keeps_the_prior_otherwise():
    rng = np.random.default_rng(1)
    floor = np.stack([rng.uniform(-2, 2, 200), np.zeros(200), rng.uniform(-2, 2, 200)], -1)
    tilted_prior = _unit([0.2, 1.0, 0.0])
    np.testing.assert_allclose(ground_normal(floor, tilted_prior), [0, 1, 0], atol=0.01)
    still = np.stack([rng.normal(0, 0.02, 200), np.zeros(200), rng.normal(0, 0.02, 200)], -1)
    assert ground_normal(still, tilted_prior) @ tilted_prior > 0.999


# ---------------------------------------------------------------------------------------
# Contacts and planting
# ---------------------------------------------------------------------------------------
def test_contacts_found_from_3d_and_from_the_image():
    world, truth = walker(120)
    t = np.arange(120) / FPS
    found = detect_contacts(world[:, [3, 6]], t)
    assert (found == truth).mean() > 0.9
    # the lifter's feet slide during the contact, but the image sees them still
    sliding = world.copy()
    sliding[:, [3, 6], 0] += np.where(truth, 0.6 * (t[:, None] % 0.5), 0.0)
    cam, _, _ = camera_view(world)
    rays = pixel_rays(project(cam), K)[:, [3, 6]]
    assert (detect_contacts(sliding[:, [3, 6]], t) == truth).mean() < 0.9
    with_rays = detect_contacts(sliding[:, [3, 6]], t, rays=rays, depth=cam[:, [3, 6], 2])
    assert (with_rays == truth).mean() > 0.9


def test_two_bone_ik_reaches_and_keeps_lengths():
    hip = np.zeros((1, 3))
    knee = np.array([[0.0, -0.45, 0.05]])
    target = np.array([[0.1, -0.8, 0.1]])
    new_knee, ankle = two_bone_ik(hip, knee, target, 0.45, 0.44)
    np.testing.assert_allclose(ankle, target, atol=1e-9)
    assert abs(np.linalg.norm(new_knee - hip) - 0.45) < 1e-9
    assert abs(np.linalg.norm(ankle - new_knee) - 0.44) < 1e-9
    assert new_knee[0, 2] > 0  # the knee still bends forward


def test_planting_stops_skating_and_keeps_bones():
    world, truth = walker(120)
    t = np.arange(120) / FPS
    lengths = fit.robust_bone_lengths(world)
    rigid, _ = fit.fit_skeleton(world, lengths)
    rng = np.random.default_rng(2)
    jittered = rigid.copy()
    jittered[:, [3, 6], 0] += np.where(truth, rng.normal(0, 0.02, truth.shape), 0)
    jittered[:, [3, 6], 2] += np.where(truth, rng.normal(0, 0.02, truth.shape), 0)

    def skate(P):
        v = np.linalg.norm(np.diff(P[:, [3, 6]][..., [0, 2]], axis=0), axis=-1) * FPS
        both = truth[1:] & truth[:-1]
        return v[both].mean()

    planted, shift = plant_feet(jittered, truth, lengths, t)
    assert skate(jittered) > 0.5 and skate(planted) < 1e-6
    assert np.abs(shift[:, [0, 2]]).max() == 0.0  # by default the body is not moved sideways
    assert 0.0 < -shift[:, 1].min() < 0.05  # only lowered where the straight leg falls short
    np.testing.assert_allclose(planted[..., 1][:, [3, 6]][truth], 0.0, atol=1e-6)
    bones = [(1, 2), (2, 3), (4, 5), (5, 6)]
    for a, b in bones:
        before = np.linalg.norm(rigid[:, b] - rigid[:, a], axis=-1)
        after = np.linalg.norm(planted[:, b] - planted[:, a], axis=-1)
        np.testing.assert_allclose(after, before, atol=1e-6)


def test_planted_foot_slows_into_its_contact():
    # The lifter's foot keeps sliding at 0.5 m/s through its contacts; planted, it stands on
    # its anchor, and its speed at the contact's first and last frames stays small (the fade
    # eases in and out instead of jumping into the contact's first frame).
    world, truth = walker(120)
    t = np.arange(120) / FPS
    lengths = fit.robust_bone_lengths(world)
    rigid, _ = fit.fit_skeleton(world, lengths)
    sliding = rigid.copy()
    sliding[:, [3, 6], 0] += np.where(truth, 0.5 * (t[:, None] % 0.5) - 0.125, 0.0)
    planted, _ = plant_feet(sliding, truth, lengths, t)
    speed = np.linalg.norm(np.gradient(planted[:, [3, 6]][..., [0, 2]], t, axis=0), axis=-1)
    edges = truth & ~(np.roll(truth, 1, 0) & np.roll(truth, -1, 0))
    edges[[0, -1]] = False
    assert edges.sum() >= 8
    assert speed[edges].max() < 0.1
    inner = truth & np.roll(truth, 1, 0) & np.roll(truth, -1, 0)
    assert speed[inner].max() < 1e-6


# ---------------------------------------------------------------------------------------
# Frame rates
# ---------------------------------------------------------------------------------------
def test_interpolate_at_blends_valid_neighbours_and_takes_the_nearer_otherwise():
    t = np.arange(5) / 50.0
    x = np.arange(5, dtype=float)[:, None] * np.array([[1.0, 10.0]])
    ok = np.ones((5, 2), bool)
    ok[2, 1] = False
    out, good = interpolate_at(x, ok, t, np.array([0.01, 0.035, 0.055, 0.2]))
    np.testing.assert_allclose(out[0], [0.5, 5.0])
    assert out[1, 0] == 1.75 and not good[1, 1]  # nearer to an unseen value: unknown
    assert good[2, 1] and out[2, 1] == 30.0  # nearer to the seen frame 3: its value
    assert not good[3].any()  # far after the end
    assert abs(frame_rate(t) - 50.0) < 1e-9
    np.testing.assert_allclose(grid_times(0.0, 0.1, 30.0), [0, 1 / 30, 2 / 30, 0.1])


def test_grid_resampler_passes_30_fps_through_and_resamples_other_rates():
    grid = GridResampler(30.0)
    ticks = [grid.push(i / 30.0) for i in range(10)]
    assert all(len(x) == 1 and x[0][1] == 1.0 for x in ticks)
    assert [x[0][0] for x in ticks] == [i / 30.0 for i in range(10)]
    rng = np.random.default_rng(3)
    grid.reset()
    jittered = [grid.push(i / 30.0 + rng.uniform(-0.005, 0.005)) for i in range(30)]
    assert all(len(x) == 1 for x in jittered)  # camera jitter does not drop or double frames
    grid.reset()
    fifty = [tick for i in range(51) for tick in grid.push(i / 50.0)]
    np.testing.assert_allclose([g for g, _ in fifty], np.arange(31) / 30.0, atol=1e-9)
    assert all(0 < w <= 1 for _, w in fifty)


class StandingLifter:
    """A stand-in for the streaming lifter that always lifts a standing person (camera axes,
    root-relative) and counts its inputs: a random network's poses cannot be placed."""

    receptive_field, output_lag = 1, 0

    def __init__(self):
        rest = fit.rest_pose(fit.DEFAULT_BONE_LENGTHS)
        self.pose = (rest - rest[:1]) * np.array([1.0, -1.0, -1.0])
        self.pushes = 0

    def reset(self):
        pass

    def push(self, keypoints):
        self.pushes += 1
        return self.pose.copy()


def test_pipeline_runs_the_lifter_at_30_fps_for_a_60_fps_source(tiny_weights):
    from distpose_app.lifter.model import load_checkpoint
    from distpose_app.live.demo import DemoSource
    from distpose_app.live.pipeline import LivePipeline

    model, _ = load_checkpoint(tiny_weights, "cpu")
    size = (640, 360)
    _, px = DemoSource(size=size, draw=False).pose_at(np.arange(120) / 60.0)
    pipe = LivePipeline(model, "cpu", size=size)
    pipe.lifter = StandingLifter()
    pipe.recorder.recovery_dir = None
    pipe.recorder.start({})
    results = [pipe.process_keypoints(k, None, i / 60.0, i) for i, k in enumerate(px)]
    pipe.flush()
    rec = pipe.recorder.stop()
    assert abs(frame_rate(rec.timestamps_s) - 30.0) < 1e-6 and 59 <= rec.num_frames <= 61
    assert pipe.lifter.pushes == rec.num_frames  # the lifter saw 30 frames a second
    assert abs(rec.metadata["timing"]["source_frame_rate_hz"] - 60.0) < 1e-6
    assert all(r.pose_3d is not None for r in results[1:])  # every input shows a pose
    shown = [r for r in results if r.root_3d is not None]
    assert shown and all(np.isfinite(r.root_3d).all() and r.root_3d[2] > 0 for r in shown)
    # recorded rows are the pose placed at its root, with the 2D's rays beside it
    assert np.abs(rec.positions[rec.tracked, 0]).max() > 0.1
    assert np.isfinite(rec.rays[rec.tracked][:, 0]).all()


def test_resample_recording_back_to_the_source_frames():
    t30 = np.arange(31) / 30.0
    pos = np.zeros((31, 17, 3))
    pos[..., 0] = t30[:, None]
    tracked = np.ones(31, bool)
    tracked[10] = False
    pos[10] = np.nan
    rec = Recording(pos, t30, tracked=tracked, rays=np.zeros((31, 17, 2)))
    t50 = np.arange(51) / 50.0
    out = resample_recording(rec, t50)
    assert out.num_frames == 51 and (out.timestamps_s == t50).all()
    ok = out.tracked
    gap = np.abs(t50 - 10 / 30.0)
    assert not ok[gap < 0.5 / 30.0].any() and ok[gap >= 0.5 / 30.0].all()
    away = gap > 1 / 30.0  # both neighbours tracked: interpolated
    np.testing.assert_allclose(out.positions[away, 0, 0], t50[away], atol=1e-12)
    beside = ok & ~away  # beside the gap: the nearer tracked row
    assert np.abs(out.positions[beside, 0, 0] - t50[beside]).max() <= 0.5 / 30.0 + 1e-12


# ---------------------------------------------------------------------------------------
# Exports: root motion, root lock, files
# ---------------------------------------------------------------------------------------
def _walk_recording(frames=120):
    world, truth = walker(frames)
    cam, _, _ = camera_view(world)
    rays = pixel_rays(project(cam), K)
    return Recording(cam, np.arange(frames) / FPS, rays=rays), world, truth


def test_root_motion_by_default_and_root_lock(tmp_path):
    rec, world, _ = _walk_recording()
    free = prepare_motion(rec)
    assert free.has_trajectory and not free.root_locked and free.feet_planted
    travel = free.positions[-1, 0, 0] - free.positions[0, 0, 0]
    assert abs(travel - (world[-1, 0, 0] - world[0, 0, 0])) < 0.02
    locked = prepare_motion(rec, ExportOptions(root_lock=True))
    assert locked.root_locked and not locked.feet_planted
    assert np.abs(locked.positions[:, 0, [0, 2]]).max() < 1e-9
    out = export_recording(rec, tmp_path / "l.bvh", tmp_path / "l.csv",
                           ExportOptions(root_lock=True))  # fmt: skip
    assert json.loads(out["bvh_sidecar"].read_text())["world"]["root_locked"] is True
    # a root-relative recording has no trajectory: in place, and the sidecar says so
    relative = Recording(rec.positions - rec.positions[:, :1], rec.timestamps_s)
    out = export_recording(relative, tmp_path / "r.bvh", None)
    world_info = json.loads(out["bvh_sidecar"].read_text())["world"]
    assert world_info["root_locked"] is True and "root-relative" in world_info["root_motion"]


def test_csv_and_bvh_carry_the_trajectory_and_the_contacts(tmp_path):
    rec, world, truth = _walk_recording()
    out = export_recording(rec, tmp_path / "w.bvh", tmp_path / "w.csv")
    table = pd.read_csv(out["csv"])
    assert list(table.columns) == csv_columns()
    assert list(table.columns[-2:]) == ["RightFoot_contact", "LeftFoot_contact"]
    contacts = table[["RightFoot_contact", "LeftFoot_contact"]].to_numpy() == 1
    assert (contacts == truth).mean() > 0.9
    xyz = table[[f"{n}_{a}" for n in BVH_JOINT_NAMES for a in "xyz"]].to_numpy()
    xyz = xyz.reshape(len(table), 17, 3)
    np.testing.assert_allclose(np.median(xyz[:, [3, 6], 1][contacts]), 0.0, atol=0.01)
    bvh = read_bvh(out["bvh"])
    fk, _ = forward_kinematics(bvh)
    fk = np.asarray(fk)[:, [bvh.names.index(n) for n in BVH_JOINT_NAMES]] / 100.0
    assert np.abs(fk - xyz).max() < 1e-3  # the BVH's root channels carry the trajectory
    assert np.ptp(fk[:, 0, 0]) > 3.0  # four metres walked along X
    info = json.loads(out["csv_sidecar"].read_text())
    assert info["world"]["root_locked"] is False and info["world"]["feet_planted"] is True
    assert abs(info["world"]["camera"]["pitch_deg"] - 15.0) < 2.0
    assert info["contacts"]["frames"]["RightFoot"] == int(contacts[:, 0].sum())


def test_a_recovery_file_from_before_rays_still_loads(tmp_path):
    """Version 2 files: 305-byte records with seen flags and without rays."""
    header = {"format": "distpose-recovery", "version": 2, "started": "2025-01-01T00:00:00",
              "pid": 1, "source": "old", "record_size": 305, "metadata": {}}  # fmt: skip
    records = np.zeros(3, recovery.RECORD_V2)
    records["kind"], records["t"], records["tracked"] = recovery.KIND_FRAME, [0, 0.1, 0.2], 1
    records["pos"] = 0.1
    records["seen"] = 1
    for r in records:
        r["crc"] = zlib.crc32(r.tobytes()[:-4])
    path = tmp_path / "take-v2.dprec"
    path.write_bytes(recovery.MAGIC + json.dumps(header).encode() + b"\n" + records.tobytes())
    rec = recovery.load(path)
    assert rec.num_frames == 3 and rec.rays is None and rec.tracked.all()


@pytest.mark.parametrize("rate", [25.0, 50.0])
def test_process_resamples_to_the_lifter_rate_and_back(rate):
    from distpose_app.cli.process import to_lifter_rate

    t = np.arange(int(rate)) / rate
    kp = np.stack([np.stack([t * 100, t * 0 + 50], -1)] * 17, axis=1)
    conf = np.ones((len(t), 17))
    kp[5, 3] = np.nan
    out_kp, out_conf, times, source = to_lifter_rate(kp, conf, t)
    assert abs(source - rate) < 1e-6
    np.testing.assert_allclose(times, np.arange(len(times)) / 30.0)
    ok = np.isfinite(out_kp).all(-1)
    np.testing.assert_allclose(out_kp[ok[:, 0], 0, 0], times[ok[:, 0]] * 100, atol=1e-9)
    assert (out_conf[~ok] == 0).all()
