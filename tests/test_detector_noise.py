"""Detector-noise model: the fit recovers injected noise, the sampler follows the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from h36m_fake import make_model, write_synthetic_h36m

from distpose_app.core.errors import DataFormatError
from distpose_app.data.detector_noise import (
    SPINE,
    SWAP_PAIRS,
    DetectorNoise,
    apply_swaps,
    fit_detector_noise,
    project_h36m_lens,
    sample_noise,
    undistort_h36m_lens,
)

J = 17


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
                                               (50, J)), rtol=1e-5)  # fmt: skip
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
    np.testing.assert_allclose(b - bias, 2 * (a - bias), atol=1e-6)


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


def test_undistort_inverts_the_h36m_lens():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.uniform(-1.5, 1.5, (500, 2)), rng.uniform(3, 6, (500, 1))], -1)
    f, c = np.array([1145.0, 1144.0]), np.array([512.0, 515.0])
    k, p = np.array([-0.207, 0.248, -0.003]), np.array([-0.0014, -0.001])
    distorted = project_h36m_lens(points, f, c, k, p)
    inside = np.all((distorted > 0) & (distorted < 1000), axis=-1)
    pinhole = points[:, :2] / points[:, 2:] * f + c
    undone = undistort_h36m_lens(distorted, f, c, k, p)
    np.testing.assert_allclose(undone[inside], pinhole[inside], atol=0.01)
    assert np.abs(distorted - pinhole)[inside].max() > 5  # the lens did move the points
    assert np.isnan(undistort_h36m_lens(np.full(2, np.nan), f, c, k, p)).all()
