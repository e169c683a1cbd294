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
