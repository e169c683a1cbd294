"""Plausibility checks on hand-made poses with hand-computed ratios and angles."""

import numpy as np
import pytest

from distpose_app.core.skeleton import BONE_NAMES, JOINT_NAMES
from distpose_app.evaluation import plausibility as pl
from tests.poses import symmetric_pose, walking

J = {name: i for i, name in enumerate(JOINT_NAMES)}


def _bend_knee(pose: np.ndarray, side: str, degrees: float) -> np.ndarray:
    """Swing the shin (y down, length 0.42) forward (+z) by `degrees` about the knee."""
    out = pose.copy()
    a = np.radians(degrees)
    knee, ankle = J[f"{side}Knee"], J[f"{side}Foot"]
    out[ankle] = out[knee] + 0.42 * np.array([0.0, np.cos(a), np.sin(a)])
    return out


def test_bone_ratios_of_the_rest_pose():
    # Trunk = 0.25 + 0.25 = 0.5 m (tests/poses.py offsets).
    ratios = dict(zip(BONE_NAMES, pl.bone_ratios(symmetric_pose())))
    expected = {
        "Hip-RHip": 0.1 / 0.5, "RHip-RKnee": 0.45 / 0.5, "RKnee-RFoot": 0.42 / 0.5,
        "Hip-Spine": 0.5, "Spine-Thorax": 0.5, "Thorax-Neck": 0.12 / 0.5,
        "Thorax-LShoulder": 0.17 / 0.5, "LShoulder-LElbow": 0.28 / 0.5, "LElbow-LWrist": 0.5,
    }  # fmt: skip
    for name, value in expected.items():
        assert ratios[name] == pytest.approx(value, abs=1e-12), name
    assert pl.trunk_length(symmetric_pose()) == pytest.approx(0.5)
    assert pl.RATIO_NAMES[1] == "RHip-RKnee/trunk"


def test_ratios_do_not_depend_on_scale_rotation_or_bending():
    pose = symmetric_pose()
    c, s = np.cos(0.7), np.sin(0.7)
    turned = 1.8 * pose @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T + [1.0, 2.0, 3.0]
    np.testing.assert_allclose(pl.bone_ratios(turned), pl.bone_ratios(pose), atol=1e-12)
    # A bent knee changes no bone length.
    np.testing.assert_allclose(
        pl.bone_ratios(_bend_knee(pose, "R", 70)), pl.bone_ratios(pose), atol=1e-12
    )


def test_limb_ratios_against_hand_values():
    thigh_shin, arm_forearm, thigh_arm = pl.limb_ratios(symmetric_pose())
    assert thigh_shin == pytest.approx(0.45 / 0.42)
    assert arm_forearm == pytest.approx(0.28 / 0.25)
    assert thigh_arm == pytest.approx(0.45 / 0.28)
    assert pl.LITERATURE_RATIOS["upper_arm/forearm"] == pytest.approx(0.186 / 0.146)


@pytest.mark.parametrize("degrees", [0.0, 30.0, 90.0, 135.0, 179.0])
def test_knee_flexion_of_a_bent_leg(degrees):
    pose = _bend_knee(symmetric_pose(), "L", degrees)
    right, left = np.degrees(pl.knee_flexion(pose))
    assert right == pytest.approx(0.0, abs=1e-6)  # straight: thigh and shin both point down
    assert left == pytest.approx(degrees, abs=1e-6)


def test_knee_flexion_batches_and_nan():
    poses = np.stack([_bend_knee(symmetric_pose(), "R", 90), symmetric_pose()])
    poses[1, J["LFoot"]] = np.nan
    flex = np.degrees(pl.knee_flexion(poses))
    assert flex.shape == (2, 2)
    assert flex[0] == pytest.approx([90.0, 0.0], abs=1e-6)
    assert flex[1, 0] == pytest.approx(0.0, abs=1e-6) and np.isnan(flex[1, 1])


def test_ratio_range_and_deviation():
    # walking() keeps every offset of tests/poses.py, rotated: lengths, so ratios, are constant.
    seqs = [walking(20, 0.0), walking(15, 1.0)]
    low, high = pl.ratio_range(seqs)
    np.testing.assert_allclose(low, pl.bone_ratios(symmetric_pose()), atol=1e-9)
    np.testing.assert_allclose(high, low, atol=1e-9)
    lo, hi = np.array([1.0, 1.0, 1.0]), np.array([2.0, 2.0, 2.0])
    dev = pl.range_deviation(np.array([1.5, 2.5, 0.8]), lo, hi)
    np.testing.assert_allclose(dev, [0.0, 0.25, -0.2])
    with pytest.raises(ValueError):
        pl.ratio_range([np.zeros((0, 17, 3))])


def test_summarise_reports_a_flexed_seated_pose():
    pose = _bend_knee(_bend_knee(symmetric_pose(), "R", 90), "L", 80)
    low, high = pl.ratio_range(pose[None])
    longer = pose.copy()
    longer[J["RFoot"]] = longer[J["RKnee"]] + 1.1 * (pose[J["RFoot"]] - pose[J["RKnee"]])
    out = pl.summarise(np.stack([pose, longer]), low, high)
    assert out["frames"] == 2
    assert out["knee_flexion_deg"]["right"]["median"] == pytest.approx(90.0, abs=1e-6)
    assert out["knee_flexion_deg"]["left"]["max"] == pytest.approx(80.0, abs=1e-6)
    shin = out["bone_ratios"]["RKnee-RFoot/trunk"]
    assert shin["max"] == pytest.approx(1.1 * 0.42 / 0.5)
    # The median (1.05 x) lies 5 % above the (single-pose) range.
    assert shin["deviation"] == pytest.approx(0.05)
    assert out["bone_ratios"]["Hip-Spine/trunk"]["deviation"] == 0.0
    limb = out["limb_ratios"]["thigh/shin"]
    assert limb["deviation"] == pytest.approx(limb["median"] / (0.245 / 0.246) - 1)


def _script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "render_views.py"
    spec = importlib.util.spec_from_file_location("render_views", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_render_script_masks_unseen_and_picks_frames():
    from types import SimpleNamespace

    rv = _script()
    kp = np.tile([[50.0, 40.0]], (17, 1))
    kp[3] = [50.0, 120.0]  # below a 100 px tall image
    kp[5] = [-1.0, 40.0]  # left of it
    conf = np.ones(17)
    conf[13] = 0.49
    masked = rv.masked_keypoints(SimpleNamespace(keypoints_2d=kp, confidence=conf), 200, 100, 0.5)
    assert sorted(np.flatnonzero(np.isnan(masked[:, 0]))) == [3, 5, 13]
    assert np.isfinite(masked[[0, 1, 2, 4]]).all() and masked[0, 1] == 40.0
    unseen = np.zeros((50, 17), bool)
    unseen[7, :8] = True  # the hardest view: picked in the middle
    assert rv.montage_frames(unseen, 3) == [5, 7, 44]
    assert rv.montage_frames(np.zeros((50, 17), bool), 3) == [5, 24, 44]


def test_raised_hands_counts_seen_raised_wrists():
    pose = symmetric_pose()  # y down: wrists hang below the shoulders
    poses = np.repeat(pose[None], 6, axis=0)
    kp = poses[..., :2].copy()
    for t in range(4):  # 2D: both wrists above their shoulders in frames 0-3
        kp[t, [J["LWrist"], J["RWrist"]], 1] = kp[t, J["LShoulder"], 1] - 0.1
    kp[3, J["RShoulder"]] = np.nan  # frame 3: right shoulder unseen, not counted on that side
    lifted = poses.copy()
    lifted[:2, J["LWrist"], 1] = pose[J["LShoulder"], 1] - 0.2  # 3D left wrist up in frames 0, 1
    got = pl.raised_hands(kp, lifted)
    assert got["left"] == {"raised_2d": 4, "raised_3d_too": 2, "share": 0.5}
    assert got["right"] == {"raised_2d": 3, "raised_3d_too": 0, "share": 0.0}
    assert got["raised_2d"] == 7 and got["share"] == pytest.approx(2 / 7)
    none = pl.raised_hands(poses[..., :2], poses)
    assert none["share"] is None and none["left"]["share"] is None


def test_mid_stance_events_of_a_synthetic_walk():
    fps, step_hz = 50.0, 1.0  # each foot lifts once a second, alternately
    t = np.arange(150) / fps
    lift = 30 * np.sin(2 * np.pi * step_hz * t)
    ankles = np.stack([500 - np.maximum(lift, 0), 500 - np.maximum(-lift, 0)], -1)  # right, left
    events = pl.mid_stance_frames(ankles, fps, min_separation=10.0)
    # Gaps peak at t = 0.25 (right foot up: left stance), 0.75 (right stance), 1.25, 1.75, ...
    # (frames 12.5, 37.5, ...: the first of two equal frames is taken)
    assert [f for f, _ in events] == [12, 37, 62, 87, 112, 137]
    assert [s for _, s in events] == [1, 0, 1, 0, 1, 0]
    assert pl.mid_stance_frames(ankles, fps, min_separation=40.0) == []
    holes = ankles.copy()
    holes[37] = np.nan  # an unseen ankle: no event there
    assert 37 not in [f for f, _ in pl.mid_stance_frames(holes, fps, 10.0)]


def test_stance_knee_flexion_picks_the_stance_leg():
    pose = _bend_knee(_bend_knee(symmetric_pose(), "R", 10.0), "L", 40.0)
    poses = np.repeat(pose[None], 3, axis=0)
    got = pl.stance_knee_flexion(poses, [(0, 0), (2, 1)])
    np.testing.assert_allclose(got, [10.0, 40.0], atol=1e-9)
    assert pl.stance_knee_flexion(poses, []).shape == (0,)


@pytest.mark.slow
def test_real_media_check_script(tiny_weights, media_dir, tmp_path):
    """End to end on the real clips (MediaPipe, cached in tmp_path) with a random tiny lifter:
    the figures exist, and MediaPipe's own 3D gives what the issue measured for it."""
    import importlib.util
    import json
    import sys
    from pathlib import Path

    scripts = Path(__file__).resolve().parents[1] / "scripts"
    sys.path.insert(0, str(scripts))
    try:
        spec = importlib.util.spec_from_file_location("rmc", scripts / "real_media_check.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out = tmp_path / "real.json"
        assert module.main(["--weights", tiny_weights, "--cache", str(tmp_path), "--upper",
                            str(media_dir / "mediapipe_gesture_upper_body.mp4"), "--walk",
                            str(media_dir / "openpose_street_walk.avi"), "--json",
                            str(out)]) == 0  # fmt: skip
    finally:
        sys.path.remove(str(scripts))
    got = json.loads(out.read_text())
    assert got["upper"]["lifter"]["raised_2d"] > 100  # the clip raises its hands often
    assert got["upper"]["mediapipe_3d"]["share"] > 0.9
    limbs = got["walk"]["bone_variation"]["mediapipe_3d"]["limbs"]
    assert 0.12 < limbs < 0.17  # the 14.5 %
    assert len(got["walk"]["mid_stance_events"]) >= 4
    assert got["walk"]["stance_knee_flexion_deg"]["mediapipe_3d"]["median"] < 20
    assert len(list(tmp_path.glob("mediapipe-*.npz"))) == 2  # both clips cached
