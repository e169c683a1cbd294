"""The lens from the picture's straight edges (`lens.plumb_line`) and Adapt's use of it."""

import cv2
import numpy as np
import pytest
import torch
from test_lens_adapt import PRIOR, _barrel, _keypoints, _PosePrior

from distpose_app.adapt import lens_fit as la
from distpose_app.core.errors import DistposeError
from distpose_app.lens import plumb_line as pl
from distpose_app.lifter.model import undistort_screen

SIZE = (640, 360)


def _room(seed=0) -> np.ndarray:
    """A lens-free grey picture of straight edges (boxes, shelves, frames) in every part of it,
    with sensor noise: (360, 640) uint8."""
    rng = np.random.default_rng(seed)
    w, h = SIZE
    image = np.full((h, w), 90, np.uint8)
    for _ in range(40):
        x0, y0 = rng.integers(0, w - 80), rng.integers(0, h - 60)
        x1, y1 = x0 + rng.integers(60, 300), y0 + rng.integers(40, 200)
        cv2.rectangle(image, (int(x0), int(y0)), (int(x1), int(y1)), int(rng.integers(150, 255)),
                      int(rng.integers(2, 6)))  # fmt: skip
    noisy = image + rng.normal(0, 3, image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _through_lens(image: np.ndarray, k1: float, k2: float = 0.0) -> np.ndarray:
    """The picture as a camera whose lens `ScreenLens(k1, k2)` undoes would see it."""
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    d = np.stack([xs / w * 2 - 1, ys / w * 2 - h / w], -1)
    u = pl.undistort_points(d, k1, k2)
    mx = ((u[..., 0] + 1) * w / 2).astype(np.float32)
    my = ((u[..., 1] + h / w) * w / 2).astype(np.float32)
    return cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderValue=90)


def test_undistort_points_is_the_models_form():
    pts = np.random.default_rng(1).uniform(-1, 1, (50, 2))
    for k1, k2 in ((0.3, 0.0), (-0.2, 0.1), (0.5, 0.4)):
        model = undistort_screen(
            torch.from_numpy(pts[:, None]),
            torch.tensor([k1, k2, 0.0, 0.0, 0.0], dtype=torch.float64),
        )
        np.testing.assert_allclose(pl.undistort_points(pts, k1, k2), model[:, 0].numpy(),
                                   atol=1e-12)  # fmt: skip
    assert pl.lens_strength(0.0) == 0.0
    assert pl.lens_strength(0.3) == pytest.approx(0.3 * 0.49)
    assert pl.lens_strength(-0.2, 0.1) == pytest.approx(1 / (1 + 0.2 * 0.49) + 0.1 * 0.2401 - 1)


@pytest.mark.parametrize("k1,k2", [(0.3, 0.0), (0.15, 0.3), (-0.12, 0.0)])
def test_recovers_a_known_lens_from_straight_edges(k1, k2):
    pictures = [_through_lens(_room(seed), k1, k2) for seed in (0, 1)]
    found = pl.estimate_lens_from_lines(pictures)
    assert found.measured, found.reason
    truth = pl.lens_strength(k1, k2)
    assert found.strength == pytest.approx(truth, abs=0.02)
    if k2 == 0:  # k2 must earn its place: a k1 lens is not fitted with a k1/k2 ridge point
        assert found.k2 == 0
    low, high = found.interval
    assert low - 0.02 <= truth <= high + 0.02
    assert found.lines >= 8 and "straight edges" in found.reason


def test_lens_free_picture_shows_no_lens_and_is_deterministic():
    pictures = [_room(0), _room(1)]
    found = pl.estimate_lens_from_lines(pictures)
    assert found.measured and abs(found.strength) < 0.01
    assert found.interval[0] <= 0.01 and found.interval[1] >= -0.01
    again = pl.estimate_lens_from_lines([p.copy() for p in pictures])
    assert again.summary() == found.summary()
    colour = pl.estimate_lens_from_lines([cv2.cvtColor(p, cv2.COLOR_GRAY2BGR) for p in pictures])
    assert colour.k1 == found.k1


def test_a_picture_without_straight_edges_measures_nothing():
    blank = np.full(SIZE[::-1], 120, np.uint8)
    cv2.circle(blank, (320, 180), 120, 250, 3)  # curved: straight at no lens
    found = pl.estimate_lens_from_lines([blank])
    assert not found.measured and np.isnan(found.k1)
    assert "straight edges" in found.reason
    assert found.summary()["k1"] is None  # JSON-able
    with pytest.raises(DistposeError, match="share a size"):
        pl.estimate_lens_from_lines([blank, blank[:100]])
    with pytest.raises(DistposeError, match="uint8"):
        pl.estimate_lens_from_lines([blank.astype(np.float32)])
    with pytest.raises(DistposeError, match="cancelled"):
        pl.estimate_lens_from_lines([blank], cancel=lambda: True)


def test_picture_sampler_keeps_recent_or_spread_frames():
    frames = [np.full((40, 2000, 3), i, np.uint8) for i in range(100)]
    recent = pl.PictureSampler(keep=3, every=10)
    for f in frames:
        recent.offer(f)
    kept = recent.pictures()
    assert [int(p[0, 0]) for p in kept] == [70, 80, 90]
    assert kept[0].ndim == 2 and kept[0].shape[1] == 960  # grey, shrunk
    spread = pl.PictureSampler(keep=4, every=5, recent=False)
    for f in frames:
        spread.offer(f if spread.wants_next() else None)
    # the stride doubles each time it is full: 5, 10, 20, then 40 at frame 80
    assert [int(p[0, 0]) for p in spread.pictures()] == [0, 40, 80]
    with pytest.raises(DistposeError):
        pl.PictureSampler(keep=2, every=1).offer(None)
    spread.clear()
    assert spread.pictures() == [] and spread.wants_next()


def test_lens_adapt_follows_the_pictures_edges():
    kp = _keypoints(60, noise=0.0).astype(np.float64)
    config = la.LensAdaptConfig(**PRIOR)
    distorted = _barrel(kp, 0.25)
    # 2D alone: the barrel is found (test_lens_adapt); a lens-free picture overrules it
    flat = la.lens_adapt(_PosePrior(), distorted, config, pictures=[_room(0), _room(1)])
    assert not flat.accepted and "show no lens" in flat.reason
    assert flat.evidence["source"] == "picture" and flat.lens.is_identity
    # a lensed picture decides the lens, pincushion too (a measurement, not the 2D's pull)
    for k1 in (0.3, -0.12):
        pictures = [_through_lens(_room(s), k1) for s in (0, 1)]
        res = la.lens_adapt(_PosePrior(), kp, config, pictures=pictures)
        assert res.accepted, res.reason
        assert pl.lens_strength(res.lens.k1, res.lens.k2) == pytest.approx(
            pl.lens_strength(k1), abs=0.02
        )
        assert "straight edges" in res.reason
    # no straight edges: the 2D objective decides, and says what the picture lacked
    blank = np.full(SIZE[::-1], 120, np.uint8)
    res = la.lens_adapt(_PosePrior(), distorted, config, pictures=[blank])
    assert res.accepted and res.evidence.get("source") != "picture"
    assert "straight edges" in res.evidence["lines"]["reason"]


def test_k2_is_used_only_when_it_earns_its_place():
    """A lens with a real r^4 term gains from k2 (default config: recovered); when k2 has to
    gain more than it can (k2_min_gain=1), k1 alone is fitted and k2 stays exactly 0."""
    pictures = [_through_lens(_room(seed), 0.15, 0.3) for seed in (0, 1)]
    joint = pl.estimate_lens_from_lines(pictures)
    alone = pl.estimate_lens_from_lines(pictures, pl.LineConfig(k2_min_gain=1.0))
    assert joint.k2 != 0 and alone.k2 == 0
    truth = pl.lens_strength(0.15, 0.3)
    assert abs(joint.strength - truth) < abs(alone.strength - truth)


def test_an_estimate_on_the_search_bound_is_not_believed():
    """If the straightest lens is at the end of the k1 grid, the edges that chose it are not
    the scene's lines: nothing is measured, and the reason says so."""
    pictures = [_through_lens(_room(seed), 0.3) for seed in (0, 1)]
    narrow = pl.LineConfig(grid_k1=(-0.1, 0.0, 0.1), grid_k2=())
    found = pl.estimate_lens_from_lines(pictures, narrow)
    assert found.k1 == pytest.approx(0.1) and not found.measured
    assert "end of the range" in found.reason
    # Likewise k2's end: a lens whose r^4 term the grid cannot reach is not that lens.
    strong = [_through_lens(_room(seed), 0.15, 0.3) for seed in (0, 1)]
    capped = pl.estimate_lens_from_lines(strong, pl.LineConfig(grid_k2=(-0.5, 0.1, 0.2)))
    assert capped.k2 == pytest.approx(0.2) and not capped.measured
    assert "end of the range" in capped.reason and "k2 +0.20" in capped.reason
    assert pl.estimate_lens_from_lines(strong).measured  # the default grid reaches it


def test_a_lens_the_picture_shows_is_held_to_the_tighter_skeleton_share(monkeypatch):
    """Constancy 12% worse: a 2D fit may do that (the true lens itself raises it up to 11%),
    a lens the picture shows may not (there it flags MediaPipe's guesses outside the picture
    that the lens moves; docs/adaptation.md)."""
    figures = {"before": {"symmetry_mm": 10.0, "consistency_mm": 10.0},
               "after": {"symmetry_mm": 10.0, "consistency_mm": 11.2}}  # fmt: skip
    calls = iter(["before", "after"] * 2)
    monkeypatch.setattr(la, "_skeleton", lambda poses: figures[next(calls)])
    kp = _keypoints(60, noise=0.0).astype(np.float64)
    config = la.LensAdaptConfig(**PRIOR)
    pictures = [_through_lens(_room(s), 0.3) for s in (0, 1)]
    shown = la.lens_adapt(_PosePrior(), kp, config, pictures=pictures)
    assert not shown.accepted and "bone-length constancy 10.0 -> 11.2 mm" in shown.reason
    fitted = la.lens_adapt(_PosePrior(), _barrel(kp, 0.25), config)
    assert fitted.accepted, fitted.reason
