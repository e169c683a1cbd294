"""Tests for data.cameras, splits, synthetic and external: virtual webcams, projection, splits,
noise, the cache and the external .npz format. Tiny synthetic skeletons generated here; one test
reads the real archive."""

from __future__ import annotations

import dataclasses
import sys
import types
from dataclasses import dataclass, replace

import cv2
import numpy as np
import pytest

from distpose_app.core.errors import DataFormatError, DistposeError
from distpose_app.core.skeleton import bone_lengths
from distpose_app.data.cameras import (
    CameraConfig,
    VirtualCamera,
    intrinsics_array,
    look_at_rotation,
    project_views,
    sample_camera,
    sample_intrinsics,
)
from distpose_app.data.external import (
    OPTIONAL_KEYS,
    REQUIRED_KEYS,
    load_external,
    save_external,
    write_external,
)
from distpose_app.data.lens_sampler import LensSampler
from distpose_app.data.splits import TEST_STYLES, clips, split_of
from distpose_app.data.synthetic import (
    NoiseConfig,
    add_detector_noise,
    build_synthetic,
    load_or_build,
)
from distpose_app.lens.models import BrownConrady, Intrinsics, NoLens, project_points

# A standing person, world metres, Y up, feet on the floor (H36M-17 order).
STANDING = np.array(
    [
        [0.0, 0.95, 0.0], [-0.1, 0.93, 0.0], [-0.1, 0.5, 0.02], [-0.1, 0.08, 0.0],
        [0.1, 0.93, 0.0], [0.1, 0.5, 0.02], [0.1, 0.08, 0.0], [0.0, 1.2, 0.0],
        [0.0, 1.45, 0.0], [0.0, 1.6, 0.03], [0.0, 1.75, 0.0], [0.18, 1.43, 0.0],
        [0.2, 1.15, 0.0], [0.22, 0.9, 0.05], [-0.18, 1.43, 0.0], [-0.2, 1.15, 0.0],
        [-0.22, 0.9, 0.05],
    ]
)  # fmt: skip


@dataclass
class FakeSequence:
    """Duck-typed `MocapSequence`."""

    name: str
    dataset: str
    content: str
    style: str
    positions: np.ndarray
    fps: float = 30.0


def swaying(frames: int = 60, walk_m: float = 0.0, heading: float = 0.3, phase: float = 0.0):
    """(F, 17, 3) world metres: the standing pose swaying and turning, optionally walking
    `walk_m` metres along `heading` (radians) over the sequence."""
    t = np.linspace(0.0, 1.0, frames)
    angle = 0.4 * np.sin(2 * np.pi * t + phase)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.zeros((frames, 3, 3))
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, s, 1, -s, c
    out = np.einsum("fij,kj->fki", rot, STANDING)
    out[:, :, 0] += 0.1 * np.sin(4 * np.pi * t)[:, None] + walk_m * t[:, None] * np.cos(heading)
    out[:, :, 2] += walk_m * t[:, None] * np.sin(heading)
    out[:, 13, 1] += 0.5 * np.clip(np.sin(2 * np.pi * t), 0, None)  # a wave of the left hand
    return out


def sequences(n: int = 4, frames: int = 40) -> list[FakeSequence]:
    styles = ["normal", "active", "elderly", "old", "feminine", "tired"]
    out = []
    for i in range(n):
        style = styles[i % len(styles)]
        name = f"dataset-2_walk_{style}_{i:03d}"
        out.append(FakeSequence(name, "2", "walk", style, swaying(frames, 1.5 * (i % 3), i)))
    return out


def check_in_frame(camera: VirtualCamera, world: np.ndarray) -> None:
    cam = camera.world_to_camera(world)
    assert np.all(cam[..., 2] > 0.3)
    px = camera.project(world)
    w, h = camera.intrinsics.width, camera.intrinsics.height
    assert np.all((px[..., 0] >= 0) & (px[..., 0] <= w) & (px[..., 1] >= 0) & (px[..., 1] <= h))


# ---------------------------------------------------------------------------------------
# Cameras
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("walk_m", [0.0, 4.0])
def test_sampled_cameras_keep_every_joint_in_frame_and_in_front(walk_m):
    config = CameraConfig()
    sampler = LensSampler()
    for seed in range(25):
        rng = np.random.default_rng(seed)
        world = swaying(50, walk_m, heading=seed)
        intrinsics = sample_intrinsics(rng, config)
        lens = sampler.sample(rng, intrinsics.corner_radius) if seed % 2 else None
        camera = sample_camera(rng, world, config, intrinsics, lens)
        check_in_frame(camera, world)
        # The placement follows the configured distribution (distance only grows on retries).
        target = world.reshape(-1, 3).mean(axis=0)
        horizontal = np.hypot(*(camera.position - target)[[0, 2]])
        assert horizontal >= config.distance_m[0] - 1e-9
        assert config.height_m[0] <= camera.position[1] <= config.height_m[1]
        assert (intrinsics.width, intrinsics.height) in config.image_sizes
        assert config.hfov_deg[0] - 1e-6 <= intrinsics.hfov_deg <= config.hfov_deg[1] + 1e-6
        np.testing.assert_allclose(camera.R @ camera.R.T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(camera.R), 1.0)


def test_cameras_look_around_the_subject_and_level():
    world = swaying(20)
    target = world.reshape(-1, 3).mean(axis=0)
    azimuths, rolls = [], []
    for seed in range(60):
        cam = sample_camera(np.random.default_rng(seed), world)
        d = cam.position - target
        azimuths.append(np.arctan2(d[0], d[2]))
        # The camera's x axis (first row of R) stays near horizontal: small roll.
        rolls.append(np.degrees(np.arcsin(abs(cam.R[0, 1]))))
    hist, _ = np.histogram(azimuths, bins=4, range=(-np.pi, np.pi))
    assert hist.min() >= 5  # every quadrant around the subject is used
    assert max(rolls) < 5.0


def test_narrow_lens_far_subject_is_found_by_retrying():
    # 50 degrees on 4:3 cannot show a standing person from 1.5 m: the sampler must back off.
    config = replace(CameraConfig(), distance_m=(1.5, 1.5), hfov_deg=(50.0, 50.0))
    config = replace(config, image_sizes=((640, 480),))
    world = swaying(30)
    camera = sample_camera(np.random.default_rng(0), world, config)
    check_in_frame(camera, world)
    target = world.reshape(-1, 3).mean(axis=0)
    assert np.hypot(*(camera.position - target)[[0, 2]]) > 2.0


def test_sample_camera_is_deterministic_from_the_rng():
    world = swaying(30, 2.0)
    a = sample_camera(np.random.default_rng(7), world)
    b = sample_camera(np.random.default_rng(7), world)
    c = sample_camera(np.random.default_rng(8), world)
    np.testing.assert_array_equal(a.R, b.R)
    np.testing.assert_array_equal(a.t, b.t)
    assert a.intrinsics == b.intrinsics
    assert not np.allclose(a.t, c.t)


# ---------------------------------------------------------------------------------------
# Projection
# ---------------------------------------------------------------------------------------
def test_projection_of_a_known_point_by_hand():
    # Camera 1 m up at the origin, looking along world +Z: its right is world -X, down is -Y.
    R = look_at_rotation(np.array([0.0, 1.0, 0.0]), np.array([0.0, 1.0, 5.0]))
    np.testing.assert_allclose(R, [[-1, 0, 0], [0, -1, 0], [0, 0, 1]], atol=1e-15)
    intr = Intrinsics(500.0, 500.0, 320.0, 240.0, 640, 480)
    cam = VirtualCamera(intr, R, -R @ np.array([0.0, 1.0, 0.0]))
    point = np.array([0.5, 1.5, 2.0])  # left of and above the camera's axis, 2 m ahead
    np.testing.assert_allclose(cam.world_to_camera(point), [-0.5, -0.5, 2.0], atol=1e-15)
    # x/z = y/z = -0.25 -> 320 - 125, 240 - 125.
    np.testing.assert_allclose(cam.project(point), [195.0, 115.0], atol=1e-12)
    # Barrel k1 = -0.2: r^2 = 0.125, factor 1 - 0.025 = 0.975 -> -0.24375 -> 198.125, 118.125.
    cam.lens = BrownConrady(-0.2)
    np.testing.assert_allclose(cam.project(point), [198.125, 118.125], atol=1e-12)
    np.testing.assert_allclose(cam.project(point, distorted=False), [195.0, 115.0], atol=1e-12)


def test_camera_projection_matches_opencv():
    world = swaying(10, 1.0)
    rng = np.random.default_rng(3)
    lens = BrownConrady(-0.3, 0.1, -0.01, 0.001, -0.002)
    cam = sample_camera(rng, world, lens=lens)
    rvec, _ = cv2.Rodrigues(cam.R)
    expected, _ = cv2.projectPoints(
        world.reshape(-1, 1, 3), rvec, cam.t, cam.intrinsics.matrix, lens.opencv_coeffs()
    )
    np.testing.assert_allclose(cam.project(world).reshape(-1, 2), expected[:, 0], atol=1e-6)


def test_project_views_vectorised_matches_per_sequence_projection():
    rng = np.random.default_rng(0)
    sampler = LensSampler()
    n_seq, frames = 5, 7
    points = rng.uniform([-1, -1, 2], [1, 1, 4], size=(n_seq * frames, 17, 3))
    sequence = np.repeat(np.arange(n_seq), frames)
    intrs = [Intrinsics.from_hfov(rng.uniform(50, 120), 1280, 720) for _ in range(n_seq)]
    lenses = [sampler.sample(rng, i.corner_radius) for i in intrs]
    K = np.array([intrinsics_array(i) for i in intrs])
    got = project_views(points, K, lenses, sequence)
    for s in range(n_seq):
        rows = sequence == s
        expected = project_points(points[rows], intrs[s], lenses[s])
        np.testing.assert_allclose(got[rows], expected, atol=1e-9)
    # Per training window: (B, T, 17, 3) with one intrinsics row and one lens per window.
    windows = points.reshape(n_seq, frames, 17, 3)
    got_w = project_views(windows, K, lenses)
    np.testing.assert_allclose(got_w.reshape(-1, 17, 2), got, atol=1e-12)
    # One lens and one intrinsics vector for all.
    one = project_views(points, K[0], lenses[0])
    np.testing.assert_allclose(one, project_points(points, intrs[0], lenses[0]), atol=1e-9)


# ---------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------
def test_split_holds_out_whole_styles_and_is_disjoint_by_file():
    contents = ["walk", "run", "wave-left-hand", "raise-up-both-hands", "bow"]
    styles = ["normal", "active", "elderly", "old", "exhausted", "tired", "feminine"]
    names = [
        f"dataset-{1 + (i % 2)}_{c}_{s}_{i:03d}"
        for i in range(40)
        for c in contents
        for s in styles
    ]
    splits = {n: split_of(n) for n in names}
    assert all(splits[n] == "test" for n in names if n.split("_")[2] in TEST_STYLES)
    assert all(splits[n] != "test" for n in names if n.split("_")[2] not in TEST_STYLES)
    val = [n for n in names if splits[n] == "val"]
    rest = [n for n in names if splits[n] != "test"]
    assert 0.02 < len(val) / len(rest) < 0.09  # about 1 in VAL_MODULUS
    # A path or a .bvh suffix does not change the split; a MocapSequence gives the same answer.
    for n in names[:50]:
        assert split_of(f"data/{n}.bvh") == splits[n]
        style = n.split("_")[2]
        assert split_of(FakeSequence(n, "2", "walk", style, STANDING[None])) == splits[n]
    # Building each split from the same files gives disjoint views that cover everything.
    seqs = [FakeSequence(n, "2", "walk", n.split("_")[2], swaying(4)) for n in names[::6]]
    built = {s: build_synthetic(seqs, s, 1, progress=False) for s in ("train", "val", "test")}
    files = {s: {str(x).split("/")[0] for x in b.names} for s, b in built.items()}
    assert not files["train"] & files["test"] and not files["val"] & files["test"]
    assert not files["train"] & files["val"]
    assert set().union(*files.values()) == {s.name for s in seqs}


# ---------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------
def test_build_synthetic_shapes_and_consistency():
    seqs = sequences(3, 30)
    data = build_synthetic(seqs, "all", 2, seed=1, lens_sampler=LensSampler(), progress=False)
    n = 3 * 2 * 30
    assert data.positions_3d.shape == (n, 17, 3) and data.keypoints_2d.shape == (n, 17, 2)
    assert data.keypoints_2d_ideal.shape == (n, 17, 2) and data.sequence.shape == (n,)
    assert data.intrinsics.shape == (6, 4) and data.image_size.shape == (6, 2)
    assert data.lens.shape == (6,) and data.names.shape == (6,) and data.fps == 30.0
    assert np.all(np.diff(data.sequence) >= 0) and len(data.sequence_slices()) == 6
    # Rigid camera transform: bone lengths are those of the mocap.
    np.testing.assert_allclose(
        bone_lengths(data.positions_3d[:30]), bone_lengths(seqs[0].positions), atol=1e-5
    )
    # Camera 3D agrees with the stored extrinsics; 2D agrees with projecting the 3D.
    for s, sl in enumerate(data.sequence_slices()):
        world = seqs[s // 2].positions
        cam = world @ data.rotation[s].T + data.translation[s]
        np.testing.assert_allclose(data.positions_3d[sl], cam, atol=1e-5)
        w, h = data.image_size[s]
        assert np.all(
            (data.keypoints_2d[sl] >= 0).all(-1) & (data.keypoints_2d[sl] <= [w, h]).all(-1)
        )
    from distpose_app.lens.strings import parse_lens

    lenses = [parse_lens(spec, max_radius=None) for spec in data.lens]
    again = project_views(data.positions_3d, data.intrinsics, lenses, data.sequence)
    np.testing.assert_allclose(again, data.keypoints_2d, atol=1e-2)  # float32 storage
    ideal = project_views(data.positions_3d, data.intrinsics, None, data.sequence)
    np.testing.assert_allclose(ideal, data.keypoints_2d_ideal, atol=1e-2)
    assert data.mask is None


def test_build_is_deterministic_and_per_file():
    seqs = sequences(3, 20)
    a = build_synthetic(seqs, "all", 2, seed=5, lens_sampler=LensSampler(), progress=False)
    b = build_synthetic(seqs, "all", 2, seed=5, lens_sampler=LensSampler(), progress=False)
    c = build_synthetic(seqs, "all", 2, seed=6, lens_sampler=LensSampler(), progress=False)
    np.testing.assert_array_equal(a.keypoints_2d, b.keypoints_2d)
    np.testing.assert_array_equal(a.lens, b.lens)
    assert not np.allclose(a.intrinsics, c.intrinsics)
    # A file's views do not depend on which other files are built with it.
    alone = build_synthetic(seqs[2:], "all", 2, seed=5, lens_sampler=LensSampler(), progress=False)
    np.testing.assert_array_equal(alone.positions_3d, a.positions_3d[-40:])
    np.testing.assert_array_equal(alone.keypoints_2d, a.keypoints_2d[-40:])


def test_unknown_split_and_mixed_fps_are_user_errors():
    seqs = sequences(2, 10)
    with pytest.raises(DistposeError, match="split"):
        build_synthetic(seqs, "training", progress=False)
    seqs[1].fps = 25.0
    with pytest.raises(DistposeError, match="frame rates"):
        build_synthetic(seqs, "all", progress=False)


# ---------------------------------------------------------------------------------------
# Noise
# ---------------------------------------------------------------------------------------
def test_noise_statistics_per_joint_speed_and_drops():
    rng = np.random.default_rng(0)
    n = 20000
    still = np.full((n, 17, 2), 100.0)
    sequence = np.zeros(n, int)
    cfg = NoiseConfig(sigma_px=2.0, speed_gain=0.0, drop_prob=0.1)
    noisy, mask = add_detector_noise(rng, still, sequence, cfg)
    std = (noisy - still).std(axis=0).mean(axis=-1)
    np.testing.assert_allclose(std, 2.0 * np.array(cfg.joint_scale), rtol=0.04)
    assert abs((noisy - still).mean()) < 0.05
    assert abs((~mask).mean() - 0.1) < 0.01
    # A joint moving 10 px per frame: sigma grows by speed_gain * 10, except at sequence starts.
    moving = still.copy()
    moving[:, 0, 0] += 10.0 * np.arange(n)
    cfg = NoiseConfig(sigma_px=1.0, speed_gain=0.2)
    sequence = np.repeat([0, 1], n // 2)
    noisy, mask = add_detector_noise(rng, moving, sequence, cfg)
    err = noisy - moving
    assert abs(err[1 : n // 2, 0].std() - (1.0 + 2.0)) < 0.1
    assert abs(err[:, 7].std() - 1.0) < 0.05  # the still spine keeps the base sigma
    assert mask.all()
    # Unseen joints (NaN) stay unseen and do not hide their seen neighbours in time.
    holes = still[:50].copy()
    holes[10, 3] = np.nan
    noisy, _ = add_detector_noise(rng, holes, np.zeros(50, int), cfg)
    assert np.array_equal(np.isnan(noisy), np.isnan(holes))


def test_build_with_noise_keeps_ideal_clean():
    seqs = sequences(2, 30)
    clean = build_synthetic(seqs, "all", 1, seed=2, progress=False)
    noisy = build_synthetic(
        seqs, "all", 1, seed=2, noise=NoiseConfig(sigma_px=3.0, drop_prob=0.2), progress=False
    )
    np.testing.assert_array_equal(clean.keypoints_2d_ideal, noisy.keypoints_2d_ideal)
    diff = noisy.keypoints_2d - clean.keypoints_2d
    assert 3.0 < diff.std() < 8.0
    assert noisy.mask.shape == (60, 17) and 0.1 < (~noisy.mask).mean() < 0.3


# ---------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------
def test_load_or_build_caches_by_parameters(tmp_path, monkeypatch):
    archive = tmp_path / "fake.tar.xz"
    archive.write_bytes(b"not read")
    calls = []

    def load_bandai(path, cache_dir=".cache", progress=True):
        calls.append(path)
        return sequences(4, 12)

    import distpose_app.data

    fake = types.SimpleNamespace(load_bandai=load_bandai, CACHE_VERSION=1)
    monkeypatch.setitem(sys.modules, "distpose_app.data.mocap", fake)
    monkeypatch.setattr(distpose_app.data, "mocap", fake, raising=False)
    cache = tmp_path / "cache"
    kw = dict(cache_dir=cache, progress=False, clip_frames=0)
    a = load_or_build(archive, "all", 1, seed=0, **kw)
    b = load_or_build(archive, "all", 1, seed=0, **kw)
    assert len(calls) == 1 and len(list(cache.glob("synthetic-all-*.npz"))) == 1
    np.testing.assert_array_equal(a.keypoints_2d, b.keypoints_2d)
    np.testing.assert_array_equal(a.names, b.names)
    assert b.fps == a.fps and b.meta["seed"] == 0 and "build_seconds" in b.meta
    load_or_build(archive, "all", 1, seed=1, **kw)
    load_or_build(archive, "all", 1, seed=0, lens_sampler=LensSampler(), **kw)
    # Clipping is a parameter of the cache too: 12-frame files cut into 6-frame clips.
    clipped = load_or_build(archive, "all", 1, seed=0, **{**kw, "clip_frames": 6})
    assert len(calls) == 4 and len(list(cache.glob("*.npz"))) == 4
    assert clipped.num_sequences == 8 and len(clipped) == len(a)
    assert not list(cache.glob(".*tmp"))  # atomic writes leave no temporaries
    with pytest.raises(DistposeError, match="missing.tar.xz"):
        load_or_build(tmp_path / "missing.tar.xz", "test", cache_dir=cache)


def test_cli_reports_a_missing_archive(tmp_path, capsys):
    from distpose_app.cli.main import main

    missing = tmp_path / "nowhere.tar.xz"
    assert main(["data", "build", "--archive", str(missing), "--cache", str(tmp_path)]) == 2
    assert str(missing) in capsys.readouterr().err
    out = tmp_path / "x.npz"
    assert main(["data", "export", "--archive", str(missing), "--out", str(out)]) == 2
    assert "nowhere.tar.xz" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# External format
# ---------------------------------------------------------------------------------------
def external_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "positions_3d": rng.uniform([-1, -1, 2], [1, 1, 4], (12, 17, 3)),
        "sequence": np.repeat([0, 1, 2], 4),
        "fps": np.float64(25.0),
        "intrinsics": np.array([[600, 600, 320, 240], [900, 900, 640, 360], [1e3, 1e3, 960, 540]]),
        "image_size": np.array([[640, 480], [1280, 720], [1920, 1080]]),
        "keypoints_2d": rng.uniform(0, 600, (12, 17, 2)),
    }


def test_external_round_trip(tmp_path):
    arrays = external_arrays()
    path = tmp_path / "ext.npz"
    save_external(path, **arrays)
    data = load_external(path)
    for key, value in arrays.items():
        np.testing.assert_array_equal(getattr(data, key), value)
    assert data.names is None and data.lens is None and data.num_sequences == 3
    assert data.sequence_slices()[1] == slice(4, 8)
    # A user-written file with float32 arrays, an int fps and no keypoints loads too.
    plain = {k: v for k, v in arrays.items() if k != "keypoints_2d"}
    plain.update(positions_3d=arrays["positions_3d"].astype(np.float32), fps=np.int64(30))
    np.savez(tmp_path / "user.npz", **plain)
    user = load_external(tmp_path / "user.npz")
    assert user.keypoints_2d is None and user.fps == 30.0


def test_external_marks_a_whole_picture(tmp_path):
    # Absent means False (a user's file, a crop); the Demo's data say True and keep it.
    save_external(tmp_path / "a.npz", **external_arrays())
    assert load_external(tmp_path / "a.npz").whole_picture is False
    save_external(tmp_path / "b.npz", **external_arrays(), whole_picture=True)
    assert load_external(tmp_path / "b.npz").whole_picture is True
    with np.load(tmp_path / "b.npz") as raw:
        assert raw["whole_picture"].dtype == bool and raw["whole_picture"].shape == ()


def test_external_keypoints_may_hold_unseen_joints(tmp_path):
    arrays = external_arrays()
    arrays["keypoints_2d"][:, 7] = np.nan  # a joint the detector never outputs
    arrays["keypoints_2d"][3:6, 13] = np.nan  # a wrist lost for three frames
    save_external(tmp_path / "nan.npz", **arrays)
    data = load_external(tmp_path / "nan.npz")
    np.testing.assert_array_equal(data.keypoints_2d, arrays["keypoints_2d"])  # NaN == NaN here
    assert np.isnan(data.keypoints_2d).any(-1).sum() == 12 + 3


def test_synthetic_set_to_external_round_trip(tmp_path):
    data = build_synthetic(sequences(2, 15), "all", 2, seed=0, progress=False)
    write_external(tmp_path / "syn.npz", data.to_external())
    ext = load_external(tmp_path / "syn.npz")
    np.testing.assert_allclose(ext.positions_3d, data.positions_3d)
    np.testing.assert_allclose(ext.keypoints_2d, data.keypoints_2d_ideal)
    np.testing.assert_array_equal(ext.sequence, data.sequence)
    np.testing.assert_array_equal(ext.image_size, data.image_size)
    np.testing.assert_array_equal(ext.names, data.names)
    # Through one named lens: recorded in the file, and the 2D moves.
    lens = BrownConrady(-0.1)
    write_external(tmp_path / "lens.npz", data.to_external(lens))
    ext = load_external(tmp_path / "lens.npz")
    assert ext.lens == lens.spec()
    assert np.abs(ext.keypoints_2d - data.keypoints_2d_ideal).max() > 0.5
    assert data.to_external(NoLens()).lens == "none"
    with pytest.raises(DistposeError, match="folds"):
        data.to_external(BrownConrady(-2.0))


def _broken(**changes):
    arrays = external_arrays()
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    return arrays


BROKEN = {
    "missing positions_3d": ("positions_3d", _broken(positions_3d=None), "missing"),
    "missing sequence": ("sequence", _broken(sequence=None), "missing"),
    "missing fps": ("fps", _broken(fps=None), "missing"),
    "missing intrinsics": ("intrinsics", _broken(intrinsics=None), "missing"),
    "missing image_size": ("image_size", _broken(image_size=None), "missing"),
    "positions shape": ("positions_3d", _broken(positions_3d=np.ones((12, 16, 3))), "shape"),
    "positions dtype": ("positions_3d", _broken(positions_3d=np.ones((12, 17, 3), int)), "float"),
    "positions NaN": (
        "positions_3d",
        _broken(positions_3d=np.where(np.arange(3) == 0, np.nan, 3.0) * np.ones((12, 17, 3))),
        "NaN",
    ),
    "positions in mm": (
        "positions_3d",
        _broken(positions_3d=np.full((12, 17, 3), 3000.0)),
        "metres",
    ),
    "positions behind": ("positions_3d", _broken(positions_3d=np.full((12, 17, 3), -2.0)), "z"),
    "sequence dtype": ("sequence", _broken(sequence=np.repeat([0.0, 1.0, 2.0], 4)), "integers"),
    "sequence shape": ("sequence", _broken(sequence=np.repeat([0, 1, 2], 3)), "shape"),
    "sequence range": ("sequence", _broken(sequence=np.repeat([0, 1, 3], 4)), "out of range"),
    "sequence negative": ("sequence", _broken(sequence=np.repeat([-1, 1, 2], 4)), "out of range"),
    "sequence not contiguous": (
        "sequence",
        _broken(sequence=np.array([0, 0, 1, 1, 0, 0, 2, 2, 2, 2, 1, 1])),
        "contiguous",
    ),
    "sequence unused": ("sequence", _broken(sequence=np.repeat([0, 2], 6)), "no frames"),
    "fps zero": ("fps", _broken(fps=np.float64(0.0)), "frame rate"),
    "fps negative": ("fps", _broken(fps=np.float64(-30.0)), "frame rate"),
    "fps tiny": ("fps", _broken(fps=np.float64(1e-300)), "frame rate"),
    "fps NaN": ("fps", _broken(fps=np.float64(np.nan)), "frame rate"),
    "fps array": ("fps", _broken(fps=np.array([25.0, 30.0])), "one number"),
    "fps text": ("fps", _broken(fps=np.array("25")), "one number"),
    "intrinsics shape": ("intrinsics", _broken(intrinsics=np.ones((3, 3))), "shape"),
    "intrinsics focal": ("intrinsics", _broken(intrinsics=np.zeros((3, 4))), "positive"),
    "intrinsics NaN": ("intrinsics", _broken(intrinsics=np.full((3, 4), np.nan)), "NaN"),
    "image_size rows": ("image_size", _broken(image_size=np.ones((2, 2), int)), "shape"),
    "image_size zero": ("image_size", _broken(image_size=np.zeros((3, 2), int)), "positive"),
    "image_size fraction": ("image_size", _broken(image_size=np.full((3, 2), 640.5)), "whole"),
    "keypoints shape": ("keypoints_2d", _broken(keypoints_2d=np.ones((11, 17, 2))), "shape"),
    "keypoints all NaN": (
        "keypoints_2d",
        _broken(keypoints_2d=np.full((12, 17, 2), np.nan)),
        "no joint is seen",
    ),
    "keypoints infinite": (
        "keypoints_2d",
        _broken(keypoints_2d=np.full((12, 17, 2), np.inf)),
        "infinite",
    ),
    "keypoints half NaN": (
        "keypoints_2d",
        _broken(keypoints_2d=np.where([True, False], np.nan, 1.0) * np.ones((12, 17, 2))),
        "one coordinate",
    ),
    "names shape": ("names", _broken(names=np.array(["a", "b"])), "shape"),
    "whole_picture not a flag": (
        "whole_picture",
        _broken(whole_picture=np.array([1, 0])),
        "one boolean",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_external_validation_names_the_key(tmp_path, case):
    key, arrays, problem = BROKEN[case]
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataFormatError, match=problem) as info:
        load_external(path)
    assert f"'{key}'" in str(info.value) and str(path) in str(info.value)
    if key not in ("names",):  # save_external refuses to write what load_external refuses
        kwargs = {k: v for k, v in arrays.items() if k in REQUIRED_KEYS + OPTIONAL_KEYS}
        if set(REQUIRED_KEYS) <= set(kwargs) and key != "fps":
            with pytest.raises((DataFormatError, ValueError, TypeError)):
                save_external(tmp_path / "out.npz", **kwargs)
            assert not (tmp_path / "out.npz").exists()


def test_unreadable_external_files(tmp_path):
    with pytest.raises(DataFormatError, match="no such file"):
        load_external(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip file")
    with pytest.raises(DataFormatError, match="junk.npz"):
        load_external(tmp_path / "junk.npz")


# ---------------------------------------------------------------------------------------
# The real archive (skipped without ../shared)
# ---------------------------------------------------------------------------------------
def test_real_bandai_sequences_build(bandai_archive):
    mocap = pytest.importorskip("distpose_app.data.mocap")
    from itertools import islice

    seqs = []
    for seq in islice(mocap.iter_bandai_archive(bandai_archive, progress=False), 40):
        if seq.name.startswith("dataset-1") and len(seqs) < 2:
            seqs.append(seq)
    assert seqs
    for seq in seqs:
        seq.positions = seq.positions[:300]
    data = build_synthetic(seqs, "all", 2, seed=0, lens_sampler=LensSampler(), progress=False)
    assert data.fps == 30.0 and data.num_sequences == 2 * len(seqs)
    lengths = bone_lengths(data.positions_3d).mean(axis=0)
    assert np.all((lengths > 0.05) & (lengths < 0.6))  # metres, human-sized
    for s, sl in enumerate(data.sequence_slices()):
        w, h = data.image_size[s]
        assert np.all(data.positions_3d[sl, :, 2] > 0.3)
        assert np.all(
            (data.keypoints_2d[sl] >= 0).all(-1) & (data.keypoints_2d[sl] <= [w, h]).all(-1)
        )


def test_clips_cut_files_and_keep_their_split():
    seqs = sequences(3, 25)
    seqs[0] = dataclasses.replace(seqs[0], name="dataset-2_walk_elderly_001")
    out = clips(seqs, 10)  # 25 frames -> 10 + 10 + 5 (a 5-frame remainder is half a clip)
    assert [len(c.positions) for c in out] == [10, 10, 5] * 3
    assert out[0].name == "dataset-2_walk_elderly_001#00"
    np.testing.assert_array_equal(out[1].positions, seqs[0].positions[10:20])
    assert clips(seqs, 10, min_frames=6)[2].name.endswith("#00")  # remainder dropped
    for clip in out:
        source = next(s for s in seqs if clip.name.startswith(s.name))
        assert split_of(clip) == split_of(source)


def test_pose_family_of_sequence_and_view_names():
    from distpose_app.data.synthetic import pose_family

    assert pose_family("dataset-1_bye_old_001#seated#03/view0") == "seated"
    assert pose_family("dataset-1_bye_old_001#kneeling") == "kneeling"
    assert pose_family("dataset-1_bye_old_001#03/view1") == "standing"
    assert pose_family("dataset/x/dataset-2_walk_elderly_004.bvh") == "standing"
