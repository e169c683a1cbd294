"""BVH reader, forward kinematics and Euler angles, against hand-computed answers and SciPy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from distpose_app.core.errors import DataFormatError
from distpose_app.core.rotations import euler_to_matrix, matrix_to_euler
from distpose_app.data.bvh import (
    end_site_positions,
    forward_kinematics,
    local_rotations,
    parse_bvh,
    read_bvh,
)

ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")

# Root (position channels) -> A (rotation channels in the non-default order Y X Z) -> B (position
# channels replacing OFFSET 5 0 0) -> End Site; C hangs off the root with no channels at all.
CHAIN = """HIERARCHY
ROOT Root
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT A
  {
    OFFSET 0 10 0
    CHANNELS 3 Yrotation Xrotation Zrotation
    JOINT B
    {
      OFFSET 5 0 0
      CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 0 2 0
      }
    }
  }
  JOINT C
  {
    OFFSET -3 0 0
    CHANNELS 0
  }
}
MOTION
Frames: 7
Frame Time: 0.04
"""
# Columns: root x y z rz rx ry | A ry rx rz | B x y z rz rx ry
FRAMES = [
    [1, 2, 3, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0],  # 0 rest
    [1, 2, 3, 90, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0],  # 1 root Z 90
    [1, 2, 3, 0, 0, 0, 0, 90, 0, 5, 0, 0, 0, 0, 0],  # 2 A X 90
    [1, 2, 3, 0, 0, 0, 90, 0, 0, 5, 0, 0, 0, 0, 0],  # 3 A Y 90
    [1, 2, 3, 90, 90, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0],  # 4 root Rz(90) @ Rx(90)
    [1, 2, 3, 0, 0, 0, 90, 90, 0, 5, 0, 0, 0, 0, 0],  # 5 A Ry(90) @ Rx(90)
    [1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0],  # 6 B's position channels (0, 7, 0)
]
# Hand-computed: Rz(90) maps x->y, y->-x; Rx(90) y->z, z->-y; Ry(90) z->x, x->-z.
EXPECTED = {  # frame: (Root, A, B, End Site of B, C)
    0: [(1, 2, 3), (1, 12, 3), (6, 12, 3), (6, 14, 3), (-2, 2, 3)],
    1: [(1, 2, 3), (-9, 2, 3), (-9, 7, 3), (-11, 7, 3), (1, -1, 3)],
    2: [(1, 2, 3), (1, 12, 3), (6, 12, 3), (6, 12, 5), (-2, 2, 3)],
    3: [(1, 2, 3), (1, 12, 3), (1, 12, -2), (1, 14, -2), (-2, 2, 3)],
    # Rz Rx (0,10,0) = Rz (0,0,10) = (0,0,10); Rz Rx (-3,0,0) = (0,-3,0); B and the end site
    # carry on along the rotated frame: Rz Rx (5,0,0) = (0,5,0), Rz Rx (0,2,0) = (0,0,2).
    4: [(1, 2, 3), (1, 2, 13), (1, 7, 13), (1, 7, 15), (1, -1, 3)],
    # Ry Rx (5,0,0) = (0,0,-5); Ry Rx (0,2,0) = Ry (0,0,2) = (2,0,0).
    5: [(1, 2, 3), (1, 12, 3), (1, 12, -2), (3, 12, -2), (-2, 2, 3)],
    6: [(1, 2, 3), (1, 12, 3), (1, 19, 3), (1, 21, 3), (-2, 2, 3)],
}


def chain_text(frames=FRAMES) -> str:
    return CHAIN + "".join(" ".join(str(v) for v in row) + "\n" for row in frames)


def test_reads_hierarchy():
    bvh = parse_bvh(chain_text())
    assert bvh.names == ["Root", "A", "B", "C"]
    assert bvh.parents.tolist() == [-1, 0, 1, 0]
    np.testing.assert_array_equal(bvh.offsets, [[0, 0, 0], [0, 10, 0], [5, 0, 0], [-3, 0, 0]])
    assert bvh.channels[1] == ["Yrotation", "Xrotation", "Zrotation"] and bvh.channels[3] == []
    assert list(bvh.end_sites) == [2]
    np.testing.assert_array_equal(bvh.end_sites[2], [0, 2, 0])
    assert bvh.motion.shape == (7, 15) and bvh.frame_time == 0.04 and bvh.fps == 25.0


def test_forward_kinematics_hand_computed():
    bvh = parse_bvh(chain_text())
    positions, rotations = forward_kinematics(bvh)
    ends = end_site_positions(bvh, positions, rotations)
    for frame, expected in EXPECTED.items():
        got = np.concatenate([positions[frame, :3], ends[2][frame, None], positions[frame, 3:]])
        np.testing.assert_allclose(got, expected, atol=1e-12, err_msg=f"frame {frame}")


def test_global_rotation_is_product_of_locals():
    rng = np.random.default_rng(1)
    frames = np.array(FRAMES, float)
    frames[:, [3, 4, 5, 6, 7, 8, 12, 13, 14]] = rng.uniform(-180, 180, (7, 9))
    bvh = parse_bvh(chain_text(frames.tolist()))
    local = local_rotations(bvh)
    _, rotations = forward_kinematics(bvh)
    np.testing.assert_allclose(rotations[:, 2], local[:, 0] @ local[:, 1] @ local[:, 2])
    np.testing.assert_allclose(local[:, 3], np.broadcast_to(np.eye(3), (7, 3, 3)))
    # A's channels are Y X Z: the same matrix as SciPy's intrinsic "YXZ".
    ref = Rotation.from_euler("YXZ", frames[:, 6:9], degrees=True).as_matrix()
    np.testing.assert_allclose(local[:, 1], ref, atol=1e-12)


def test_reads_a_path_and_crlf(tmp_path):
    path = tmp_path / "chain.bvh"
    path.write_bytes(chain_text().replace("\n", "\r\n").encode())
    bvh = read_bvh(path)
    np.testing.assert_allclose(forward_kinematics(bvh)[0][1, 1], (-9, 2, 3), atol=1e-12)


@pytest.mark.parametrize("order", ORDERS)
def test_euler_matches_scipy_and_round_trips(order):
    rng = np.random.default_rng(0)
    angles = rng.uniform(-np.pi, np.pi, (500, 3))
    angles[:, 1] /= 2  # middle angle in (-pi/2, pi/2): the unique, non-degenerate branch
    matrices = euler_to_matrix(angles, order)
    np.testing.assert_allclose(matrices, Rotation.from_euler(order, angles).as_matrix(), atol=1e-14)
    np.testing.assert_allclose(matrix_to_euler(matrices, order), angles, atol=1e-9)
    random = Rotation.random(500, random_state=3).as_matrix()
    np.testing.assert_allclose(
        euler_to_matrix(matrix_to_euler(random, order), order), random, atol=1e-12
    )


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("middle", [np.pi / 2, -np.pi / 2])
def test_gimbal_lock_gives_no_nan(order, middle):
    rng = np.random.default_rng(2)
    angles = rng.uniform(-np.pi, np.pi, (100, 3))
    angles[:, 1] = middle
    matrices = euler_to_matrix(angles, order)
    back = matrix_to_euler(matrices, order)
    assert np.all(np.isfinite(back))
    np.testing.assert_allclose(back[:, 2], 0.0)
    np.testing.assert_allclose(euler_to_matrix(back, order), matrices, atol=1e-7)


def test_bad_euler_order():
    with pytest.raises(ValueError, match="XXY"):
        euler_to_matrix(np.zeros(3), "XXY")


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: t.split("MOTION")[0], "no MOTION"),
        (lambda t: t.replace("Frames: 7", "Frames: 8"), "frame count mismatch"),
        (lambda t: t.rsplit("\n", 2)[0] + " 1\n", "frame count mismatch"),
        (
            lambda t: t.replace("Yrotation Xrotation Zrotation", "Yrotation Wrotation Zrotation"),
            "bad channel name 'Wrotation'",
        ),
        (lambda t: t.replace("CHANNELS 3 Y", "CHANNELS 4 Y"), "CHANNELS 4"),
        (lambda t: t.replace("1 2 3 90 0 0", "1 2 x 90 0 0"), "non-numeric"),
        (lambda t: t.replace("OFFSET -3 0 0", "OFFSET -3 0 zero"), "OFFSET"),
        (lambda t: t.replace("  }\n}\nMOTION", "  }\nMOTION"), "unclosed"),
        (lambda t: t.replace("Frame Time: 0.04", ""), "Frame Time"),
        (lambda t: t.replace("1 2 3 90 0 0", "1 2 3 1e12 0 0"), "1 MOTION values"),
        (lambda t: t.replace("1 2 3 90 0 0", "1 2 3 nan 0 0"), "1 MOTION values"),
    ],
)
def test_malformed_files_name_file_and_problem(tmp_path, mangle, message):
    path = tmp_path / "broken.bvh"
    path.write_text(mangle(chain_text()))
    with pytest.raises(DataFormatError, match="broken.bvh") as info:
        read_bvh(path)
    assert message in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="nothere.bvh"):
        read_bvh(tmp_path / "nothere.bvh")
