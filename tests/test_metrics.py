import numpy as np
import pytest
from poses import symmetric_pose

from distpose_app.core import metrics
from distpose_app.core.skeleton import BONES, SYMMETRIC_BONE_PAIRS


def _rotation_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_mpjpe_hand_computed():
    target = np.zeros((1, 2, 3))
    pred = np.array([[[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]]])  # errors 5 and 2
    assert metrics.mpjpe(pred, target) == pytest.approx(3.5)
    with pytest.raises(ValueError):
        metrics.mpjpe(pred, np.zeros((2, 2, 3)))


def test_n_mpjpe_removes_scale_only():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(5, 17, 3))
    assert metrics.n_mpjpe(0.5 * target, target) == pytest.approx(0.0, abs=1e-12)
    # A rotation is not removed by scale alignment.
    rotated = target @ _rotation_z(0.3).T
    assert metrics.n_mpjpe(rotated, target) > 0.05


def test_p_mpjpe_removes_similarity_transform():
    rng = np.random.default_rng(1)
    target = rng.normal(size=(4, 17, 3))
    pred = 2.5 * target @ _rotation_z(1.1).T + np.array([1.0, -2.0, 3.0])
    assert metrics.p_mpjpe(pred, target) == pytest.approx(0.0, abs=1e-9)
    # A reflection must not be undone: the aligned error stays positive.
    mirrored = target * np.array([-1.0, 1.0, 1.0])
    assert metrics.p_mpjpe(mirrored, target) > 0.1


def test_p_mpjpe_hand_case():
    # Two points: Procrustes maps any two distinct points exactly onto any other two.
    target = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    pred = np.array([[[5.0, 5.0, 5.0], [5.0, 7.0, 5.0]]])
    assert metrics.p_mpjpe(pred, target) == pytest.approx(0.0, abs=1e-9)
    assert metrics.mpjpe(pred, target) == pytest.approx(
        0.5 * (np.sqrt(75.0) + np.linalg.norm([4.0, 7.0, 5.0]))
    )


def test_mpjve_hand_computed():
    target = np.zeros((3, 1, 3))
    pred = np.zeros((3, 1, 3))
    pred[1, 0, 0] = 1.0  # velocities: +1 then -1 -> errors 1 and 1
    assert metrics.mpjve(pred, target) == pytest.approx(1.0)


def test_bone_symmetry_and_consistency_zero_for_rigid_symmetric_sequence():
    pose = symmetric_pose()
    seq = np.stack([pose @ _rotation_z(a).T + a for a in np.linspace(0, 2, 10)])
    assert metrics.bone_symmetry_error(seq) == pytest.approx(0.0, abs=1e-12)
    assert metrics.bone_consistency(seq) == pytest.approx(0.0, abs=1e-12)
    assert metrics.bone_consistency_ratio(seq) == pytest.approx(0.0, abs=1e-12)


def test_bone_symmetry_hand_computed():
    pose = symmetric_pose()
    pose[13] += np.array([0, 0.06, 0])  # left forearm 0.25 -> 0.31: one pair off by 0.06
    assert metrics.bone_symmetry_error(pose) == pytest.approx(0.06 / len(SYMMETRIC_BONE_PAIRS))


def test_bone_consistency_hand_computed():
    a, b = symmetric_pose(), symmetric_pose()
    b[13] += np.array([0, 0.02, 0])  # left forearm 0.25 then 0.27: std 0.01 on one bone
    seq = np.stack([a, b])
    assert metrics.bone_consistency(seq) == pytest.approx(0.01 / len(BONES))
    assert metrics.bone_consistency_ratio(seq) == pytest.approx((0.01 / 0.26) / len(BONES))


def test_mean_joint_acceleration():
    t = np.arange(5) / 10.0
    seq = np.zeros((5, 1, 3))
    seq[:, 0, 0] = 0.5 * 2.0 * t**2  # constant acceleration 2 m/s^2
    assert metrics.mean_joint_acceleration(seq, fps=10.0) == pytest.approx(2.0)
