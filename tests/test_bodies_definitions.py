"""Body variety (bone scaling along the tree) and the rig -> Human3.6M joint definitions."""

from dataclasses import replace

import numpy as np
import pytest
from poses import walking

from distpose_app.core.skeleton import PARENTS, bone_lengths
from distpose_app.data import bodies, definitions


def test_scale_bones_scales_each_bone_and_keeps_the_root():
    joints = walking(20, 0.0)[None]  # (1, 20, 17, 3)
    factors = np.linspace(0.7, 1.3, 17)[None]
    out = bodies.scale_bones(joints, factors)
    np.testing.assert_allclose(out[..., 0, :], joints[..., 0, :])
    before = bone_lengths(joints[0])
    after = bone_lengths(out[0])
    children = [j for j in range(17) if PARENTS[j] >= 0]
    np.testing.assert_allclose(after, before * factors[0, children], rtol=1e-9)
    # bone directions unchanged: no squashing of the pose
    for j in children:
        a = joints[0, :, j] - joints[0, :, PARENTS[j]]
        b = out[0, :, j] - out[0, :, PARENTS[j]]
        cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        assert cos.min() > 1 - 1e-9


def test_body_distribution_covers_children_and_adults_symmetrically():
    f = bodies.sample_bone_factors(np.random.default_rng(0), 20000)
    legs = f[:, 2]
    assert legs.min() < 0.6 and np.quantile(legs, 0.99) > 1.1  # small children to tall adults
    assert 0.1 < (legs < 0.85).mean() < 0.2  # about the children's share
    np.testing.assert_array_equal(f[:, 1], f[:, 4])  # left and right hips alike
    np.testing.assert_array_equal(f[:, 12], f[:, 15])  # left and right arms alike
    assert not np.allclose(f[:, 11] / f[:, 1], 1.0)  # shoulder vs hip width varies
    same = bodies.sample_bone_factors(np.random.default_rng(0), 20000)
    np.testing.assert_array_equal(f, same)


def test_rig_mapping_fit_reproduces_the_targets_mean_positions():
    rng = np.random.default_rng(1)
    rig = walking(200, 0.3).astype(np.float64)
    rig = rig + rng.normal(0, 0.002, rig.shape)
    neck, head = rig[:, 8].copy(), rig[:, 9].copy()
    # A target body: wider hips, a thorax lower and a "nose" in front of the head joint.
    target_joints = rig.copy()
    s, lat, up, fwd = definitions.body_frame(rig)
    mid = 0.5 * (rig[:, 1] + rig[:, 4])
    target_joints[:, 1] = mid + 1.6 * (rig[:, 1] - mid)
    target_joints[:, 4] = mid + 1.6 * (rig[:, 4] - mid)
    target_joints[:, 8] = rig[:, 8] - 0.03 * up
    target_joints[:, 9] = rig[:, 9] + 0.08 * fwd
    target = definitions.body_frame_statistics(target_joints)
    mapping = definitions.fit_rig_mapping(rig, neck, head, target)
    mapped = definitions.apply_rig_mapping(rig, neck, head, mapping)
    got = definitions.body_frame_statistics(mapped)
    for j in (1, 4, 8, 9):
        np.testing.assert_allclose(got["mean"][j], target["mean"][j], atol=0.02)
    assert got["hip_half_width"] == pytest.approx(target["hip_half_width"], rel=0.02)


def test_knees_that_never_straighten_are_moved_into_their_bend_until_they_do():
    """A rig whose knee centre sits in front of the target's: its straightest legs stay bent.
    The fit moves the knees in, closing most of the gap to the target's straightest flexion (a
    knee moves at most half its distance to the hip-ankle line, so a straight target is
    approached, not reached), and a knee already straight does not move."""
    target_joints = walking(300, 0.1).astype(np.float64)
    rig = target_joints.copy()
    rig[:, [2, 5]] += 0.03 * definitions.body_frame(rig)[3][:, None]  # knees 3 cm forward
    neck, head = rig[:, 8].copy(), rig[:, 9].copy()
    target = definitions.body_frame_statistics(target_joints)
    assert (definitions.body_frame_statistics(rig)["knee_low"] > target["knee_low"] + 2).all()
    mapping = definitions.fit_rig_mapping(rig, neck, head, target)
    assert 0.0 < mapping.knee_in < 0.3
    mapped = definitions.apply_rig_mapping(rig, neck, head, mapping)
    before = definitions.body_frame_statistics(rig)["knee_low"] - target["knee_low"]
    after = definitions.body_frame_statistics(mapped)["knee_low"] - target["knee_low"]
    assert (np.abs(after) < 0.6 * np.abs(before)).all()
    np.testing.assert_array_equal(mapped[:, [3, 6]], rig[:, [3, 6]])  # ankles untouched
    # without knee_in (older mappings) the knees are untouched; a straight knee stays put
    same = definitions.apply_rig_mapping(rig, neck, head, replace(mapping, knee_in=0.0))
    np.testing.assert_array_equal(same[:, [2, 5]], rig[:, [2, 5]])
    hip, ankle = rig[:, 1], rig[:, 3]
    straight = definitions._knee_moved_in(hip, 0.4 * hip + 0.6 * ankle, ankle, 0.05)
    np.testing.assert_allclose(straight, 0.4 * hip + 0.6 * ankle, atol=1e-12)
