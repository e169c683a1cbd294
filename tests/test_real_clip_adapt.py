"""scripts/real_clip_adapt.py's measuring parts on made-up detections (no media needed): which
frames are compared, and that comparing never changes the detections it is given."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def rca():
    spec = importlib.util.spec_from_file_location("real_clip_adapt", SCRIPTS / "real_clip_adapt.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["real_clip_adapt"] = module  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("real_clip_adapt", None)


def _lens_free_detections(frames: int = 6) -> dict:
    """A made-up person (17 joints, about 300 px tall) on the right of the 1920x1080 canvas,
    float64 as the detection cache stores them."""
    rng = np.random.default_rng(3)
    body = np.stack([rng.uniform(-60, 60, 17), np.linspace(-150, 150, 17)], -1)
    kp = np.stack([body + [1400.0 + 10 * i, 560.0] for i in range(frames)])
    return {"keypoints": kp, "confidence": np.ones((frames, 17)),
            "timestamps_s": np.arange(frames) / 30.0}  # fmt: skip


def test_matched_frames_leaves_the_warped_detections_as_they_were(rca):
    """Undoing the true lens to compare must work on a copy: the caller lifts the same array
    afterwards as the unadapted input (in place, every "unadapted" figure had the true lens)."""
    from distpose_app.lens.models import Intrinsics, distort_pixels
    from distpose_app.lens.strings import parse_lens

    lens_free = _lens_free_detections()
    k = Intrinsics.from_hfov(rca.CANVAS_HFOV, *rca.CANVAS)
    warped_px = distort_pixels(lens_free["keypoints"], k, parse_lens("brown:-0.3", max_radius=None))
    warped = dict(lens_free, keypoints=warped_px.copy())
    assert warped["keypoints"].dtype == np.float64  # the case that np.asarray does not copy
    same = rca.matched_frames(warped, lens_free, "brown:-0.3")
    np.testing.assert_array_equal(warped["keypoints"], warped_px)
    assert same.all()  # the true lens undone, every frame matches
    # Without undoing the lens the frames do not match (the lens moves joints by tens of px).
    assert not rca.matched_frames(warped, lens_free, "none").any()


def test_matched_frames_drops_frames_where_the_detector_found_someone_else(rca):
    lens_free = _lens_free_detections()
    other = dict(lens_free, keypoints=lens_free["keypoints"].copy())
    other["keypoints"][2] += [400.0, 0.0]  # another pedestrian, 400 px away
    other["keypoints"][4] = np.nan  # nobody found
    same = rca.matched_frames(other, lens_free, "none")
    assert same.tolist() == [True, True, False, True, False, True]


def test_summary_says_where_the_warped_cases_stand(rca):
    nan = float("nan")

    def row(lens, unadapted, truelens, adapted, bar, accepted=True):
        return {"lens": lens, "unadapted_mm": unadapted, "truelens_mm": truelens,
                "adapted_mm": adapted, "bar": bar, "accepted": accepted,
                "runs_apart_mm": 0.0}  # fmt: skip

    rows = [
        row("none", 0.0, 0.0, 0.0, True, accepted=False),
        row("fisheye", 50.0, 48.0, 48.5, True),  # the true lens helps, Adapt met
        row("brown:-0.3", 40.0, 42.0, 41.5, False),  # the true lens hurts: near it, not met
        row("brown:0.12", 30.0, 29.0, 31.0, False),  # helps, Adapt more than 1 mm off
        row("fisheye", nan, nan, nan, False, accepted=False),  # no frame to compare
    ]
    text = rca.summarise(rows)
    assert "lens-free: 1 of 1 met (declined 1)" in text
    assert "warped: 1 of 4 met (accepted 3)" in text
    assert "3 comparable (1 with no frame" in text
    assert "within 1 mm of the true lens in 2 of 3" in text
    assert "no correction in 2, where Adapt met the bar in 1" in text
