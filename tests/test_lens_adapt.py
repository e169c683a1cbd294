import math

import numpy as np
import pytest
import torch
from poses import symmetric_pose

from distpose_app.adapt import lens_fit as la
from distpose_app.core.errors import DistposeError
from distpose_app.lifter.model import TemporalModel


def _tiny_model(seed=0) -> TemporalModel:
    torch.manual_seed(seed)
    return TemporalModel(filter_widths=(3, 3), channels=16, dropout=0.0, causal=True).eval()


def _keypoints(n=80, seed=0, noise=0.002) -> np.ndarray:
    """A symmetric pose walking across the image, projected at f = 1, 3 m away: (n, 17, 2)."""
    rng = np.random.default_rng(seed)
    pose = symmetric_pose()
    x = np.linspace(-0.8, 0.8, n)[:, None]
    cam = pose[None] + np.stack([x, 0 * x, 3.0 + 0 * x], -1)
    kp = cam[..., :2] / cam[..., 2:3]
    return (kp + noise * rng.standard_normal(kp.shape)).astype(np.float32)


def test_screen_lens_hand_computed_and_identity():
    lens = la.ScreenLens(k1=0.1, k2=0.05, scale=2.0, cx=0.1, cy=0.0)
    kp = np.zeros((17, 2))
    kp[0] = [0.6, 0.0]  # d - c = (0.5, 0): r^2 = 0.25 -> factor 1 + 0.025 + 0.003125
    out = lens.undistort(kp)
    assert out.dtype == np.float32 and out.shape == (17, 2)
    assert out[0] == pytest.approx([0.1 + 2 * 0.5 * 1.028125, 0.0], abs=1e-6)
    # d - c = (-0.1, 0): r^2 = 0.01 -> factor 1 + 0.001 + 0.000005
    assert out[1] == pytest.approx([0.1 + 2 * -0.1 * 1.001005, 0.0], abs=1e-6)
    assert la.ScreenLens().is_identity and not lens.is_identity
    x = np.random.default_rng(0).uniform(-1, 1, (5, 17, 2))
    np.testing.assert_allclose(la.ScreenLens().undistort(x), x, atol=1e-6)
    assert la.ScreenLens.from_dict(lens.to_dict()) == lens
    back = la.ScreenLens.from_params(lens.params_tensor(torch.float64))
    assert back.scale == pytest.approx(2.0) and back.k2 == pytest.approx(0.05)
    with pytest.raises(DistposeError):
        la.ScreenLens.from_dict({"k1": "abc"})


def test_undistort_inverts_a_brown_distortion_to_second_order():
    # A one-term Brown lens r_d = r (1 + k r^2) has the series inverse r_d (1 - k r_d^2 +
    # 3 k^2 r_d^4 ...). The k1 < 0 branch is the division r_d / (1 + k r_d^2) = r_d (1 - k r_d^2
    # + k^2 r_d^4 ...), so k1 = -k, k2 = 2 k^2 undo it to O(r^5).
    k = 0.1
    r = np.linspace(0.0, 0.4, 9)
    ideal = np.stack([r, 0.5 * r], -1)
    rr = (ideal**2).sum(-1, keepdims=True)
    distorted = ideal * (1 + k * rr)
    back = la.ScreenLens(k1=-k, k2=2 * k * k).undistort(distorted)
    r_max = 0.4 * math.sqrt(1.25)
    assert np.abs(back - ideal).max() < 20 * k**3 * r_max**7  # the 12 k^3 r^7 remainder
    first_order = la.ScreenLens(k1=-k).undistort(distorted)
    assert np.abs(first_order - ideal).max() > k**2 * r_max**5  # k2 = 0 leaves 2 k^2 r^5


def test_nan_kept_and_no_nan_gradient():
    kp = torch.tensor(_keypoints(30))
    kp[3, 5] = float("nan")
    kp[7] = float("nan")
    params = la.ScreenLens(k1=0.2).params_tensor().requires_grad_(True)
    out = la.undistort_screen(kp, params)
    assert torch.isnan(out[3, 5]).all() and torch.isnan(out[7]).all()
    assert torch.isfinite(out[3, :5]).all()
    out.nan_to_num(0.0).sum().backward()
    assert torch.isfinite(params.grad).all()
    model = _tiny_model()
    config = la.LensAdaptConfig(steps=3, grid_k1=(0.0, 0.1))
    objective = la._Objective.on_buffer(model, kp.numpy(), config)
    params.grad = None
    loss, terms = objective(params)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(params.grad).all()


def test_reprojection_residual_zero_for_a_projected_pose():
    pose = torch.tensor(symmetric_pose())[None]  # (1, 17, 3) root-relative
    cam = pose + torch.tensor([0.3, -0.1, 2.5], dtype=pose.dtype)
    f = 1.2
    kp = f * cam[..., :2] / cam[..., 2:3]
    seen = torch.ones(1, 17, dtype=torch.bool)
    res = la.reprojection_residual(pose, kp, seen, f)
    assert float(res[0]) == pytest.approx(0.0, abs=1e-5)
    # A squashed 2D pose cannot be explained; masking the moved joint removes the residual.
    moved = kp.clone()
    moved[0, 13, 1] += 0.1
    assert float(la.reprojection_residual(pose, moved, seen, f)[0]) > 0.005
    seen[0, 13] = False
    assert float(la.reprojection_residual(pose, moved, seen, f)[0]) == pytest.approx(0, abs=1e-5)


def test_guard_returns_identity_when_nothing_to_gain():
    model = _tiny_model()
    kp = _keypoints(60)
    config = la.LensAdaptConfig(steps=2, grid_k1=(0.0,), min_improvement=0.5)
    res = la.lens_adapt(model, kp, config)
    assert not res.accepted and res.lens.is_identity and "fell by less" in res.reason
    assert res.loss_after == res.loss_before
    assert res.summary()["lens"] == la.ScreenLens().to_dict()
    cancelled = la.lens_adapt(model, kp, la.LensAdaptConfig(steps=5), cancel=lambda: True)
    assert not cancelled.accepted and cancelled.reason == "cancelled"
    with pytest.raises(DistposeError):
        la.lens_adapt(model, kp[:3], config)
    with pytest.raises(DistposeError):
        la.LensAdaptConfig(weights={"nonsense": 1.0}).validate()


def test_recovers_a_known_distortion_with_a_pose_prior_lifter():
    """A "lifter" that knows the body (it returns the true pose, whatever the 2D): the
    reprojection residual is then zero only for the lens that undoes the distortion."""
    true_pose = torch.tensor(symmetric_pose(), dtype=torch.float32)

    class PosePrior(torch.nn.Module):
        receptive_field = 1
        lookahead_frames = 0

        def forward(self, x):
            return true_pose.expand(x.shape[0], x.shape[1], 17, 3).clone()

    kp = _keypoints(60, noise=0.0).astype(np.float64)
    r2 = (kp**2).sum(-1, keepdims=True)
    k_true = 0.25
    distorted = (kp * (1 - k_true * r2)).astype(np.float32)  # barrel, screen units at f = 1
    # The prior lifter has no bias, so no offset.
    config = la.LensAdaptConfig(k1_offset=0.0, focal=1.0, steps=20, lr=0.02, min_improvement=0.1,
                                grid_k1=tuple(np.linspace(-0.5, 0.5, 11)))  # fmt: skip
    progress = []
    res = la.lens_adapt(PosePrior(), distorted, config, progress=lambda d, t: progress.append(d))
    assert res.accepted, res.reason
    assert res.lens.k1 == pytest.approx(k_true, abs=0.05)
    assert res.loss_after < 0.5 * res.loss_before and progress[-1] == res.steps
    assert math.isfinite(res.seconds)
    # Undistorted input: nothing to gain, the guard keeps the identity.
    clean = la.lens_adapt(PosePrior(), kp.astype(np.float32), config)
    assert not clean.accepted and clean.lens.is_identity


def test_split_halves_must_agree():
    """The same pose-prior lifter; the first half of the buffer is distorted, the second is not
    (not one lens): each half alone would be adapted differently, so the buffer is refused."""
    true_pose = torch.tensor(symmetric_pose(), dtype=torch.float32)

    class PosePrior(torch.nn.Module):
        receptive_field = 1
        lookahead_frames = 0

        def forward(self, x):
            return true_pose.expand(x.shape[0], x.shape[1], 17, 3).clone()

    kp = _keypoints(60, noise=0.0).astype(np.float64)
    r2 = (kp**2).sum(-1, keepdims=True)
    mixed = kp.copy()
    mixed[:30] = kp[:30] * (1 - 0.4 * r2[:30])
    grid = tuple(np.linspace(-0.5, 0.5, 11))
    config = la.LensAdaptConfig(k1_offset=0.0, focal=1.0, steps=10, lr=0.02, min_improvement=0.1,
                                grid_k1=grid, split_check=True)  # fmt: skip
    res = la.lens_adapt(PosePrior(), mixed.astype(np.float32), config)
    assert not res.accepted and "halves disagree" in res.reason and res.lens.is_identity
    # Without the check the whole buffer would have been adapted to a compromise.
    single = la.LensAdaptConfig(**{**config.__dict__, "split_check": False})
    assert la.lens_adapt(PosePrior(), mixed.astype(np.float32), single).accepted
