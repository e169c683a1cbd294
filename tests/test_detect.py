"""MediaPipe pose on real photos that ship in pip packages (no download, no ../shared)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from distpose_app.core.skeleton import (
    HIP_WIDTH_FACTOR,
    MP_LEFT_HIP,
    MP_LEFT_SHOULDER,
    MP_RIGHT_HIP,
    MP_RIGHT_KNEE,
    MP_RIGHT_SHOULDER,
    SHOULDER_WIDTH_FACTOR,
    bone_lengths,
)


@pytest.fixture(scope="module")
def cameraman():
    from skimage import data

    return cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)


@pytest.fixture(scope="module")
def detection(cameraman):
    from distpose_app.live.detect import PoseDetector

    with PoseDetector(static_image_mode=True) as detector:
        return detector.detect(cameraman)


@pytest.mark.slow
def test_finds_the_cameraman(detection, cameraman):
    assert detection is not None
    h, w = cameraman.shape[:2]
    kp, conf = detection.keypoints_2d, detection.confidence
    assert kp.shape == (17, 2) and conf.shape == (17,) and detection.landmarks_2d.shape == (33, 2)
    assert np.isfinite(kp).all() and ((conf >= 0) & (conf <= 1)).all()
    seen = conf > 0.5
    assert seen.sum() >= 10
    assert ((kp[seen] >= 0) & (kp[seen] <= [w, h])).all()  # confident joints lie in the image
    # upright: head above thorax above pelvis (image y grows downwards)
    assert kp[10, 1] < kp[8, 1] < kp[0, 1]
    # H36M joints from MediaPipe landmarks in pixels: knees directly, hips and shoulders pulled
    # toward their midpoints to where the mocap rig has them (skeleton.py).
    lm = detection.landmarks_2d
    np.testing.assert_allclose(kp[2], lm[MP_RIGHT_KNEE])
    hip_mid = 0.5 * (lm[MP_RIGHT_HIP] + lm[MP_LEFT_HIP])
    np.testing.assert_allclose(kp[1], hip_mid + HIP_WIDTH_FACTOR * (lm[MP_RIGHT_HIP] - hip_mid))
    shoulder_mid = 0.5 * (lm[MP_LEFT_SHOULDER] + lm[MP_RIGHT_SHOULDER])
    np.testing.assert_allclose(
        kp[11], shoulder_mid + SHOULDER_WIDTH_FACTOR * (lm[MP_LEFT_SHOULDER] - shoulder_mid)
    )
    # he stands in the left half of the picture
    assert kp[seen, 0].mean() < w / 2


@pytest.mark.slow
def test_world_3d_is_metric_and_hip_centred(detection):
    world = detection.world_3d
    assert world.shape == (17, 3) and np.isfinite(world).all()
    assert np.linalg.norm(world[0]) < 0.05  # MediaPipe's world origin is the hips' midpoint
    thigh = bone_lengths(world)[[1, 4]]  # RHip-RKnee, LHip-LKnee
    # Human3.6M's hips sit wide of the hip landmarks, so a thigh may be short in a crouch
    assert ((thigh > 0.2) & (thigh < 0.65)).all()
    assert world[10, 1] < world[0, 1]  # y down: the head is above (smaller y) the hips


@pytest.mark.slow
def test_no_person_and_bad_input():
    from distpose_app.live.detect import PoseDetector

    detector = PoseDetector()
    assert detector.detect(np.zeros((120, 160, 3), np.uint8)) is None
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((120, 160), np.uint8))
    detector.close()
    detector.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        detector.detect(np.zeros((120, 160, 3), np.uint8))


@pytest.mark.slow
def test_street_walk_warped_by_a_strong_lens(media_dir):
    """End to end on a real clip, and on the same clip warped through the `strong` lens inside
    the test: the detections on the warped frames are the lens applied to the originals'."""
    from distpose_app.lens.models import Intrinsics, distort_pixels, undistort_pixels
    from distpose_app.lens.strings import parse_lens
    from distpose_app.live.capture import VideoFileSource
    from distpose_app.live.detect import PoseDetector

    source = VideoFileSource(media_dir / "openpose_street_walk.avi")
    source.open()
    frames = [source.read().image for _ in range(24)]
    source.close()
    h, w = frames[0].shape[:2]
    # A 120° wide-angle webcam: the `strong` preset then moves the walker's joints by ~12 px.
    camera, lens = Intrinsics.from_hfov(120, w, h), parse_lens("strong")
    # Each output pixel samples the ideal image where the lens would have taken its light from.
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).astype(np.float64)
    source_px = undistort_pixels(grid, camera, lens).astype(np.float32)
    warp = lambda img: cv2.remap(img, source_px[..., 0], source_px[..., 1], cv2.INTER_LINEAR)  # noqa: E731

    with PoseDetector() as plain, PoseDetector() as warped:
        pairs = [(plain.detect(f), warped.detect(warp(f))) for f in frames]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    assert len(pairs) >= 20  # the walking woman is found in (almost) every frame, both ways
    original = np.stack([a.keypoints_2d for a, _ in pairs])
    through_lens = np.stack([b.keypoints_2d for _, b in pairs])
    predicted = distort_pixels(original, camera, lens)
    err_model = np.median(np.linalg.norm(through_lens - predicted, axis=-1))
    err_none = np.median(np.linalg.norm(through_lens - original, axis=-1))
    assert err_model < 9.0  # px: MediaPipe's own jitter between two different images
    assert err_model < 0.6 * err_none  # the warp moved the joints; the lens model explains it
