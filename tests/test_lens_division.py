"""Fitzgibbon's division model: closed forms, round trips, torch twins, lens strings, sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from distpose_app.core.errors import LensError
from distpose_app.data.lens_sampler import LensSampler
from distpose_app.lens import models as L
from distpose_app.lens.strings import parse_lens


def _points(n: int, radius: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = radius * np.sqrt(rng.uniform(0, 1, n))
    a = rng.uniform(0, 2 * np.pi, n)
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=-1)


def test_undistort_is_the_definition_hand_computed():
    # (0.5, 0.2): r_d² = 0.29, 1 - 0.3 · 0.29 = 0.913.
    got = L.Division(-0.3).undistort(np.array([0.5, 0.2]))
    np.testing.assert_allclose(got, [0.5 / 0.913, 0.2 / 0.913], rtol=1e-15)


@pytest.mark.parametrize("lam", [-0.6, -0.3, -0.05, 0.0, 0.1, 0.4])
def test_distort_inverts_the_definition(lam):
    lens = L.Division(lam)
    reach = min(1.2, 0.99 * lens.fold_radius())
    xy = _points(500, reach, seed=1)
    xd = lens.distort(xy)
    # Independent: r_u(r_d) = r_d / (1 + λ r_d²) solved by bisection on the monotonic branch.
    r_u = np.hypot(xy[:, 0], xy[:, 1])
    lo, hi = np.zeros_like(r_u), np.full_like(r_u, 1 / math.sqrt(abs(lam)) if lam else 10.0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        below = mid / (1 + lam * mid**2) < r_u
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    np.testing.assert_allclose(np.hypot(xd[:, 0], xd[:, 1]), lo, atol=1e-12)
    np.testing.assert_allclose(lens.undistort(xd), xy, atol=1e-13)  # round trip
    # Direction is kept: distortion is radial.
    np.testing.assert_allclose(np.cross(xd, xy), 0.0, atol=1e-14)


def test_barrel_compresses_and_limits():
    lens = L.Division(-0.3)
    r = np.hypot(*lens.distort(np.array([[1.0, 0.0], [100.0, 0.0]])).T)
    assert r[0] < 1.0 and r[1] < 1 / math.sqrt(0.3)
    assert np.isnan(lens.undistort(np.array([2.0, 0.0]))).all()  # beyond 1/√0.3: no ideal point


def test_pincushion_fold():
    lens = L.Division(0.25)  # fold at r = 1/(2·0.5) = 1, r_d = 2 there
    assert lens.fold_radius() == pytest.approx(1.0)
    np.testing.assert_allclose(lens.distort(np.array([1.0, 0.0])), [2.0, 0.0])
    assert np.isnan(lens.distort(np.array([1.1, 0.0]))).all()
    assert np.isnan(lens.undistort(np.array([2.5, 0.0]))).all()  # the folded branch
    assert not L.is_monotonic(lens, 1.2) and L.is_monotonic(lens, 0.9)


@pytest.mark.parametrize("lam", [-0.3, 0.2])
def test_torch_twins_match_and_differentiate(lam):
    lens = L.Division(lam)
    xy = _points(200, 0.9, seed=2)
    t = torch.tensor(xy, dtype=torch.float64, requires_grad=True)
    d = lens.distort_torch(t)
    np.testing.assert_allclose(d.detach().numpy(), lens.distort(xy), atol=1e-14)
    u = lens.undistort_torch(d)
    np.testing.assert_allclose(u.detach().numpy(), xy, atol=1e-13)
    # undistort ∘ distort = identity, so its Jacobian is the identity.
    (g,) = torch.autograd.grad(u[:, 0].sum(), t)
    np.testing.assert_allclose(g.numpy(), np.tile([1.0, 0.0], (200, 1)), atol=1e-10)


def test_torch_undistort_clamps_instead_of_nan():
    out = L.Division(0.25).undistort_torch(torch.tensor([[3.0, 0.0]], dtype=torch.float64))
    np.testing.assert_allclose(out.numpy(), [[1.0, 0.0]])  # the fold's ideal radius


def test_lens_strings_and_sampler():
    lens = parse_lens("division:-0.3")
    assert isinstance(lens, L.Division) and lens.lam == -0.3
    assert parse_lens(lens.spec()) == lens and lens.params == {"lambda": -0.3}
    assert parse_lens(" Division : 0 ").is_identity
    for bad in ("division", "division:", "division:1,2", "division:x"):
        with pytest.raises(LensError):
            parse_lens(bad)
    with pytest.raises(LensError, match="folds"):
        parse_lens("division:2")  # folds at r = 0.35 < 0.5
    assert not LensSampler().contains(lens)
    assert not LensSampler().contains(L.Division(0.0))
