"""Pose edits (seated, crouching, bending forward, kneeling) on a hand-made Bandai-named skeleton
with hand-computed geometry, and on the first real files of the archive."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from distpose_app.core.errors import DataFormatError, DistposeError
from distpose_app.core.skeleton import bone_lengths
from distpose_app.data import pose_edit as pe
from distpose_app.data.bvh import forward_kinematics, parse_bvh
from distpose_app.data.mocap import iter_bandai_bvh, to_h36m
from distpose_app.data.splits import split_of


@pytest.fixture(autouse=True)
def rig_joints(monkeypatch):
    """The edits are checked on the rig's own joints (bone lengths, knee angles, floor contact
    are rig geometry); the mapping onto Human3.6M's definitions is tested in test_mocap."""
    monkeypatch.setattr(pe, "to_h36m", functools.partial(to_h36m, definitions=False))


# Bandai-Namco joint names with Y-up offsets (cm): all rotations zero is a straight standing
# pose with the ankles 8 cm and the balls of the feet 2 cm above the floor; thigh and shin 40 cm.
JOINTS = [  # name, parent, offset
    ("joint_Root", None, (0, 0, 0)),
    ("Hips", "joint_Root", (0, 93, 0)),
    ("Spine", "Hips", (0, 10, 0)),
    ("Chest", "Spine", (0, 15, 0)),
    ("Neck", "Chest", (0, 20, 0)),
    ("Head", "Neck", (0, 10, 0)),
    ("Shoulder_L", "Chest", (3, 18, 0)),
    ("UpperArm_L", "Shoulder_L", (15, 0, 0)),
    ("LowerArm_L", "UpperArm_L", (0, -28, 0)),
    ("Hand_L", "LowerArm_L", (0, -25, 0)),
    ("Shoulder_R", "Chest", (-3, 18, 0)),
    ("UpperArm_R", "Shoulder_R", (-15, 0, 0)),
    ("LowerArm_R", "UpperArm_R", (0, -28, 0)),
    ("Hand_R", "LowerArm_R", (0, -25, 0)),
    ("UpperLeg_L", "Hips", (10, -5, 0)),
    ("LowerLeg_L", "UpperLeg_L", (0, -40, 0)),
    ("Foot_L", "LowerLeg_L", (0, -40, 0)),
    ("Toes_L", "Foot_L", (0, -6, 12)),
    ("UpperLeg_R", "Hips", (-10, -5, 0)),
    ("LowerLeg_R", "UpperLeg_R", (0, -40, 0)),
    ("Foot_R", "LowerLeg_R", (0, -40, 0)),
    ("Toes_R", "Foot_R", (0, -6, 12)),
]
NAMES = [j[0] for j in JOINTS]
CHANNELS = "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
FRAMES = 40


def tiny_bvh_text(frames: int = FRAMES) -> str:
    """The skeleton above walking forward while turning 90 degrees, waving the left forearm and
    swinging the legs; every joint has 6 channels (positions = offsets, as in Bandai files)."""
    children: dict[str | None, list] = {}
    for name, parent, offset in JOINTS:
        children.setdefault(parent, []).append((name, offset))

    def block(name, offset, depth):
        pad = "  " * depth
        kind = "ROOT" if depth == 0 else "JOINT"
        lines = [f"{pad}{kind} {name}", f"{pad}{{", f"{pad}  OFFSET {' '.join(map(str, offset))}"]
        lines.append(f"{pad}  {CHANNELS}")
        for child, child_offset in children.get(name, []):
            lines += block(child, child_offset, depth + 1)
        if name not in children:
            lines += [f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET 0 0 0", f"{pad}  }}"]
        return [*lines, f"{pad}}}"]

    text = ["HIERARCHY", *block("joint_Root", (0, 0, 0), 0), "MOTION"]
    text += [f"Frames: {frames}", "Frame Time: 0.0333333"]
    for f in range(frames):
        row = []
        for name, _, offset in JOINTS:
            pos, rot = list(offset), [0.0, 0.0, 0.0]  # rot in file order Z X Y (degrees)
            if name == "Hips":
                pos[2] += 2.0 * f  # walks forward
                rot[2] = 90.0 * f / (frames - 1)  # and turns left
            elif name == "LowerArm_L":
                rot[0] = 60 + 40 * np.sin(f / 3)  # waving
            elif name == "UpperArm_L":
                rot[0] = 80.0
            elif name == "UpperLeg_L":
                rot[1] = 20 * np.sin(f / 4)
            elif name == "UpperLeg_R":
                rot[1] = -20 * np.sin(f / 4)
            elif name == "Chest":
                rot[2] = 10 * np.sin(f / 5)  # upper body twists
            row += pos + rot
        text.append(" ".join(f"{v:.6f}" for v in row))
    return "\n".join(text) + "\n"


@pytest.fixture(scope="module")
def tiny():
    return parse_bvh(tiny_bvh_text(), name="tiny.bvh")


def edit(tiny, family, seed=0):
    params, _ = pe.sample_params(tiny, family, np.random.default_rng(seed), scale_to_m=0.01)
    assert params is not None
    return pe.apply_edit(tiny, params, scale_to_m=0.01)


def angle_deg(a, b, c):
    """Angle at b of the triangle a-b-c, degrees, per frame."""
    u, v = a - b, c - b
    cos = np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_tiny_skeleton_stands_on_the_floor(tiny):
    positions, _ = forward_kinematics(tiny)
    toes = positions[0, NAMES.index("Toes_L")]
    assert toes[1] == pytest.approx(2.0)
    assert positions[0, NAMES.index("Foot_L"), 1] == pytest.approx(8.0)


@pytest.mark.parametrize("family", pe.FAMILIES)
def test_bone_lengths_unchanged(tiny, family):
    result = edit(tiny, family)
    before, _ = forward_kinematics(tiny)
    after, _ = forward_kinematics(result.bvh)
    parents = tiny.parents
    for j in range(2, len(NAMES)):  # every bone; joint_Root -> Hips is a floor marker, not one
        was = np.linalg.norm(before[:, j] - before[:, parents[j]], axis=-1) * 0.01
        now = np.linalg.norm(after[:, j] - after[:, parents[j]], axis=-1) * 0.01
        np.testing.assert_allclose(now, was, atol=1e-6)
    # H36M limbs are single mocap bones: exact too (Spine is a mean of two joints, so not).
    limbs = [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15]
    source = bone_lengths(pe.to_h36m(tiny, 0.01))[:, limbs]
    np.testing.assert_allclose(bone_lengths(result.positions)[:, limbs], source, atol=1e-6)


@pytest.mark.parametrize("family", pe.FAMILIES)
def test_every_family_passes_limits_and_touches_the_floor(tiny, family):
    result = edit(tiny, family)
    assert result.valid.all(), {k: int(v.sum()) for k, v in result.violations.items()}
    p = result.positions
    fk, _ = forward_kinematics(result.bvh)
    y = fk[..., 1] * 0.01
    assert y.min() >= -1e-9 and p[..., 1].min() >= -1e-9  # nothing below the floor
    toes = y[:, [NAMES.index("Toes_L"), NAMES.index("Toes_R")]]
    # The ball of the foot's clearance: its 5th-percentile height in the source (stance).
    source_y = forward_kinematics(tiny)[0][..., 1] * 0.01
    toe_clear = np.percentile(source_y[:, [NAMES.index("Toes_L"), NAMES.index("Toes_R")]], 5)
    knees = y[:, [NAMES.index("LowerLeg_L"), NAMES.index("LowerLeg_R")]]
    # Independent joint angles from the H36M joints: knee = 180 - angle(hip, knee, ankle).
    knee = 180 - np.stack(
        [angle_deg(p[:, 1], p[:, 2], p[:, 3]), angle_deg(p[:, 4], p[:, 5], p[:, 6])]
    )
    assert knee.min() >= 0 and knee.max() <= 160
    trunk = p[:, 8] - p[:, 0]
    lean = np.degrees(np.arccos(trunk[:, 1] / np.linalg.norm(trunk, axis=-1)))
    if family == "kneeling":
        # Some knee (6 cm clearance) or ball of a foot rests on the floor every frame.
        lowest = np.minimum((knees - 0.06).min(axis=1), (toes - toe_clear).min(axis=1))
        np.testing.assert_allclose(lowest, 0, atol=1e-9)
        assert knees.min(axis=1).max() < 0.07
    else:
        # A ball of a foot on the floor every frame, and no foot in it.
        np.testing.assert_allclose(toes.min(axis=1), toe_clear, atol=1e-9)
    if family == "seated":
        hips = y[:, [NAMES.index("UpperLeg_L"), NAMES.index("UpperLeg_R")]].mean(axis=1)
        seat = hips - pe.SEAT_TO_HIP_JOINT_M
        assert np.abs(seat - result.params.seat_height_m).max() <= pe.SEAT_TOLERANCE_M
        assert 0.37 <= seat.min() and seat.max() <= 0.53
        assert 75 <= knee.min() and knee.max() <= 105
        assert lean.max() < 30  # trunk about upright
    elif family == "crouching":
        assert 95 <= knee.min() and knee.max() <= 145
        assert p[:, 0, 1].max() < 0.7  # pelvis well below standing height (0.93)
    elif family == "bending_forward":
        assert knee.max() <= 25
        assert 20 <= lean.min() and lean.max() <= 90


def test_seated_knee_angle_hand_computed(tiny):
    # Knee 90, thigh 80 degrees from straight down: the ankle lies 40 cos 80 + 40 sin 80 =
    # 46.34 cm below the hip joints, which sit 9 cm above the seat; the ankle rests at its
    # clearance, the 5th-percentile height of the source's ankles (8.03 cm: they swing).
    source_y = forward_kinematics(tiny)[0][..., 1]
    ankle = np.percentile(source_y[:, [NAMES.index("Foot_L"), NAMES.index("Foot_R")]], 5)
    assert ankle == pytest.approx(8.0, abs=0.1)
    seat = (40 * np.cos(np.radians(80)) + 40 * np.sin(np.radians(80)) + ankle - 9) / 100
    params = pe.solve_seated(tiny, 90.0, seat, scale_to_m=0.01)
    assert params.left.thigh == pytest.approx(80.0, abs=0.01)
    p = pe.apply_edit(tiny, params, scale_to_m=0.01).positions
    np.testing.assert_allclose(180 - angle_deg(p[:, 1], p[:, 2], p[:, 3]), 90.0, atol=0.01)
    np.testing.assert_allclose(180 - angle_deg(p[:, 4], p[:, 5], p[:, 6]), 90.0, atol=0.01)
    np.testing.assert_allclose(p[:, 3, 1], ankle / 100, atol=1e-6)  # ankles on the floor
    np.testing.assert_allclose(p[:, 1, 1], seat + 0.09, atol=1e-6)  # hip joints on the seat
    # Thigh horizontal: seat = 0.40 + ankle - 0.09 puts the knee at the hip joints' height.
    flat = pe.solve_seated(tiny, 90.0, 0.31 + ankle / 100, scale_to_m=0.01)
    assert flat.left.thigh == pytest.approx(90.0, abs=0.01)
    assert pe.solve_seated(tiny, 90.0, 0.70, scale_to_m=0.01) is None  # feet cannot reach


def test_upper_body_motion_preserved(tiny):
    # Crouching leaves the spine's own rotations alone: the upper body moves as a rigid copy of
    # the source's, so every distance between upper-body joints matches frame by frame.
    result = edit(tiny, "crouching")
    source = pe.to_h36m(tiny, 0.01)
    upper = [8, 9, 10, 11, 12, 13, 14, 15, 16]
    d = lambda p: np.linalg.norm(p[:, upper, None] - p[:, None, upper], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(result.positions), d(source), atol=1e-9)
    # The wave: wrist relative to the thorax, in the chest's frame, is the source's.
    for bvh_ in (tiny, result.bvh):
        pos, rot = forward_kinematics(bvh_)
        chest = NAMES.index("Chest")
        rel = np.einsum("fba,fb->fa", rot[:, chest], pos[:, NAMES.index("Hand_L")] - pos[:, chest])
        if bvh_ is tiny:
            expected = rel
    np.testing.assert_allclose(rel, expected, atol=1e-9)

    # Turning stays: the shoulder line's heading follows the source's (up to the smoothing).
    def yaw(p):
        left = p[:, 11] - p[:, 14]
        return np.degrees(np.arctan2(left[:, 2], left[:, 0]))

    assert np.abs(yaw(result.positions) - yaw(source)).max() < 10
    # And the person stays in place.
    assert np.ptp(result.positions[:, 0, [0, 2]], axis=0).max() < 1e-9


def test_deterministic(tiny):
    a = pe.edit_sequence(tiny, "kneeling", np.random.default_rng(3), scale_to_m=0.01)
    b = pe.edit_sequence(tiny, "kneeling", np.random.default_rng(3), scale_to_m=0.01)
    c = pe.edit_sequence(tiny, "kneeling", np.random.default_rng(4), scale_to_m=0.01)
    # Same seed, same pose (to rounding: BLAS may sum in another order under load).
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert a.shape == (FRAMES, 17, 3) and not np.allclose(a, c)


def test_edited_sequences_names_and_splits(tiny):
    names = ["x/dataset-2_walk_elderly_001.bvh", "dataset-1_bye_normal_001.bvh"]
    stats = {}
    out = pe.edited_sequences([(n, tiny) for n in names], seed=1, min_frames=20, stats=stats)
    assert len(out) == 8 and stats["edits"] == 8 and stats["dropped"] == 0
    assert out[0].name == "dataset-2_walk_elderly_001#seated"
    assert {s.content for s in out} == set(pe.FAMILIES)
    for seq in out:
        source = seq.name.split(pe.EDIT_SEPARATOR)[0]
        assert split_of(seq) == split_of(source)
        assert seq.positions.dtype == np.float32 and seq.fps == 30
    assert split_of(out[0]) == "test" and out[0].style == "elderly"
    # Order independence: each variant depends on (seed, file, family) only.
    again = pe.edited_sequences([(n, tiny) for n in names[::-1]], seed=1, min_frames=20)
    by_name = {s.name: s.positions for s in again}
    for seq in out:
        np.testing.assert_allclose(seq.positions, by_name[seq.name], rtol=0, atol=1e-6)


def test_user_errors(tiny):
    with pytest.raises(DistposeError, match="unknown pose family"):
        pe.edit_sequence(tiny, "lying", np.random.default_rng(0), scale_to_m=0.01)
    text = tiny_bvh_text(3).replace("UpperLeg_L", "LeftUpLeg")
    with pytest.raises(DataFormatError, match="UpperLeg_L"):
        pe.edit_sequence(parse_bvh(text), "seated", np.random.default_rng(0))


def test_real_bandai_files(bandai_archive):
    sources = list(iter_bandai_bvh(bandai_archive, limit=2))
    assert len(sources) == 2
    stats = {}
    out = pe.edited_sequences(sources, seed=0, stats=stats)
    assert [s.content for s in out[:4]] == list(pe.FAMILIES)
    for seq, (name, bvh) in zip(out, [s for s in sources for _ in pe.FAMILIES]):
        p = seq.positions
        assert np.isfinite(p).all() and p[..., 1].min() >= -1e-6
        assert split_of(seq) == split_of(name)
        # Limbs keep the source's lengths (float32 positions).
        limbs = [1, 2, 4, 5, 11, 12, 14, 15]
        src = bone_lengths(pe.to_h36m(bvh, 0.01))[: len(p), limbs]
        np.testing.assert_allclose(bone_lengths(p.astype(np.float64))[:, limbs], src, atol=1e-5)
    assert stats["frames_rejected"] <= 0.05 * stats["frames_checked"]
