"""Lens models against OpenCV, lens strings, presets, the training sampler, normalisation."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from distpose_app.core.errors import LensError
from distpose_app.data.lens_sampler import LensSampler
from distpose_app.lens import models as L
from distpose_app.lens.screen import image_coordinates, normalize_screen_coordinates
from distpose_app.lens.strings import PRESETS, parse_lens

K = L.Intrinsics.from_hfov(90.0, 1920, 1080)
BROWNS = [
    L.BrownConrady(-0.31, 0.062, -0.01, 0.001, -0.0015),
    L.BrownConrady(0.1, 0.02, 0.0, 0.002, 0.001),
    L.BrownConrady(-0.12, 0.0, 0.0, -0.002, 0.002),
    PRESETS["moderate"],
]
FISHEYES = [
    L.KannalaBrandt(0.05, -0.01, 0.005, -0.002),
    L.KannalaBrandt(-0.05, 0.02, -0.01, 0.005),
    L.EquidistantFisheye(),
]


def _points(n: int, radius: float, seed: int = 0) -> np.ndarray:
    """n ideal normalised points uniform in the disc of `radius`, (n, 2)."""
    rng = np.random.default_rng(seed)
    r = radius * np.sqrt(rng.uniform(0, 1, n))
    a = rng.uniform(0, 2 * np.pi, n)
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=-1)


# ---------------------------------------------------------------------------- intrinsics
def test_intrinsics_from_hfov():
    assert K.fx == pytest.approx(960.0) and K.fy == K.fx
    assert (K.cx, K.cy) == (960.0, 540.0)
    assert K.hfov_deg == pytest.approx(90.0)
    assert K.corner_radius == pytest.approx(math.hypot(1.0, 0.5625))
    np.testing.assert_allclose(K.matrix, [[960, 0, 960], [0, 960, 540], [0, 0, 1]])
    with pytest.raises(LensError, match="field of view"):
        L.Intrinsics.from_hfov(180, 640, 480)


# ---------------------------------------------------------------------------- Brown vs OpenCV
@pytest.mark.parametrize("lens", BROWNS, ids=lambda x: x.spec())
def test_brown_matches_opencv(lens):
    radius = 0.95 * min(K.corner_radius, lens.fold_radius())
    xy = _points(3000, radius)
    pts = np.concatenate([xy * 2.5, np.full((len(xy), 1), 2.5)], axis=-1)  # metres, z = 2.5
    ref, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), K.matrix, lens.opencv_coeffs())
    px = L.project_points(pts, K, lens)
    assert np.abs(px - ref[:, 0]).max() < 1e-6
    np.testing.assert_allclose(L.distort_pixels(K.to_pixels(xy), K, lens), px, atol=1e-6)

    # OpenCV's iterative undistortion, run to convergence, is the independent reference.
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 2000, 1e-13)
    und = cv2.undistortPointsIter(ref, K.matrix, lens.opencv_coeffs(), None, K.matrix, crit)
    ours = L.undistort_pixels(px, K, lens)
    assert np.abs(ours - und[:, 0]).max() < 1e-6
    assert np.abs(ours - K.to_pixels(xy)).max() < 1e-6  # undistort ∘ distort = identity
    assert np.abs(lens.undistort(lens.distort(xy)) - xy).max() < 1e-9


def test_brown_by_hand():
    # x = 0.5, y = 0.2: r² = 0.29, radial = 1 + 0.1·0.29 = 1.029,
    # x_d = 0.5145 + 2·0.01·0.1 + 0.02·(0.29 + 0.5) = 0.5323, y_d = 0.2058 + 0.01·(0.29 + 0.08)
    # + 2·0.02·0.1 = 0.2135.
    lens = L.BrownConrady(k1=0.1, p1=0.01, p2=0.02)
    np.testing.assert_allclose(lens.distort([0.5, 0.2]), [0.5323, 0.2135], atol=1e-12)


# ---------------------------------------------------------------------------- KB vs OpenCV
@pytest.mark.parametrize("lens", FISHEYES, ids=lambda x: x.spec())
def test_fisheye_matches_opencv(lens):
    xy = _points(3000, 2.0)  # up to 63° off axis
    d = lens.opencv_coeffs()
    ref = cv2.fisheye.distortPoints(xy[:, None], K.matrix, d)[:, 0]
    px = K.to_pixels(lens.distort(xy))
    assert np.abs(px - ref).max() < 1e-6
    pts = np.concatenate([xy, np.ones((len(xy), 1))], axis=-1)[:, None]
    ref2, _ = cv2.fisheye.projectPoints(pts, np.zeros(3), np.zeros(3), K.matrix, d)
    assert np.abs(L.project_points(pts[:, 0], K, lens) - ref2[:, 0]).max() < 1e-6

    und = cv2.fisheye.undistortPoints(ref[:, None], K.matrix, d, P=K.matrix)[:, 0]
    ours = L.undistort_pixels(px, K, lens)
    assert np.abs(ours - und).max() < 1e-6
    assert np.abs(ours - K.to_pixels(xy)).max() < 1e-6
    assert np.abs(lens.undistort(lens.distort(xy)) - xy).max() < 1e-9


def test_equidistant_by_hand():
    # A point 45° off axis (r = 1) lands at radius θ = π/4.
    np.testing.assert_allclose(L.EquidistantFisheye().distort([1.0, 0.0]), [math.pi / 4, 0.0])
    np.testing.assert_allclose(L.EquidistantFisheye().undistort([0.0, math.pi / 4]), [0, 1.0])


def test_shapes_zero_and_unreachable():
    for lens in [*BROWNS, *FISHEYES, L.NoLens()]:
        xy = _points(24, 0.5).reshape(2, 3, 4, 2)
        assert lens.distort(xy).shape == (2, 3, 4, 2)
        np.testing.assert_allclose(lens.undistort(lens.distort(xy)), xy, atol=1e-12)
        np.testing.assert_allclose(lens.undistort(np.zeros(2)), lens.distort(np.zeros(2)))
    # Barrel k1 = -0.3 peaks at r_d = 2/3·(1/0.9)^0.5 ≈ 0.703: nothing ideal maps beyond it.
    assert np.isnan(L.BrownConrady(-0.3).undistort([0.8, 0.0])).all()
    assert np.isnan(L.EquidistantFisheye().undistort([1.6, 0.0])).all()  # > π/2: behind camera
    # torch clamps them to the fold instead, with finite gradients.
    for lens in (L.BrownConrady(-0.3), L.BrownConrady(-0.3, p1=0.001), L.KannalaBrandt(-0.4)):
        t = torch.tensor([[0.8, 0.0], [5.0, 5.0], [0.1, 0.2]], requires_grad=True)
        u = lens.undistort_torch(t)
        u.sum().backward()
        assert torch.isfinite(t.grad).all()
        np.testing.assert_allclose(u[:2].detach().norm(dim=-1), lens.fold_radius(), rtol=1e-4)


# ---------------------------------------------------------------------------- torch
@pytest.mark.parametrize("lens", [*BROWNS, *FISHEYES, L.NoLens()], ids=lambda x: x.spec())
def test_torch_equals_numpy_and_has_gradients(lens):
    xy = _points(500, 0.9 * min(1.5, lens.fold_radius()), seed=3)
    t = torch.tensor(xy, requires_grad=True)
    d = lens.distort_torch(t)
    np.testing.assert_allclose(d.detach().numpy(), lens.distort(xy), atol=1e-12)
    d.sum().backward()
    assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0

    dd = torch.tensor(lens.distort(xy), requires_grad=True)
    u = lens.undistort_torch(dd)
    np.testing.assert_allclose(u.detach().numpy(), xy, atol=1e-9)
    # The gradient of undistort is the inverse of distort's Jacobian: check one point's row.
    u[0, 0].backward()
    jac = torch.autograd.functional.jacobian(lens.distort_torch, torch.tensor(xy[0]))
    np.testing.assert_allclose(dd.grad[0].numpy(), np.linalg.inv(jac.numpy())[0], atol=1e-7)

    px = torch.tensor(K.to_pixels(lens.distort(xy)), dtype=torch.float32)
    und = L.undistort_pixels_torch(px, K, lens)
    assert und.dtype == torch.float32
    np.testing.assert_allclose(und.numpy(), K.to_pixels(xy), atol=2e-3)  # float32 pixels


def test_torch_at_origin_and_projection():
    fisheye = L.KannalaBrandt(0.05, 0.0, 0.0, 0.0)
    t = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    fisheye.distort_torch(t).sum().backward()
    assert torch.isfinite(t.grad).all()
    pts = np.array([[0.3, -0.2, 2.0], [-0.5, 0.4, 3.0]])
    for lens in (PRESETS["strong"], fisheye):
        np.testing.assert_allclose(
            L.project_points_torch(torch.tensor(pts), K, lens).numpy(),
            L.project_points(pts, K, lens),
            atol=1e-9,
        )


# ---------------------------------------------------------------------------- lens strings
@pytest.mark.parametrize(
    "text, expected",
    [
        ("none", L.NoLens()),
        (" NONE ", L.NoLens()),
        ("brown:-0.1", L.BrownConrady(-0.1)),
        ("brown: -0.1, 0.02, 0, 0.001, -0.001", L.BrownConrady(-0.1, 0.02, 0, 0.001, -0.001)),
        ("fisheye:0.01,0.002", L.KannalaBrandt(0.01, 0.002)),
        ("fisheye:0,0,0,0", L.KannalaBrandt()),
        ("fisheye", L.EquidistantFisheye()),
        ("fisheye:", L.EquidistantFisheye()),
        ("Mild", PRESETS["mild"]),
    ],
)
def test_parse(text, expected):
    lens = parse_lens(text)
    assert lens == expected and type(lens) is type(expected)


@pytest.mark.parametrize(
    "lens",
    [
        L.NoLens(),
        L.BrownConrady(-0.123456789012345, 1e-5, -3e-7, 0.001, -0.002),
        L.KannalaBrandt(0.1 / 3, -0.01, 0, 1e-4),
        L.EquidistantFisheye(),
        *PRESETS.values(),
    ],
)
def test_spec_round_trip(lens):
    assert parse_lens(lens.spec()) == lens


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("barrel", "unknown lens 'barrel'.*mild"),
        ("brown", "brown needs 1 to 5 values"),
        ("brown:", "brown needs 1 to 5 values"),
        ("brown:0.1,0,0,0,0,0", "at most 5 values"),
        ("fisheye:0,0,0,0,0", "at most 4 values"),
        ("brown:0.1,abc", r"value 2 \('abc'\) is not a number"),
        ("brown:0.1,,0", r"value 2 \(''\) is not a number"),
        ("fisheye:nan", "not finite"),
        ("brown:inf", "not finite"),
        ("none:0.1", "'none' takes no values"),
        ("mild:0.1", "preset 'mild' takes no values"),
        ("brown:-3", "folds the image"),
        ("fisheye:-2", "folds the image"),
    ],
)
def test_invalid_strings(text, message):
    with pytest.raises(LensError, match=message):
        parse_lens(text)


def test_fold_check_uses_given_radius():
    assert parse_lens("brown:-0.3", max_radius=0.5) == L.BrownConrady(-0.3)
    with pytest.raises(LensError, match="folds"):
        parse_lens("brown:-0.3", max_radius=K.corner_radius)  # fold at r = √(1/0.9) ≈ 1.054
    assert parse_lens("brown:-3", max_radius=None) == L.BrownConrady(-3)


# ---------------------------------------------------------------------------- presets
def test_presets_corner_displacement():
    # Barrel presets by definition: 3 %, 8 %, 15 % of the diagonal at 90° hfov, 16:9.
    for name, target in (("mild", 0.03), ("moderate", 0.08), ("strong", 0.15)):
        assert L.corner_displacement(PRESETS[name]) == pytest.approx(target, abs=0.003)
        assert PRESETS[name].k1 < 0
    for lens in PRESETS.values():
        assert L.is_monotonic(lens, K.corner_radius)
    # Independent check for mild (k1 only): corner (960, 540) px from centre moves inwards by
    # 960·|k1|·r³ px, r = |(1, 0.5625)|.
    r = math.hypot(1, 0.5625)
    expected = 960 * 0.046 * r**3 / math.hypot(1920, 1080)
    assert L.corner_displacement(PRESETS["mild"]) == pytest.approx(expected, rel=1e-12)
    assert L.corner_displacement(L.NoLens()) == 0.0


def test_is_monotonic():
    assert L.is_monotonic(L.BrownConrady(-0.3), 1.0)
    assert not L.is_monotonic(L.BrownConrady(-0.3), 1.1)
    assert L.BrownConrady(-0.3).fold_radius() == pytest.approx(math.sqrt(1 / 0.9))
    # Tangential terms alone fold once the Jacobian determinant crosses zero.
    assert L.is_monotonic(L.BrownConrady(p1=0.05), 1.0)
    assert not L.is_monotonic(L.BrownConrady(p1=0.5), 1.0)
    # KB k1 = -0.4: dθ_d/dθ = 1 - 1.2 θ² vanishes at θ = 0.913 rad.
    assert L.is_monotonic(L.KannalaBrandt(-0.4), math.tan(0.9))
    assert not L.is_monotonic(L.KannalaBrandt(-0.4), math.tan(0.92))
    assert L.is_monotonic(L.EquidistantFisheye(), 1e6)


# ---------------------------------------------------------------------------- sampler
def test_sampler_monotonic_deterministic_and_contained():
    sampler = LensSampler()
    rng = np.random.default_rng(7)
    hfovs = np.linspace(50, 120, 2000)
    sizes = [(640, 480), (1280, 720), (1920, 1080)]
    radii = [L.Intrinsics.from_hfov(h, *sizes[i % 3]).corner_radius for i, h in enumerate(hfovs)]
    lenses = [sampler.sample(rng, r) for r in radii]
    assert all(L.is_monotonic(lens, r) for lens, r in zip(lenses, radii, strict=True))
    assert all(sampler.contains(lens) for lens in lenses)
    kinds = {type(x).__name__ for x in lenses}
    assert kinds == {"NoLens", "BrownConrady", "KannalaBrandt"}
    assert any(isinstance(x, L.BrownConrady) and x.k1 > 0 for x in lenses)  # pincushion
    assert min(L.corner_displacement(x) for x in lenses[:700]) < 0.1  # strong barrel appears

    again = [sampler.sample(np.random.default_rng(7), radii[0]) for _ in range(2)]
    assert again[0] == again[1] == lenses[0]

    assert not sampler.contains(L.BrownConrady(-0.8))
    assert not sampler.contains(L.BrownConrady(0.3))
    assert not sampler.contains(L.KannalaBrandt(0.3))
    assert not sampler.contains(L.BrownConrady(-0.1, p1=0.01))
    assert sampler.contains(L.NoLens()) and sampler.contains(L.EquidistantFisheye())
    for name in ("mild", "moderate", "strong", "pincushion"):
        assert sampler.contains(PRESETS[name])


def test_sampler_description_round_trip():
    import json

    sampler = LensSampler(p_none=0.5, p_barrel=0.5, p_pincushion=0.0, p_fisheye=0.0)
    d = json.loads(json.dumps(sampler.describe()))
    assert LensSampler.from_description(d) == sampler
    assert not sampler.contains(PRESETS["pincushion"])  # its family has p = 0
    with pytest.raises(LensError, match="sum to 1"):
        LensSampler(p_none=0.5)


# ---------------------------------------------------------------------------- normalisation
def test_normalize_screen_coordinates():
    px = np.array([[0.0, 0.0], [1920.0, 1080.0], [960.0, 540.0]])
    norm = normalize_screen_coordinates(px, 1920, 1080)
    np.testing.assert_allclose(norm, [[-1, -0.5625], [1, 0.5625], [0, 0]])
    np.testing.assert_allclose(image_coordinates(norm, 1920, 1080), px)

    # Per-sample sizes: (N,) widths with (N, J, 2) points.
    rng = np.random.default_rng(0)
    w, h = np.array([640, 1920]), np.array([480, 1080])
    pts = rng.uniform(0, 1, (2, 17, 2)) * np.stack([w, h], -1)[:, None]
    n = normalize_screen_coordinates(pts, w, h)
    np.testing.assert_allclose(n[1], normalize_screen_coordinates(pts[1], 1920, 1080))
    assert np.abs(n[..., 0]).max() <= 1
    np.testing.assert_allclose(image_coordinates(n, w, h), pts)

    t = normalize_screen_coordinates(torch.tensor(pts), torch.tensor(w), torch.tensor(h))
    np.testing.assert_allclose(t.numpy(), n)


# ---------------------------------------------------------------------------- CLI
def test_cli(capsys):
    from distpose_app.cli.main import main

    assert main(["lens", "strong", "--hfov", "90", "--size", "1920x1080"]) == 0
    out = capsys.readouterr().out
    assert "brown:-0.31,0.062,0,0,0" in out and "% of the diagonal" in out and "yes" in out
    assert main(["lens", "brown:-0.3", "--hfov", "120"]) == 0
    assert "NO" in capsys.readouterr().out
    assert main(["lens", "brown:x"]) == 2
    assert "brown value 1 ('x') is not a number" in capsys.readouterr().err


def test_identity_and_params():
    assert L.NoLens().is_identity and L.BrownConrady().is_identity
    assert not L.EquidistantFisheye().is_identity and not PRESETS["mild"].is_identity
    assert PRESETS["strong"].params == {"k1": -0.31, "k2": 0.062, "k3": 0, "p1": 0, "p2": 0}
    assert L.EquidistantFisheye().params == {"k1": 0, "k2": 0, "k3": 0, "k4": 0}
