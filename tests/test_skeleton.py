"""The MediaPipe-33 -> H36M-17 mapping places each joint where the training mocap has it."""

import numpy as np

from distpose_app.core import skeleton as S


def _landmarks() -> np.ndarray:
    """An upright MediaPipe body with the street walk's proportions, metres, y up: trunk 0.45 m,
    shoulders 0.651 x 0.45 m apart at y = 1.40, hips 0.381 x 0.45 m apart at y = 0.95, ears at
    y = 1.575 (0.175 m above the shoulders)."""
    sh, hip = 0.651 * 0.45 / 2, 0.381 * 0.45 / 2
    lm = np.zeros((33, 3))
    lm[S.MP_LEFT_SHOULDER], lm[S.MP_RIGHT_SHOULDER] = [sh, 1.40, 0], [-sh, 1.40, 0]
    lm[S.MP_LEFT_HIP], lm[S.MP_RIGHT_HIP] = [hip, 0.95, 0], [-hip, 0.95, 0]
    lm[S.MP_LEFT_EAR], lm[S.MP_RIGHT_EAR] = [0.07, 1.575, 0], [-0.07, 1.575, 0]
    lm[S.MP_LEFT_KNEE], lm[S.MP_RIGHT_KNEE] = [0.09, 0.5, 0.02], [-0.09, 0.5, 0.02]
    return lm


def test_derived_joints_by_hand():
    joints, conf = S.mediapipe_to_h36m(_landmarks())
    name = {n: i for i, n in enumerate(S.JOINT_NAMES)}
    np.testing.assert_allclose(joints[name["LKnee"]], [0.09, 0.5, 0.02])  # direct
    np.testing.assert_allclose(joints[name["Hip"]], [0, 0.95, 0])
    hip, sh = 0.381 * 0.45 / 2, 0.651 * 0.45 / 2
    np.testing.assert_allclose(joints[name["LHip"]], [hip * S.HIP_WIDTH_FACTOR, 0.95, 0])
    np.testing.assert_allclose(joints[name["RShoulder"]], [-sh * S.SHOULDER_WIDTH_FACTOR, 1.4, 0])
    up = 0.175
    for joint, fraction in [("Thorax", S.THORAX_FRACTION), ("Neck", S.NECK_FRACTION),
                            ("Head", S.HEAD_TOP_FRACTION)]:  # fmt: skip
        np.testing.assert_allclose(joints[name[joint]], [0, 1.40 + fraction * up, 0])
    spine = 0.95 + S.SPINE_FRACTION * (1.40 + S.THORAX_FRACTION * up - 0.95)
    np.testing.assert_allclose(joints[name["Spine"]], [0, spine, 0])
    assert conf.shape == (17,) and np.all(conf == 1)


def test_mapped_proportions_match_human36m():
    # MediaPipe's own proportions (the street-walk measurement) come out as Human3.6M's
    # (docs/mocap.md): shoulder width 0.623 and hip width 0.628 of the trunk.
    joints, _ = S.mediapipe_to_h36m(_landmarks())
    trunk = 1.40 - 0.95
    assert abs(np.linalg.norm(joints[11] - joints[14]) / trunk - 0.623) < 0.01
    assert abs(np.linalg.norm(joints[1] - joints[4]) / trunk - 0.628) < 0.01
    # Head above neck/nose above thorax above the shoulder line, as in Human3.6M.
    assert joints[10, 1] > joints[9, 1] > joints[8, 1] > 1.40


def test_confidence_of_derived_joints_is_the_weakest_source():
    vis = np.ones(33)
    vis[S.MP_LEFT_HIP] = 0.2
    vis[S.MP_LEFT_EAR] = 0.4
    _, conf = S.mediapipe_to_h36m(_landmarks(), vis)
    assert conf[0] == 0.2 and conf[7] == 0.2 and conf[4] == 0.2 and conf[1] == 1
    assert conf[9] == 0.4 and conf[10] == 0.4 and conf[8] == 1
