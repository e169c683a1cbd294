"""The 3D view draws unseen joints (the pipeline's seen flags) apart from low-confidence ones:
greyed, faint, small, with dashed bones. Runs under Xvfb (pytest-xvfb) like test_gui.py."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from distpose_app.core.skeleton import BONES  # noqa: E402
from distpose_app.gui import skeleton_view as sv  # noqa: E402

pytestmark = pytest.mark.gui
LEGS = [0, 1, 2, 3, 4, 5, 6, 7]  # pelvis, hips, knees, ankles, spine: under the desk


def test_unseen_differs_from_low_confidence():
    conf = np.ones(17)
    conf[12] = 0.2  # a seen elbow with a low confidence
    seen = np.ones(17, bool)
    seen[LEGS] = False
    colours = sv.joint_colours(conf, seen)
    assert colours[13, 3] == 1.0 and colours[12, 3] == sv.LOW_CONFIDENCE_ALPHA
    assert (colours[LEGS, 3] == sv.UNSEEN_ALPHA).all()
    # greyed: the left hip's blue (0.25, 0.55, 1.0) moves halfway to grey 0.5
    np.testing.assert_allclose(colours[4, :3], [0.375, 0.525, 0.75])
    np.testing.assert_allclose(colours[12, :3], sv.LEFT_COLOUR[:3])  # low confidence: hue kept
    # no flags (the 2D overlay): confidence alone dims, as before
    assert sv.joint_colours(conf)[12, 3] == sv.DIM_ALPHA and sv.joint_colours(conf)[13, 3] == 1


def test_dashes():
    points = sv.dashed(np.zeros((1, 3)), np.array([[1.0, 0.0, 2.0]]), dashes=2)
    np.testing.assert_allclose(points[:, 0], [0, 0.25, 0.5, 0.75])  # two dashes, two gaps
    np.testing.assert_allclose(points[:, 2], [0, 0.5, 1.0, 1.5])


def test_view_draws_unseen_bones_dashed(qtbot):
    view = sv.SkeletonView()
    qtbot.addWidget(view)
    view.resize(320, 240)
    view.show()
    pose = np.random.default_rng(0).normal(0, 0.3, (17, 3))
    pose[0] = 0
    seen = np.ones(17, bool)
    seen[LEGS] = False
    view.set_pose(pose, np.ones(17), seen)
    dashed_bones = [b for b in BONES if not seen[list(b)].all()]
    assert len(dashed_bones) == 8  # the 7 lower bones and spine -> thorax
    assert view._unseen_bones.visible() and view._bones.visible()
    assert view._unseen_bones.pos.shape == (8 * 2 * sv.DASHES, 3)
    assert view._bones.pos.shape == ((16 - 8) * 2, 3)
    assert (view._joints.size[LEGS] == sv.UNSEEN_JOINT_SIZE).all()
    view.grab()  # renders without error
    view.set_pose(pose, np.ones(17))  # no flags: everything solid
    assert not view._unseen_bones.visible() and view._bones.pos.shape == (32, 3)
    view.clear_pose()
    assert not view._joints.visible()
