"""The procedural demo person and its virtual camera."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from distpose_app.core.skeleton import bone_lengths
from distpose_app.lens.strings import PRESETS
from distpose_app.live.demo import CYCLE_S, DemoSource, demo_motion, look_at, world_to_camera

T = np.arange(0.0, CYCLE_S, 1 / 15)  # one whole loop at 15 Hz


def test_bone_lengths_constant_and_human():
    motion = demo_motion(T)
    assert motion.shape == (T.size, 17, 3) and np.isfinite(motion).all()
    lengths = bone_lengths(motion)
    np.testing.assert_allclose(lengths, lengths[:1].repeat(T.size, 0), atol=1e-9)
    assert ((lengths > 0.1) & (lengths < 0.5)).all()
    height = motion[:, 10, 1] - np.minimum(motion[:, 3, 1], motion[:, 6, 1])
    assert 1.5 < height.max() < 1.9  # Y up: head top over the lower ankle
    assert motion[:, [3, 6], 1].min() > -0.05  # feet stay at the floor


def test_motion_loops_moves_and_is_smooth():
    motion = demo_motion(T)
    np.testing.assert_allclose(demo_motion(np.array([0.0, CYCLE_S, 3 * CYCLE_S])),
                               demo_motion(np.zeros(3)), atol=1e-9)  # fmt: skip
    # walks a circle of radius 1.5 m around the origin (in x-z)
    radius = np.linalg.norm(motion[: int(10 * 15), 0, [0, 2]], axis=-1)
    np.testing.assert_allclose(radius, 1.5, atol=1e-9)
    step = np.linalg.norm(np.diff(demo_motion(np.arange(0, CYCLE_S, 1 / 60)), axis=0), axis=-1)
    assert step.max() < 0.06  # no joint jumps more than 6 cm in 1/60 s (3.6 m/s)
    # the right wrist is raised above the head at some point (waving)
    assert (motion[:, 16, 1] > motion[:, 10, 1]).any()


def test_look_at_matches_opencv_axes():
    rotation, eye = look_at(np.array([0.0, 1.0, 4.0]), np.array([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    # world +x is camera right, world up is camera -y, the target lies on +z
    np.testing.assert_allclose(world_to_camera(np.array([1.0, 1.0, 0.0]), rotation, eye),
                               [1.0, 0.0, 4.0], atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(world_to_camera(np.array([0.0, 2.0, 4.0]), rotation, eye),
                               [0.0, -1.0, 0.0], atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("lens", ["none", "strong", "pincushion", "fisheye"])
def test_keypoints_inside_image(lens):
    source = DemoSource(lens=PRESETS.get(lens, lens), size=(640, 360))
    cam, px = source.pose_at(T)
    assert (cam[..., 2] > 1.0).all()
    assert (px >= 0).all() and (px[..., 0] <= 640).all() and (px[..., 1] <= 360).all()


def test_keypoints_match_opencv_projection():
    source = DemoSource(lens="brown:-0.2,0.03,0,0.001,-0.002", size=(640, 360), frames=3)
    k = source.intrinsics.matrix
    dist = np.array([-0.2, 0.03, 0.001, -0.002, 0.0])  # OpenCV order k1 k2 p1 p2 k3
    for _ in range(3):
        frame = source.read()
        ref, _ = cv2.projectPoints(frame.truth_3d, np.zeros(3), np.zeros(3), k, dist)
        np.testing.assert_allclose(frame.keypoints_2d, ref[:, 0], atol=1e-6)
    assert source.read() is None  # frames=3


def test_frames_deterministic_and_drawn():
    a, b = DemoSource(noise_px=2.0, seed=3), DemoSource(noise_px=2.0, seed=3)
    for _ in range(5):
        fa, fb = a.read(), b.read()
        np.testing.assert_array_equal(fa.keypoints_2d, fb.keypoints_2d)
        np.testing.assert_array_equal(fa.image, fb.image)
    assert fa.index == 4 and fa.timestamp_s == pytest.approx(4 / 30)
    assert fa.image.shape == (720, 1280, 3) and fa.image.dtype == np.uint8
    np.testing.assert_array_equal(fa.confidence, np.ones(17))
    # the skeleton is drawn where the keypoints are: bright pixels around the pelvis
    x, y = np.round(fa.keypoints_2d[0]).astype(int)
    assert fa.image[y - 3 : y + 4, x - 3 : x + 4].max() > 200
    assert fa.image[:20, :20].max() < 60  # the background stays dark
    noiseless = DemoSource().pose_at(np.array([fa.timestamp_s]))[1][0]
    assert 0 < np.abs(fa.keypoints_2d - noiseless).max() < 12


def test_error_readout_is_a_moving_average_and_compares_on_the_same_frames():
    from distpose_app.live.demo import ErrorReadout

    readout = ErrorReadout(window=4)
    assert readout.text() == "" and readout.mpjpe_mm is None
    for e in (10.0, 20.0, None, float("nan"), 30.0, 40.0, 50.0):
        readout.add(e)
    assert readout.mpjpe_mm == pytest.approx(35.0) and readout.frames == 4
    assert readout.text() == "MPJPE 35.0 mm"
    readout.add(5.0, 9.0)  # adapted from here on: both averages restart on the same frames
    readout.add(7.0, 11.0)
    assert readout.mpjpe_mm == pytest.approx(6.0) and readout.unadapted_mpjpe_mm == 10.0
    assert readout.text() == "MPJPE 6.0 mm (unadapted 10.0 mm), over 0 s"
    readout.add(8.0)  # reverted: the comparison stops
    assert readout.unadapted_mpjpe_mm is None and readout.frames == 1


def test_demo_external_holds_the_demo_frames_and_camera():
    from distpose_app.live.demo import demo_external

    data = demo_external(cycles=2)
    frames = int(round(CYCLE_S * 30))
    assert data.positions_3d.shape == (2 * frames, 17, 3) and data.num_sequences == 2
    source = DemoSource("strong", draw=False)
    cam, px = source.pose_at(np.arange(3) / 30.0)
    np.testing.assert_allclose(data.positions_3d[:3], cam)
    np.testing.assert_allclose(data.positions_3d[frames : frames + 3], cam)
    k = source.intrinsics
    assert tuple(data.intrinsics[1]) == (k.fx, k.fy, k.cx, k.cy)
    assert tuple(data.image_size[0]) == source.size
    assert data.whole_picture  # evaluate's Adapt then decides as the app's does on the Demo
