"""Mocap skeletons -> H36M-17: hand-made Bandai-like and CMU-like files, and a real Bandai file."""

from __future__ import annotations

import numpy as np
import pytest

from distpose_app.core.errors import DataFormatError, DistposeError
from distpose_app.core.skeleton import BONE_NAMES, JOINT_NAMES, SYMMETRIC_BONE_PAIRS, bone_lengths
from distpose_app.data import mocap
from distpose_app.data.bvh import parse_bvh
from distpose_app.data.definitions import apply_rig_mapping

# A standing Bandai-like skeleton facing +Z (its left at +X), world positions in cm.
BANDAI_REST = {
    "joint_Root": (None, (0, 0, 0)),
    "Hips": ("joint_Root", (0, 95, 0)),
    "Spine": ("Hips", (0, 110, 0)),
    "Chest": ("Spine", (0, 120, 0)),
    "Neck": ("Chest", (0, 136, 0)),
    "Head": ("Neck", (0, 144, 2)),
    "Shoulder_L": ("Chest", (5, 133, 0)),
    "UpperArm_L": ("Shoulder_L", (17, 132, 0)),
    "LowerArm_L": ("UpperArm_L", (17, 107, 0)),
    "Hand_L": ("LowerArm_L", (17, 85, 0)),
    "Shoulder_R": ("Chest", (-5, 133, 0)),
    "UpperArm_R": ("Shoulder_R", (-17, 132, 0)),
    "LowerArm_R": ("UpperArm_R", (-17, 107, 0)),
    "Hand_R": ("LowerArm_R", (-17, 85, 0)),
    "UpperLeg_L": ("Hips", (9, 92, 0)),
    "LowerLeg_L": ("UpperLeg_L", (9, 52, 0)),
    "Foot_L": ("LowerLeg_L", (9, 10, 0)),
    "Toes_L": ("Foot_L", (9, 2, 12)),
    "UpperLeg_R": ("Hips", (-9, 92, 0)),
    "LowerLeg_R": ("UpperLeg_R", (-9, 52, 0)),
    "Foot_R": ("LowerLeg_R", (-9, 10, 0)),
    "Toes_R": ("Foot_R", (-9, 2, 12)),
}
# H36M joints expected from BANDAI_REST, in cm, by hand (JOINT_NAMES order; the head top is
# Head + 15 cm along Neck -> Head = (0, 8, 2) / sqrt(68)).
_UNIT = np.array([0, 8, 2]) / np.sqrt(68)
EXPECTED_CM = np.array(
    [
        (0, 95, 0),
        (-9, 92, 0),
        (-9, 52, 0),
        (-9, 10, 0),
        (9, 92, 0),
        (9, 52, 0),
        (9, 10, 0),
        (0, 115, 0),  # midway between Spine and Chest
        (0, 136, 0),
        (0, 144, 2),
        tuple(np.array([0, 144, 2]) + 15 * _UNIT),
        (17, 132, 0),
        (17, 107, 0),
        (17, 85, 0),
        (-17, 132, 0),
        (-17, 107, 0),
        (-17, 85, 0),
    ]
)


def bvh_text(rest: dict, frames: list[dict[str, tuple]], every_joint_positions: bool) -> str:
    """A BVH of `rest` ({name: (parent, world position)}) with zero rest rotations. frames: per
    frame {joint: (tx, ty, tz, rz, rx, ry)} overrides of the root/joint channels (translation
    added to the offset, degrees). Bandai style gives every joint 6 channels; otherwise only the
    root has position channels (CMU style)."""
    names = list(rest)
    children = {n: [c for c in names if rest[c][0] == n] for n in names}
    lines = ["HIERARCHY"]
    channel_names = []

    def offset(n):
        parent = rest[n][0]
        base = np.zeros(3) if parent is None else np.array(rest[parent][1], float)
        return np.array(rest[n][1], float) - base

    def write(n, depth):
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if rest[n][0] is None else 'JOINT'} {n}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {' '.join(map(str, offset(n)))}")
        if every_joint_positions or rest[n][0] is None:
            lines.append(
                f"{pad}  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
            )
            channel_names.append((n, 6))
        else:
            lines.append(f"{pad}  CHANNELS 3 Zrotation Xrotation Yrotation")
            channel_names.append((n, 3))
        for c in children[n]:
            write(c, depth + 1)
        if not children[n]:
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET 0 1 0", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    write(names[0], 0)
    lines += ["MOTION", f"Frames: {len(frames)}", "Frame Time: 0.0333333"]
    for frame in frames:
        row = []
        for n, count in channel_names:
            t = np.zeros(6)
            t[:3] = offset(n)
            t += np.array(frame.get(n, np.zeros(6)), float)
            row += list(t if count == 6 else t[3:])
        lines.append(" ".join(f"{v:.6f}" for v in row))
    return "\n".join(lines) + "\n"


def test_bandai_mapping_by_hand():
    frames = [{}, {"joint_Root": (100, 0, 50, 0, 0, 0)}, {"Hips": (0, 0, 0, 0, 90, 0)}]
    bvh = parse_bvh(bvh_text(BANDAI_REST, frames, every_joint_positions=True))
    assert mocap.detect_skeleton(bvh.names) == "bandai"
    assert mocap.detect_scale_to_m(bvh) == 0.01
    h36m = mocap.to_h36m(bvh, definitions=False)  # the rig's own joints in the H36M slots
    assert h36m.shape == (3, 17, 3)
    expected = EXPECTED_CM / 100
    np.testing.assert_allclose(h36m[0], expected, atol=1e-6)
    np.testing.assert_allclose(h36m[1], expected + [1.0, 0, 0.5], atol=1e-6)
    # Hips turned 90 deg about X (y -> z, z -> -y) about the hip joint: the whole body pivots,
    # the head top still 15 cm beyond the head along the (turned) neck.
    turn = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    hips = np.array([0, 0.95, 0])
    np.testing.assert_allclose(h36m[2], (expected - hips) @ turn.T + hips, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(h36m[:, 10] - h36m[:, 9], axis=-1), 0.15)


def test_definitions_move_only_the_torso_head_and_knee_joints():
    frames = [{}, {"Hips": (0, 0, 0, 20, 10, 30)}]
    bvh = parse_bvh(bvh_text(BANDAI_REST, frames, every_joint_positions=True))
    rig = mocap.to_h36m(bvh, definitions=False)
    mapped = mocap.to_h36m(bvh)
    limbs = [3, 6, 11, 12, 13, 14, 15, 16]  # ankles, shoulders, elbows, wrists
    np.testing.assert_allclose(mapped[:, limbs], rig[:, limbs], atol=1e-12)
    # the knees move into their bend (at most mocap.BANDAI_MAPPING.knee_in limb units)
    moved = np.linalg.norm(mapped[:, [2, 5]] - rig[:, [2, 5]], axis=-1)
    assert (moved < 0.1).all()
    expected = apply_rig_mapping(rig, rig[:, 8], rig[:, 9], mocap.BANDAI_MAPPING)
    np.testing.assert_allclose(mapped, expected, atol=1e-12)
    np.testing.assert_allclose(mapped[:, 0], 0.5 * (mapped[:, 1] + mapped[:, 4]), atol=1e-12)
    width = np.linalg.norm(mapped[:, 1] - mapped[:, 4], axis=-1)
    assert (width > 1.3 * np.linalg.norm(rig[:, 1] - rig[:, 4], axis=-1)).all()  # H36M's wide hips


def test_scale_argument_overrides_detection():
    bvh = parse_bvh(bvh_text(BANDAI_REST, [{}], every_joint_positions=True))
    h36m = mocap.to_h36m(
        bvh, scale_to_m=0.001, definitions=False
    )  # as if millimetres: only the head top keeps 15 cm
    np.testing.assert_allclose(h36m[0, :10], EXPECTED_CM[:10] / 1000, atol=1e-9)


CMU_NAMES = {  # CMU name -> Bandai-like rest joint it stands in for
    "Hips": "Hips",
    "LowerBack": "Hips",
    "Spine": "Spine",
    "Spine1": "Chest",
    "Neck": "Neck",
    "Head": "Head",
    "LeftShoulder": "Shoulder_L",
    "LeftArm": "UpperArm_L",
    "LeftForeArm": "LowerArm_L",
    "LeftHand": "Hand_L",
    "RightShoulder": "Shoulder_R",
    "RightArm": "UpperArm_R",
    "RightForeArm": "LowerArm_R",
    "RightHand": "Hand_R",
    "LeftUpLeg": "UpperLeg_L",
    "LeftLeg": "LowerLeg_L",
    "LeftFoot": "Foot_L",
    "RightUpLeg": "UpperLeg_R",
    "RightLeg": "LowerLeg_R",
    "RightFoot": "Foot_R",
}
CMU_PARENT = {
    "Hips": None,
    "LowerBack": "Hips",
    "Spine": "LowerBack",
    "Spine1": "Spine",
    "Neck": "Spine1",
    "Head": "Neck",
    "LeftShoulder": "Spine1",
    "LeftArm": "LeftShoulder",
    "LeftForeArm": "LeftArm",
    "LeftHand": "LeftForeArm",
    "RightShoulder": "Spine1",
    "RightArm": "RightShoulder",
    "RightForeArm": "RightArm",
    "RightHand": "RightForeArm",
    "LeftUpLeg": "Hips",
    "LeftLeg": "LeftUpLeg",
    "LeftFoot": "LeftLeg",
    "RightUpLeg": "Hips",
    "RightLeg": "RightUpLeg",
    "RightFoot": "RightLeg",
}


@pytest.mark.parametrize(("unit", "prefix"), [("cmu", ""), ("inch", "mixamorig:"), ("cm", "")])
def test_cmu_mapping_and_units(unit, prefix):
    scale = mocap.UNIT_SCALES_TO_M[unit]
    rest = {
        prefix + n: (
            None if CMU_PARENT[n] is None else prefix + CMU_PARENT[n],
            tuple(np.array(BANDAI_REST[b][1]) * 0.01 / scale),
        )
        for n, b in CMU_NAMES.items()
    }
    bvh = parse_bvh(bvh_text(rest, [{}], every_joint_positions=False))
    assert mocap.detect_skeleton(bvh.names) == "cmu"
    assert mocap.detect_scale_to_m(bvh) == scale
    h36m = mocap.to_h36m(bvh, definitions=False)[0]
    expected = EXPECTED_CM.copy() / 100
    expected[7] = (0, (0.95 + 1.36) / 2, 0)  # CMU's spine joint: midway between Hips and Neck
    np.testing.assert_allclose(h36m, expected, atol=1e-6)


def test_unknown_skeleton_lists_missing_joints():
    rest = {n: v for n, v in BANDAI_REST.items() if n not in ("Hand_L", "Hand_R")}
    bvh = parse_bvh(bvh_text(rest, [{}], every_joint_positions=True))
    with pytest.raises(DataFormatError, match="bandai.*Hand_L, Hand_R"):
        mocap.to_h36m(bvh)


def test_parse_bandai_name():
    assert mocap.parse_bandai_name("data/dataset-2_walk-turn-left_elderly_012.bvh") == (
        "bandai-2",
        "walk-turn-left",
        "elderly",
    )
    assert mocap.parse_bandai_name("dataset-1_walk_not-confident_001") == (
        "bandai-1",
        "walk",
        "not-confident",
    )
    with pytest.raises(DataFormatError, match="take_01"):
        mocap.parse_bandai_name("take_01.bvh")


def test_sequence_from_bvh():
    bvh = parse_bvh(bvh_text(BANDAI_REST, [{}, {}], every_joint_positions=True))
    seq = mocap.sequence_from_bvh(bvh, "x/dataset-1_bow_happy_003.bvh")
    assert (seq.name, seq.dataset, seq.content, seq.style, seq.fps) == (
        "dataset-1_bow_happy_003",
        "bandai-1",
        "bow",
        "happy",
        30.0,
    )
    assert seq.positions.shape == (2, 17, 3) and seq.positions.dtype == np.float32


def test_resample_linear():
    ramp = np.arange(31, dtype=float)[:, None, None] * np.ones((1, 17, 3))  # value = frame index
    out = mocap.resample(ramp, 30, 25)
    assert out.shape == (26, 17, 3)
    np.testing.assert_allclose(out[:, 0, 0], np.arange(26) * 1.2)
    up = mocap.resample(ramp[:4], 30, 60)
    np.testing.assert_allclose(up[:, 5, 2], [0, 0.5, 1, 1.5, 2, 2.5, 3])
    np.testing.assert_array_equal(mocap.resample(ramp, 30, 30), ramp)


def test_mean_bone_lengths_cm():
    bvh = parse_bvh(bvh_text(BANDAI_REST, [{}, {"joint_Root": (3, 0, 0, 0, 0, 0)}], True))
    seq = mocap.sequence_from_bvh(bvh, "dataset-1_walk_normal_001", definitions=False)
    lengths = mocap.mean_bone_lengths_cm([seq, seq])
    assert list(lengths) == list(BONE_NAMES)
    assert lengths["RHip-RKnee"] == pytest.approx(40, abs=1e-4)
    assert lengths["Spine-Thorax"] == pytest.approx(21, abs=1e-4)
    assert lengths["Neck-Head"] == pytest.approx(15, abs=1e-4)
    assert lengths["Thorax-LShoulder"] == pytest.approx(np.hypot(17, 4), abs=1e-4)


# ---------------------------------------------------------------------------------------
# A real Bandai-Namco file (skipped without ../shared)
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bandai_walk(bandai_archive):
    """The archive's first plain walk, read by streaming (stops early: well under a second)."""
    for seq in mocap.iter_bandai_archive(bandai_archive, progress=False):
        if seq.content == "walk":
            return seq
    pytest.fail("no walk file in the archive")


def test_real_bandai_walk_is_a_plausible_person(bandai_walk):
    seq = bandai_walk
    assert seq.dataset == "bandai-1" and seq.fps == 30.0 and seq.num_frames > 100
    p = seq.positions.astype(np.float64)
    assert np.all(np.isfinite(p))
    height = np.median(p[:, JOINT_NAMES.index("Head"), 1])  # head top above the floor (y = 0)
    assert 1.4 < height < 1.9  # Human3.6M's head joint sits a few cm below the crown
    feet = p[:, [3, 6], 1]
    assert 0.0 < feet.min() < 0.15  # ankles just above the floor when the foot is down
    lengths = bone_lengths(p)
    assert np.all(lengths.std(axis=0) < 0.01)  # rigid bones: under 1 cm of wobble
    mean = lengths.mean(axis=0)
    for left, right in SYMMETRIC_BONE_PAIRS:
        assert abs(mean[left] - mean[right]) < 0.01


def test_real_bandai_left_is_the_subjects_left(bandai_walk):
    p = bandai_walk.positions.astype(np.float64)
    walk = p[-1, 0] - p[0, 0]
    walk[1] = 0
    assert np.linalg.norm(walk) > 2.0  # metres walked
    # Facing direction from the body: (left hip - right hip) x up, for a subject whose _L is
    # their own left, points where they walk.
    facing = np.cross(p[:, 4] - p[:, 1], p[:, 8] - p[:, 0])
    cosine = facing @ walk / np.linalg.norm(facing, axis=-1) / np.linalg.norm(walk)
    assert np.mean(cosine) > 0.9


def _tiny_archive(tmp_path):
    import io
    import tarfile

    path = tmp_path / "tiny.tar.xz"
    names = ["d/dataset-1_walk_normal_001.bvh", "d/README.md", "d/dataset-2_run_elderly_002.bvh"]
    with tarfile.open(path, "w:xz") as tar:
        for i, name in enumerate(names):
            frames = [{"joint_Root": (0, 0, k + 10 * i, 0, 0, 0)} for k in range(3 + i)]
            text = bvh_text(BANDAI_REST, frames, True) if name.endswith(".bvh") else "readme"
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return path


def test_archive_and_cache(tmp_path, monkeypatch):
    archive = _tiny_archive(tmp_path)
    seqs = list(mocap.iter_bandai_archive(archive, progress=False, definitions=False))
    assert [(s.name, s.dataset, s.content, s.style, s.num_frames) for s in seqs] == [
        ("dataset-1_walk_normal_001", "bandai-1", "walk", "normal", 3),
        ("dataset-2_run_elderly_002", "bandai-2", "run", "elderly", 5),
    ]
    np.testing.assert_allclose(seqs[1].positions[4, 0], (0, 0.95, 0.24), atol=1e-6)

    first = mocap.load_bandai(archive, cache_dir=tmp_path / "cache", progress=False)
    assert len(list((tmp_path / "cache").glob("bandai-h36m-*.npz"))) == 1

    def no_reading(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(mocap, "iter_bandai_archive", no_reading)
    again = mocap.load_bandai(archive, cache_dir=tmp_path / "cache")
    for a, b in zip(first, again, strict=True):
        assert (a.name, a.dataset, a.content, a.style, a.fps) == (
            b.name,
            b.dataset,
            b.content,
            b.style,
            b.fps,
        )
        np.testing.assert_array_equal(a.positions, b.positions)


def test_broken_archive(tmp_path):
    path = tmp_path / "broken.tar.xz"
    path.write_bytes(_tiny_archive(tmp_path).read_bytes()[:200])
    with pytest.raises(DataFormatError, match="broken.tar.xz"):
        list(mocap.iter_bandai_archive(path, progress=False))
    with pytest.raises(DistposeError, match="absent.tar.xz"):
        mocap.load_bandai(tmp_path / "absent.tar.xz", cache_dir=tmp_path)
