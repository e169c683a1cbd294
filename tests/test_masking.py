"""Unseen-joint masks: groups, sampling rates, NaN application."""

import numpy as np
import pytest

from distpose_app.core.skeleton import JOINT_NAMES
from distpose_app.data import masking


def test_groups_name_the_joints_a_partial_view_loses():
    names = {g: {JOINT_NAMES[j] for j in idx} for g, idx in masking.MASK_GROUPS.items()}
    assert names["legs"] == {"RKnee", "RFoot", "LKnee", "LFoot"}
    assert names["legs"] < names["lower_body"] and "Hip" in names["lower_body"]
    assert names["left_arm"] == {"LElbow", "LWrist"}
    assert not set(masking.UPPER_BODY) & set(masking.MASK_GROUPS["lower_body"])
    assert masking.group_mask("head", (4,)).shape == (4, 17)
    assert masking.group_mask("head").sum() == 2


def test_sampled_masks_follow_the_configured_rates_and_hold_over_a_window():
    rng = np.random.default_rng(0)
    config = masking.MaskConfig(legs=0.2, lower_body=0.1, arm=0.2, head=0.1, joint_dropout=0.0)
    m = masking.sample_masks(rng, 20000, 5, config)
    assert m.shape == (20000, 5, 17)
    assert np.all(m == m[:, :1])  # a group is masked for the whole window
    first = m[:, 0]
    lower = first[:, 0]  # the pelvis goes only with the lower body
    legs_only = first[:, 2] & ~lower
    arm = first[:, 13] | first[:, 16]
    assert lower.mean() == pytest.approx(0.1, abs=0.01)
    assert legs_only.mean() == pytest.approx(0.2, abs=0.01)
    assert arm.mean() == pytest.approx(0.2, abs=0.01)
    assert first[:, 10].mean() == pytest.approx(0.1, abs=0.01)
    assert not np.any(first[:, 13] & first[:, 16])  # one arm at a time
    assert np.all(first.sum(1)[~first.any(1)] == 0)


def test_joint_dropout_is_per_frame_and_none_masks_nothing():
    rng = np.random.default_rng(1)
    m = masking.sample_masks(
        rng, 200, 50, masking.MaskConfig(0, 0, 0, 0, joint_dropout=0.05, spine=0.0)
    )
    assert m.mean() == pytest.approx(0.05, abs=0.005)
    assert not np.all(m == m[:, :1])
    assert not masking.sample_masks(rng, 10, 10, masking.NO_MASKING).any()
    with pytest.raises(ValueError):
        masking.sample_masks(rng, 1, 1, masking.MaskConfig(legs=0.7, lower_body=0.7))


def test_apply_mask_sets_nan_on_a_copy():
    kp = np.zeros((3, 17, 2), np.float32)
    out = masking.apply_mask(kp, masking.group_mask("legs"))
    assert np.isnan(out[:, 2]).all() and np.isfinite(out[:, 1]).all()
    assert np.isfinite(kp).all()


def test_spine_goes_unseen_for_whole_windows():
    config = masking.MaskConfig(0, 0, 0, 0, joint_dropout=0.0, spine=0.3)
    m = masking.sample_masks(np.random.default_rng(2), 2000, 10, config)
    spine = m[..., 7]
    assert (spine.all(1) | ~spine.any(1)).all()  # all frames of a window or none
    assert spine[:, 0].mean() == pytest.approx(0.3, abs=0.03)
    assert not m[..., [j for j in range(17) if j != 7]].any()
