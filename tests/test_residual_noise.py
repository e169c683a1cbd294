"""Real detection residuals replayed on training windows (`data.residual_noise`)."""

import numpy as np
import pytest
from h36m_fake import make_model, write_synthetic_h36m

from distpose_app.core.errors import DataFormatError
from distpose_app.data.detector_noise import SPINE, SWAP_PAIRS, DetectorNoiseSampler
from distpose_app.data.residual_noise import ResidualBank, detection_residuals

J = 17


def test_residuals_per_subject_at_the_model_rate_with_the_spine_filled(tmp_path):
    path = write_synthetic_h36m(tmp_path / "h.npz", make_model(), frames=1000, sequences=2,
                                subjects=(1, 5), detected=(1, 5))  # fmt: skip
    one, lengths = detection_residuals(path, {"S1"}, fps=30.0)
    both, _ = detection_residuals(path, None, fps=30.0)
    # 2 takes x 4 cameras of 1,000 frames at 50 fps -> 600 frames each at 30 fps.
    assert one.shape == (8 * 600, J, 2) and lengths.sum() == len(one) and len(lengths) == 8
    assert len(both) == 2 * len(one)
    np.testing.assert_allclose(one[:, SPINE], one[:, [0, 8]].mean(1), atol=1e-6)
    assert np.isfinite(one).all()
    # The injected error's size (metres at the person's depth), not pixels.
    assert 0.01 < np.median(np.linalg.norm(one, axis=-1)) < 0.05
    with pytest.raises(DataFormatError, match="no detections of S9 \\(detections of S1, S5\\)"):
        detection_residuals(path, {"S9"})
    # Asked for S1 and S6 where S6 has no detections: refused, not S1 alone in silence.
    with pytest.raises(DataFormatError, match="no detections of S6 "):
        detection_residuals(path, {"S1", "S6"})


def test_swaps_are_undone_before_the_residual_is_kept(tmp_path):
    swapping = make_model(swap_rate=np.full(len(SWAP_PAIRS), 0.3), outlier_prob=np.zeros(J))
    path = write_synthetic_h36m(tmp_path / "h.npz", swapping, frames=1000, sequences=1)
    res, _ = detection_residuals(path, None)
    # The fake pose's left and right joints are 0.3-1.2 m apart: a kept swap would show as an
    # error of that size; the core noise is 1-2 cm.
    assert np.linalg.norm(res, axis=-1).max() < 0.25


def test_bank_windows_lie_inside_one_run():
    residuals = np.arange(15 * J * 2, dtype=np.float32).reshape(15, J, 2)
    bank = ResidualBank(residuals, np.array([5, 10]), window=6)
    assert list(bank.starts) == [5, 6, 7, 8, 9]  # the 5-frame run is too short
    w = bank.sample(np.random.default_rng(0), 50, 6)
    assert w.shape == (50, 6, J, 2)
    first = w[:, :, 0, 0] / (J * 2)  # the frame index each value came from
    assert np.all(np.diff(first, axis=1) == 1) and first.min() >= 5
    with pytest.raises(ValueError):
        bank.sample(np.random.default_rng(0), 1, 7)
    with pytest.raises(DataFormatError):
        ResidualBank(residuals, np.array([5, 10]), window=11)


def test_sampler_gives_the_chosen_share_real_residuals_in_pixels():
    model = make_model(swap_rate=np.zeros(len(SWAP_PAIRS))).to_dict()
    residuals = np.random.default_rng(1).normal(0, 0.05, (400, J, 2)).astype(np.float32)
    bank = ResidualBank(residuals, np.array([400]), window=9)
    px = np.zeros((200, 9, J, 2))
    to_px = np.full((200, 9), 1000.0)  # 1,000 px a metre
    plain = DetectorNoiseSampler(model, 1.0, "random")(np.random.default_rng(2), px, to_px)
    none = DetectorNoiseSampler(model, 1.0, "random", bank, 0.0)
    assert np.array_equal(none(np.random.default_rng(2), px, to_px), plain)
    every = DetectorNoiseSampler(model, 2.0, "random", bank, 1.0)(np.random.default_rng(2), px,
                                                                    to_px)  # fmt: skip
    # Each window is 2 x a contiguous residual window x 1,000 px a metre.
    starts = [np.flatnonzero(np.all(np.isclose(residuals * 2000, w[0]), axis=(1, 2)))
              for w in every]  # fmt: skip
    assert all(len(s) == 1 for s in starts)
    half = DetectorNoiseSampler(model, 1.0, "random", bank, 0.5)(np.random.default_rng(3), px,
                                                                   to_px)  # fmt: skip
    from_bank = [bool(np.all(np.isclose(residuals * 1000, w[0]), axis=(1, 2)).any()) for w in half]
    assert 0.35 < np.mean(from_bank) < 0.65


def test_residuals_of_the_real_detections(shared_dir):
    path = shared_dir / "data" / "h36m-train-s1-s5-s6-s7-s8.npz"
    if not path.is_file():
        pytest.skip("Human3.6M training file absent")
    res, lengths = detection_residuals(path, {"S1"})
    assert len(res) > 100_000 and lengths.min() >= 1
    err = np.linalg.norm(res, axis=-1)
    # Stacked Hourglass on Human3.6M: a few centimetres at the median, heavy tails.
    assert 0.02 < np.median(err) < 0.08 and np.percentile(err, 99) > 3 * np.median(err)
