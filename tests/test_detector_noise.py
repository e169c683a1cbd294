"""Detector-noise model: the fit recovers injected noise, the sampler follows the model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distpose_app.core.errors import DataFormatError
from distpose_app.data.detector_noise import (
    MPII_TO_H36M,
    SPINE,
    SWAP_PAIRS,
    DetectorNoise,
    apply_swaps,
    fit_detector_noise,
    project_h36m_lens,
    sample_noise,
)

J = 17


def make_model(**overrides) -> DetectorNoise:
    rng = np.random.default_rng(3)
    values = dict(
        bias_m=rng.uniform(-0.03, 0.03, (J, 2)),
        sigma_m=rng.uniform(0.010, 0.020, (J, 2)),
        outlier_prob=np.full(J, 0.05),
        outlier_sigma_m=np.full(J, 0.08),
        outlier_burst_frames=np.full(J, 3.0),
        ar_slow=np.full(J, 0.97),
        ar_fast=np.full(J, 0.5),
        slow_share=np.full(J, 0.7),
        swap_rate=np.full(len(SWAP_PAIRS), 0.03),
        swap_burst_frames=np.full(len(SWAP_PAIRS), 4.0),
        fps=30.0,
        source="test",
    )
    values.update(overrides)
    return DetectorNoise(**values)


# A wide, frontal T-ish pose (metres, z up): every left/right pair at least 0.3 m apart.
BASE_POSE = np.array([
    [0, 0, 1.0], [-0.15, 0, 1.0], [-0.2, 0, 0.55], [-0.25, 0, 0.1], [0.15, 0, 1.0],
    [0.2, 0, 0.55], [0.25, 0, 0.1], [0, 0, 1.25], [0, 0, 1.5], [0, 0, 1.6], [0, 0, 1.75],
    [0.2, 0, 1.5], [0.4, 0, 1.45], [0.6, 0, 1.4], [-0.2, 0, 1.5], [-0.4, 0, 1.45],
    [-0.6, 0, 1.4],
])  # fmt: skip


def _look_at(centre: np.ndarray) -> np.ndarray:
    """World -> camera rotation (OpenCV axes) for a camera at `centre` looking at (0, 0, 1)."""
    forward = np.array([0, 0, 1.0]) - centre
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def write_synthetic_h36m(path, model: DetectorNoise, frames=3000, sequences=3, seed=0):
    """A file with the Human3.6M training file's keys, whose detections are the projected
    ground truth plus swaps and noise drawn from `model` at 50 fps."""
    rng = np.random.default_rng(seed)
    yaws = np.radians([-40, -15, 15, 40])
    centres = np.stack([[4 * np.sin(y), -4 * np.cos(y), 1.4] for y in yaws])
    cam_r = np.stack([_look_at(c) for c in centres])
    f = np.tile([1150.0, 1148.0], (4, 1))
    c = np.tile([500.0, 505.0], (4, 1))
    k = np.tile([-0.2, 0.2, 0.0], (4, 1))
    p = np.tile([-0.001, 0.0005], (4, 1))
    world, seq, sh_keypoints, sh_seq, sh_cam, sh_start = [], [], [], [], [], [0]
    t = np.arange(frames) / 50.0
    for s in range(sequences):
        sway = np.stack([0.3 * np.sin(0.3 * t + s), 0.3 * np.cos(0.2 * t), 0 * t], -1)
        pose = BASE_POSE[None] + sway[:, None]
        world.append(pose)
        seq.append(np.full(frames, s))
        for ci in range(4):
            x_cam = (pose - centres[ci]) @ cam_r[ci].T
            gt = project_h36m_lens(x_cam, f[ci], c[ci], k[ci], p[ci])
            m2px = (f[ci].mean() / x_cam[:, 0, 2])[None]
            swapped, _ = apply_swaps(model, rng, gt[None], fps=50.0)
            det = (swapped + sample_noise(model, rng, (1, frames), m2px, fps=50.0))[0]
            sh_keypoints.append(det[:, list(MPII_TO_H36M)])
            sh_seq.append(s)
            sh_cam.append(str(ci))
            sh_start.append(sh_start[-1] + frames)
    np.savez(
        path,
        world_3d=np.concatenate(world).astype(np.float32),
        sequence=np.concatenate(seq).astype(np.int32),
        sequence_names=np.array([f"S1/Walking {s}" for s in range(sequences)]),
        subject=np.ones(sequences, np.int32),
        action=np.array(["Walking"] * sequences),
        camera_subject=np.ones(4, np.int32),
        camera_id=np.array(["0", "1", "2", "3"]),
        camera_R=cam_r,
        camera_T=centres,
        camera_f=f,
        camera_c=c,
        camera_k=k,
        camera_p=p,
        camera_size=np.tile([1000.0, 1010.0], (4, 1)),
        sh_sequence=np.array(sh_seq, np.int32),
        sh_camera=np.array(sh_cam),
        sh_start=np.array(sh_start, np.int64),
        sh_keypoints=np.concatenate(sh_keypoints).astype(np.float32),
        fps=np.float32(50.0),
    )
    return path


def _acf(model: DetectorNoise, lag: int) -> np.ndarray:
    """The core's autocorrelation at `lag` frames that the model implies (17,)."""
    w = model.array("slow_share")
    return w * model.array("ar_slow") ** lag + (1 - w) * model.array("ar_fast") ** lag


def test_fit_recovers_injected_noise(tmp_path):
    truth = make_model()
    path = write_synthetic_h36m(tmp_path / "h36m.npz", truth)
    fitted = fit_detector_noise(path)
    seen = [j for j in range(J) if j != SPINE]
    assert fitted.fps == 30.0
    np.testing.assert_allclose(fitted.array("bias_m")[seen], truth.array("bias_m")[seen],
                               atol=0.004)  # fmt: skip
    np.testing.assert_allclose(fitted.array("sigma_m")[seen], truth.array("sigma_m")[seen],
                               rtol=0.12)  # fmt: skip
    np.testing.assert_allclose(fitted.array("outlier_prob")[seen], 0.05, atol=0.02)
    np.testing.assert_allclose(fitted.array("outlier_sigma_m")[seen], 0.08, rtol=0.2)
    np.testing.assert_allclose(fitted.array("swap_rate"), 0.03, atol=0.012)
    np.testing.assert_allclose(fitted.array("swap_burst_frames"), 4.0, rtol=0.35)
    # The fitted correlation over time, not each coefficient. Outlier draws near zero pass as
    # core and swaps exchange two joints' noise: the estimate runs about 0.05 low.
    for lag in (1, 5, 15, 30):
        np.testing.assert_allclose(_acf(fitted, lag)[seen], _acf(truth, lag)[seen], atol=0.1)
    # Spine (no detection) takes the mean of Hip's and Thorax's statistics.
    assert fitted.sigma_m[SPINE] == pytest.approx(
        tuple((np.array(fitted.sigma_m[0]) + np.array(fitted.sigma_m[8])) / 2)
    )


def test_dict_round_trip_through_json():
    model = make_model()
    again = DetectorNoise.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model
    with pytest.raises(DataFormatError):
        DetectorNoise.from_dict({**model.to_dict(), "extra": 1})
    with pytest.raises(DataFormatError):
        DetectorNoise.from_dict({**model.to_dict(), "sigma_m": [[0.1, 0.1]]})
    with pytest.raises(DataFormatError):
        DetectorNoise.from_dict({**model.to_dict(), "outlier_prob": [1.5] * J})


def test_at_fps_keeps_the_process_in_seconds():
    model = make_model()
    at_60 = model.at_fps(60.0)
    np.testing.assert_allclose(_acf(at_60, 2), _acf(model, 1))
    np.testing.assert_allclose(at_60.array("swap_burst_frames"), 8.0)
    back = at_60.at_fps(30.0).to_dict()
    for key, value in model.to_dict().items():
        if key != "source":
            np.testing.assert_allclose(back[key], value, rtol=1e-12)


def test_sampler_core_statistics_match_the_model():
    model = make_model(outlier_prob=np.zeros(J))
    rng = np.random.default_rng(0)
    m2px = np.full((300, 1), 250.0)  # e.g. focal 1000 px at 4 m
    noise = sample_noise(model, rng, (300, 400), m2px, bias=False) / 250.0
    assert noise.shape == (300, 400, J, 2)
    np.testing.assert_allclose(noise.std(axis=(0, 1)), model.array("sigma_m"), rtol=0.06)
    np.testing.assert_allclose(noise.mean(axis=(0, 1)), 0.0, atol=0.003)
    for lag in (1, 10, 30):  # the process is zero-mean: no mean removed
        corr = np.sum(noise[:, lag:] * noise[:, :-lag], axis=(0, 1, 3)) / np.sum(
            noise[:, lag:] ** 2, axis=(0, 1, 3)
        )
        np.testing.assert_allclose(corr, _acf(model, lag), atol=0.04)


def test_sampler_outliers_and_bias():
    model = make_model(outlier_prob=np.full(J, 0.1), outlier_sigma_m=np.full(J, 0.5))
    rng = np.random.default_rng(1)
    noise = sample_noise(model, rng, (400, 300), np.ones((400, 300)), bias=True)
    error = noise - model.array("bias_m")
    far = np.linalg.norm(error, axis=-1) > 0.15  # core std <= 2 cm: these are outliers
    share_in_outlier = np.exp(-0.5 * (0.15 / 0.5) ** 2)  # of 2D N(0, 0.5² I) beyond 0.15 m
    np.testing.assert_allclose(far.mean(), 0.1 * share_in_outlier, rtol=0.1)
    # Outliers hold their offset for the burst: consecutive outlier frames often repeat.
    same = np.all(error[:, 1:] == error[:, :-1], axis=-1) & far[:, 1:]
    assert same.sum() / far[:, 1:].sum() == pytest.approx(1 - 1 / 3.0, abs=0.05)
    np.testing.assert_allclose(np.median(noise, axis=(0, 1)), model.array("bias_m"), atol=0.003)


def test_random_bias_is_constant_per_window_with_the_fitted_magnitude():
    model = make_model(sigma_m=np.zeros((J, 2)), outlier_prob=np.zeros(J))
    noise = sample_noise(model, np.random.default_rng(2), (50, 20), np.ones((50, 1)),
                         bias="random")  # fmt: skip
    np.testing.assert_allclose(noise, np.broadcast_to(noise[:, :1], noise.shape))
    np.testing.assert_allclose(np.linalg.norm(noise[:, 0], axis=-1),
                               np.broadcast_to(np.linalg.norm(model.array("bias_m"), axis=-1),
                                               (50, J)))  # fmt: skip
    assert np.std(noise[:, 0, 3, 0]) > 0.3 * np.linalg.norm(model.bias_m[3])  # random direction
    zero = sample_noise(model, np.random.default_rng(2), (5, 20), np.ones((5, 1)), bias=False)
    np.testing.assert_array_equal(zero, 0.0)
    with pytest.raises(ValueError):
        sample_noise(model, np.random.default_rng(2), (5, 20), np.ones((5, 1)), bias="yes")
    with pytest.raises(ValueError):
        sample_noise(model, np.random.default_rng(2), (5, 20), np.ones((4, 1)))


def test_scale_multiplies_the_spread_not_the_bias():
    model = make_model()
    a = sample_noise(model, np.random.default_rng(5), (20, 30), np.ones((20, 1)), scale=1.0)
    b = sample_noise(model, np.random.default_rng(5), (20, 30), np.ones((20, 1)), scale=2.0)
    bias = model.array("bias_m")
    np.testing.assert_allclose(b - bias, 2 * (a - bias), atol=1e-12)


def test_swaps_rate_bursts_and_exchange():
    model = make_model()
    rng = np.random.default_rng(4)
    keypoints = rng.normal(size=(200, 300, J, 2))
    swapped, flags = apply_swaps(model, rng, keypoints)
    assert flags.shape == (200, 300, len(SWAP_PAIRS))
    np.testing.assert_allclose(flags.mean(axis=(0, 1)), 0.03, atol=0.006)
    starts = flags[:, 1:] & ~flags[:, :-1]
    np.testing.assert_allclose(flags[:, 1:].sum() / starts.sum(), 4.0, rtol=0.15)
    for p, (right, left) in enumerate(SWAP_PAIRS):
        on = flags[..., p]
        np.testing.assert_array_equal(swapped[on][:, right], keypoints[on][:, left])
        np.testing.assert_array_equal(swapped[~on][:, right], keypoints[~on][:, right])
    untouched = [j for j in range(J) if all(j not in pair for pair in SWAP_PAIRS)]
    np.testing.assert_array_equal(swapped[:, :, untouched], keypoints[:, :, untouched])
    none, flags0 = apply_swaps(model, rng, keypoints, rate_scale=0.0)
    assert not flags0.any() and np.array_equal(none, keypoints)


def test_sampler_is_deterministic_with_a_seed():
    model = make_model()
    m2px = np.full((4, 1), 300.0)
    a = sample_noise(model, np.random.default_rng(7), (4, 50), m2px, bias="random")
    b = sample_noise(model, np.random.default_rng(7), (4, 50), m2px, bias="random")
    c = sample_noise(model, np.random.default_rng(8), (4, 50), m2px, bias="random")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    s1 = apply_swaps(model, np.random.default_rng(7), np.zeros((4, 50, J, 2)))[1]
    s2 = apply_swaps(model, np.random.default_rng(7), np.zeros((4, 50, J, 2)))[1]
    np.testing.assert_array_equal(s1, s2)


@pytest.mark.slow
def test_fit_on_the_real_detections(shared_dir):
    path = shared_dir / "data" / "h36m-train-s1-s5-s6-s7-s8.npz"
    if not path.is_file():
        pytest.skip("Human3.6M training file absent")
    from distpose_app.data.detector_noise import _load_detection_errors

    model = fit_detector_noise(path)
    gt, det, _, _ = _load_detection_errors(path)
    seen = [j for j in range(J) if j != SPINE]
    real = np.nanmedian(np.linalg.norm(det - gt, axis=-1)[:, seen], axis=0)
    noise = sample_noise(model, np.random.default_rng(0), (200, 300), np.ones((200, 1)), fps=50)
    sampled = np.median(np.linalg.norm(noise, axis=-1), axis=(0, 1))
    # The model reproduces the real per-joint median error (metres at the person's depth).
    np.testing.assert_allclose(sampled[seen], real, rtol=0.15)
    assert 0.02 < np.median(real) < 0.08
