"""The live pipeline: lifter timing and padding, bad keypoints, known lens, weights, recording."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from distpose_app.core.skeleton import mediapipe_to_h36m
from distpose_app.lens.models import Intrinsics
from distpose_app.lens.screen import normalize_screen_coordinates
from distpose_app.lens.strings import parse_lens
from distpose_app.lifter.model import TemporalModel
from distpose_app.live.capture import FakeSource, SourceError
from distpose_app.live.demo import DemoSource
from distpose_app.live.feed import LiveFeed
from distpose_app.live.pipeline import LivePipeline
from distpose_app.live.stats import StageStats
from distpose_app.live.tracking import (
    fill_dropouts,
    is_tracked,
    seen_joints,
    seen_with_hysteresis,
    valid_joints,
)

SIZE = (640, 360)


def _model(causal=True, seed=0):
    torch.manual_seed(seed)
    model = TemporalModel(channels=32, causal=causal, filter_widths=(3, 3))
    for bn in [model.expand_bn, *model.layers_bn]:  # non-trivial running statistics
        bn.running_mean.uniform_(-0.1, 0.1)
        bn.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _demo_2d(frames=40):
    source = DemoSource(size=SIZE, draw=False)
    return source.pose_at(np.arange(frames) / 30.0)


@pytest.mark.parametrize("causal", [True, False])
def test_outputs_appear_after_the_receptive_field(causal):
    model = _model(causal)
    rf, lag = model.receptive_field, model.lookahead_frames
    _, px = _demo_2d()
    pipe = LivePipeline(model, "cpu", size=SIZE, pad_start=False)
    results = [pipe.process_keypoints(k, None, i / 30, i) for i, k in enumerate(px)]
    first = next(i for i, r in enumerate(results) if r.pose_3d is not None)
    assert first == rf - 1  # 9 frames for widths (3, 3)
    assert [r.pose_index for r in results[first:]] == list(range(rf - 1 - lag, len(px) - lag))
    # the streamed pose equals the whole-window forward pass (VideoPose3D's model)
    norm = torch.as_tensor(normalize_screen_coordinates(px, *SIZE), dtype=torch.float32)
    with torch.no_grad():
        batch = model(norm[None])[0].numpy()
    stream = np.stack([r.pose_3d for r in results[first:]])
    np.testing.assert_allclose(stream, batch, atol=1e-4)
    assert (stream[:, 0] == 0).all()  # root-relative


@pytest.mark.parametrize("causal", [True, False])
def test_pad_start_gives_a_pose_from_the_first_frame(causal):
    model = _model(causal)
    lag = model.lookahead_frames
    _, px = _demo_2d(20)
    pipe = LivePipeline(model, "cpu", size=SIZE)
    results = [pipe.process_keypoints(k, None, i / 30, i) for i, k in enumerate(px)]
    assert all(r.pose_3d is None for r in results[:lag]) and results[lag].pose_index == 0
    tail = pipe.flush()  # the lookahead's last frames, by edge padding
    assert [r.pose_index for r in tail] == list(range(20 - lag, 20))


def test_bad_keypoints_never_give_nan():
    rng = np.random.default_rng(0)
    _, px = _demo_2d(120)
    pipe = LivePipeline(_model(False), "cpu", size=SIZE, hold_frames=3)
    pipe.recorder.start()
    inputs = []
    for i, k in enumerate(px):
        k = k.copy()
        kind = i % 10
        if kind == 1:
            k[rng.integers(0, 17, 3)] = np.nan  # a few joints lost
        elif kind == 2:
            k[13] = [1e6, -1e6]  # a wrist far out of the image
        elif kind == 3 and i > 60:
            k[:] = np.nan  # no person at all
        elif kind == 4 and i > 60:
            k = None
        elif kind == 5:
            k[16] = np.inf
        if 90 <= i < 100:
            k = None  # a long gap: the lifter restarts
        inputs.append(k)
    results = [pipe.process_keypoints(k, None, i / 30, i) for i, k in enumerate(inputs)]
    results += pipe.flush()
    poses = [r.pose_3d for r in results if r.pose_3d is not None]
    assert len(poses) > 80 and all(np.isfinite(p).all() for p in poses)
    assert not results[93].tracked and results[93].pose_3d is None  # long gap: nothing held
    assert results[63].keypoints_2d is not None and not results[63].tracked
    assert np.isnan(results[63].keypoints_2d).all()  # the raw 2D is reported as it came
    recording = pipe.recorder.stop()
    assert recording.num_frames == 120
    np.testing.assert_array_equal(recording.timestamps_s, np.arange(120) / 30)  # in order
    tracked = recording.tracked
    assert np.isfinite(recording.positions[tracked]).all()
    assert np.isnan(recording.positions[~tracked]).all()
    assert not tracked[90:100].any()
    assert tracked[[i for i in range(60) if i % 10 != 1]].all()  # kind 1 may lose a core joint
    assert pipe.buffer_frames == len(pipe.adapt_buffer()) == tracked.sum()
    assert np.isfinite(pipe.adapt_buffer()).all()


def test_helpers():
    kp = np.array([[10.0, 10.0]] * 17)
    kp[3] = [np.nan, 0]
    kp[5] = [-100.0, 10]  # 10% margin of 640 is 64 px
    kp[6] = [-60.0, 10]
    assert valid_joints(kp, SIZE).tolist() == [j not in (3, 5) for j in range(17)]
    conf = np.ones(17)
    conf[[7, 8]] = [0.49, 0.5]  # the threshold is inclusive
    assert seen_joints(kp, conf, SIZE).tolist() == [j not in (3, 5, 7) for j in range(17)]
    # a short dropout takes the last seen position; a long one, or no history, stays NaN
    seen = seen_joints(kp, conf, SIZE)
    last = np.full((17, 2), 7.0)
    last[7] = np.nan  # never seen
    unseen_for = np.zeros(17, int)
    unseen_for[5] = 3  # lost 3 frames ago: too long
    filled, flags = fill_dropouts(kp, seen, last, unseen_for)
    assert flags.tolist() == [j not in (5, 7) for j in range(17)]
    np.testing.assert_array_equal(filled[3], [7, 7])
    assert np.isnan(filled[[5, 7]]).all() and (filled[flags] != 7).sum() == 2 * 14
    filled, flags = fill_dropouts(kp, seen, None, unseen_for)
    assert (flags == seen).all() and np.isnan(filled[~seen]).all()
    # tracking: both shoulders detected and at least 5 joints seen
    upper = np.zeros(17, bool)
    upper[[8, 11, 14, 16]] = True  # thorax, shoulders and a wrist
    assert not is_tracked(upper)
    upper[9] = True  # and the head's centre
    assert is_tracked(upper)
    detected = upper.copy()
    detected[11] = False  # a shoulder only filled from an earlier frame
    assert not is_tracked(upper, detected) and is_tracked(upper, upper)


def test_seen_flags_have_hysteresis():
    kp = np.array([[10.0, 10.0]] * 17)
    kp[5] = [-100.0, 10]  # outside the image: never seen, whatever its confidence
    conf = np.full(17, 0.9)
    conf[[1, 2, 3, 4]] = [0.45, 0.45, 0.2, 0.55]
    was = np.ones(17, bool)
    was[[2, 4]] = False
    seen = seen_with_hysteresis(kp, conf, SIZE, was)
    # 1 kept (seen before, above 0.3); 2 not yet (0.45 < 0.5); 3 lost (< 0.3); 4 found (>= 0.5)
    assert seen.tolist() == [j not in (2, 3, 5) for j in range(17)]
    # a segment's start has no previous frame: the band counts as seen
    start = seen_with_hysteresis(kp, conf, SIZE, None)
    assert start.tolist() == [j not in (3, 5) for j in range(17)]
    # a higher entry threshold still keeps a joint seen before down to 0.3
    assert seen_with_hysteresis(kp, conf, SIZE, was, min_confidence=0.95)[1]


def test_a_joint_hovering_around_the_threshold_stays_seen():
    # MediaPipe's visibility of a joint hovers around 0.5: the pipeline keeps it seen (from the
    # first frame on) instead of dropping it in and out of the lifter's input.
    _, px = _demo_2d(30)
    conf = np.ones((30, 17))
    conf[:, 2] = np.where(np.arange(30) % 5 == 0, 0.42, 0.55)  # right knee; 0.42 at the start
    conf[20:, 13] = 0.1  # the left wrist lost for good at frame 20
    pipe = LivePipeline(_model(), "cpu", size=SIZE)
    seen = np.array([pipe.process_keypoints(px[i], conf[i], i / 30.0).seen for i in range(30)])
    assert seen[:, 2].all()
    assert seen[:20, 13].all() and not seen[20 + 3 :, 13].any()  # filled for 3 frames, then lost


def _upper_body_view(px, seed=0):
    """The demo's 2D as MediaPipe gives it for a person cut off below the chest: 33 landmarks
    whose hips, knees and ankles have a low visibility, mapped to H36M-17 by skeleton."""
    rng = np.random.default_rng(seed)
    frames = len(px)
    landmarks = np.zeros((frames, 33, 2))
    visibility = rng.uniform(0.8, 1.0, (frames, 33))
    # shoulders, elbows, wrists, hips, knees, ankles (MediaPipe indices) from the H36M joints
    for mp, h36m in zip((11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28),
                        (11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3)):  # fmt: skip
        landmarks[:, mp] = px[:, h36m]
    landmarks[:, [7, 8]] = px[:, [9]] + [[-8.0, 0.0], [8.0, 0.0]]  # ears around the head
    visibility[:, 23:33] = rng.uniform(0.0, 0.2, (frames, 10))  # below the desk or the image
    return mediapipe_to_h36m(landmarks, visibility)


@pytest.mark.parametrize("causal", [True, False])
def test_hips_and_legs_unseen_still_give_every_joint(causal):
    _, px = _demo_2d(30)
    kp, conf = _upper_body_view(px)
    kp[10:20, [2, 3, 5, 6]] = np.nan  # and sometimes no leg joint at all
    pipe = LivePipeline(_model(causal), "cpu", size=SIZE, hold_frames=3)
    pipe.recorder.recovery_dir = None
    pipe.recorder.start()
    results = [pipe.process_keypoints(k, c, i / 30, i) for i, (k, c) in enumerate(zip(kp, conf))]
    results += pipe.flush()
    legs = [0, 1, 2, 3, 4, 5, 6, 7]  # pelvis, hips, knees, ankles and the spine (from the hips)
    assert all(r.tracked for r in results[:30])
    poses = [r for r in results if r.pose_3d is not None]
    assert len(poses) == 30 and all(np.isfinite(r.pose_3d).all() for r in poses)
    for r in poses:
        assert r.pose_3d.shape == (17, 3) and not r.pose_seen[legs].any()
        assert r.pose_seen[8:].all() and (r.pose_confidence[legs] == 0).all()
    recording = pipe.recorder.stop()
    assert recording.tracked.all() and np.isfinite(recording.positions).all()
    assert not recording.seen[:, legs].any() and recording.seen[:, 8:].all()
    # the lifter was given NaN for the unseen joints, never an invented position
    buffer = pipe.adapt_buffer()
    assert np.isnan(buffer[:, legs]).all() and np.isfinite(buffer[:, 8:]).all()


def test_short_dropouts_are_filled_and_long_ones_are_not():
    _, px = _demo_2d(20)
    conf = np.ones((20, 17))
    conf[5, 13] = 0.1  # one frame: filled from frame 4
    conf[10:20, 16] = 0.1  # from frame 10 on: filled 3 frames, then unseen
    pipe = LivePipeline(_model(), "cpu", size=SIZE)
    results = [pipe.process_keypoints(k, c, i / 30, i) for i, (k, c) in enumerate(zip(px, conf))]
    assert all(r.tracked for r in results)
    assert results[5].seen[13] and all(results[i].seen[16] for i in (10, 11, 12))
    assert not any(results[i].seen[16] for i in range(13, 20))
    buffer = pipe.adapt_buffer()
    norm = normalize_screen_coordinates(px, *SIZE)
    np.testing.assert_allclose(buffer[5, 13], norm[4, 13], atol=1e-6)  # the last seen position
    np.testing.assert_allclose(buffer[12, 16], norm[9, 16], atol=1e-6)
    assert np.isnan(buffer[13:, 16]).all()
    # a head-and-shoulders bust is tracked; the shoulders and thorax alone are not
    bust = np.full((17, 2), np.nan)
    bust[[8, 9, 10, 11, 14]] = px[0, [8, 9, 10, 11, 14]]
    pipe.reset()
    r = pipe.process_keypoints(bust, None, 1.0, 30)
    assert r.tracked and r.seen.sum() == 5 and np.isfinite(r.pose_3d).all()
    bust[[9, 10]] = np.nan
    pipe.reset()
    assert not pipe.process_keypoints(bust, None, 1.0, 31).tracked


def test_known_lens_undistorts_before_lifting():
    lens = parse_lens("brown:-0.25,0.05")
    intrinsics = Intrinsics.from_hfov(90.0, *SIZE)
    source = DemoSource(lens=lens, hfov_deg=90.0, size=SIZE, frames=12, draw=False)
    pipe = LivePipeline(_model(), "cpu", intrinsics=intrinsics, known_lens=lens)
    distorted = []
    while (frame := source.read()) is not None:
        pipe.process_frame(frame)
        distorted.append(frame.keypoints_2d)
    k = intrinsics.matrix
    dist = np.array([-0.25, 0.05, 0, 0, 0])
    ideal = cv2.undistortPoints(np.concatenate(distorted)[:, None], k, dist, P=k)[:, 0]
    expected = normalize_screen_coordinates(ideal.reshape(12, 17, 2), *SIZE)
    np.testing.assert_allclose(pipe.adapt_buffer(), expected, atol=1e-4)
    assert np.abs(pipe.adapt_buffer() - normalize_screen_coordinates(
        np.stack(distorted), *SIZE)).max() > 0.01  # fmt: skip
    # the demo's truth reaches the result with the live MPJPE
    r = pipe.process_frame(DemoSource(lens=lens, size=SIZE, draw=False).read())
    manual = 1000 * np.linalg.norm(r.pose_3d - r.truth_3d, axis=-1).mean()
    assert r.mpjpe_mm == pytest.approx(manual) and (r.truth_3d[0] == 0).all()
    with pytest.raises(Exception, match="640x360"):
        LivePipeline(_model(), "cpu", size=(320, 180), intrinsics=intrinsics, known_lens=lens)


def test_adapted_weights_and_revert():
    _, px = _demo_2d(30)
    pipe = LivePipeline(_model(), "cpu", size=SIZE)
    for i in range(20):
        base = pipe.process_keypoints(px[i], None, i / 30, i).pose_3d
    original = {k: v.clone() for k, v in pipe.model.state_dict().items()}
    adapted = pipe.model_copy()
    with torch.no_grad():
        adapted.shrink.bias.add_(torch.linspace(-0.1, 0.1, 51))  # per joint: not a shift
    pipe.set_model_state(adapted.state_dict())
    assert pipe.is_adapted
    after = pipe.process_keypoints(px[20], None, 20 / 30, 20).pose_3d
    assert after is not None  # no blink: the lifter was refilled
    pipe.revert()
    again = pipe.process_keypoints(px[21], None, 21 / 30, 21).pose_3d
    for key, value in pipe.model.state_dict().items():
        torch.testing.assert_close(value, original[key])
    assert not pipe.is_adapted
    fresh = LivePipeline(_model(), "cpu", size=SIZE)
    ref = [fresh.process_keypoints(px[i], None, i / 30, i).pose_3d for i in range(22)]
    np.testing.assert_allclose(again, ref[21], atol=1e-5)
    assert np.abs(after - ref[20]).max() > 1e-3 and base is not None


def test_adapted_weights_report_the_unadapted_error_on_the_same_frames():
    cam, px = _demo_2d(60)
    pipe = LivePipeline(_model(), "cpu", size=SIZE)
    fresh = LivePipeline(_model(), "cpu", size=SIZE)  # the unadapted weights, alone
    for i in range(30):
        r = pipe.process_keypoints(px[i], None, i / 30, i, cam[i])
        fresh.process_keypoints(px[i], None, i / 30, i, cam[i])
        assert r.mpjpe_mm is not None and r.unadapted_mpjpe_mm is None  # not adapted yet
    adapted = pipe.model_copy()
    with torch.no_grad():
        adapted.shrink.bias.add_(torch.linspace(-0.1, 0.1, 51))
    pipe.set_model_state(adapted.state_dict())
    for i in range(30, 60):
        r = pipe.process_keypoints(px[i], None, i / 30, i, cam[i])
        plain = fresh.process_keypoints(px[i], None, i / 30, i, cam[i])
        assert r.unadapted_mpjpe_mm == pytest.approx(plain.mpjpe_mm, abs=1e-3)
        assert abs(r.mpjpe_mm - plain.mpjpe_mm) > 0.1
    pipe.revert()
    assert pipe.process_keypoints(px[0], None, 2.0, 60, cam[0]).unadapted_mpjpe_mm is None


def test_stage_stats():
    stats = StageStats(window=10)
    for i in range(5):
        stats.add("mediapipe", 0.020 + 0.002 * i, now=100.0 + i / 25)
    s = stats.summary()["mediapipe"]
    assert s["fps"] == pytest.approx(25.0) and s["latency_ms"] == pytest.approx(24.0)
    assert s["calls"] == 5 and s["mean_ms"] == pytest.approx(24.0)
    assert stats.text() == "mediapipe 25 fps 24.0 ms"


def test_live_session_runs_and_reports_a_lost_camera():
    source = DemoSource(size=SIZE, frames=15, draw=False)
    session = LiveFeed(source, LivePipeline(_model(), "cpu"), realtime=False)
    results = []
    while (item := session.step(timeout=1.0)) is not StopIteration:
        if item is not None:
            results.append(item)
    session.close()
    assert 0 < len(results) <= 15 and len(results) + session.frames_dropped == 15
    assert all(r.pose_3d is not None and r.mpjpe_mm is not None for r in results)
    assert "capture" in session.pipeline.stats.summary()

    lost = LiveFeed(FakeSource(size=SIZE, fail_after=3, delay_s=0.01),
                       LivePipeline(_model(), "cpu", detector=_NoPerson()))  # fmt: skip
    with pytest.raises(SourceError, match="unplugged"):
        for _ in range(500):
            lost.step(timeout=0.05)
    lost.close()


class _NoPerson:
    def detect(self, image):
        return None
