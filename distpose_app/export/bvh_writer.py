"""BVH text for the H36M-17 skeleton: Hips root with position and rotation channels, every other
joint three rotation channels, an End Site under each leaf, Y up, subject facing +Z."""

from __future__ import annotations

import numpy as np

from distpose_app.core.rotations import matrix_to_euler
from distpose_app.core.skeleton import NUM_JOINTS

from .skeleton_fit import CHILDREN, local_rotations, rest_offsets

# Conventional BVH names (Blender / Mixamo / CMU style) for the H36M-17 joints, in H36M order.
# Spine1 is H36M's Thorax (base of the neck, between the shoulders), Neck is H36M's Neck/Nose
# (the head's centre) and Head is the top of the head.
BVH_JOINT_NAMES: tuple[str, ...] = (
    "Hips",
    "RightUpLeg",
    "RightLeg",
    "RightFoot",
    "LeftUpLeg",
    "LeftLeg",
    "LeftFoot",
    "Spine",
    "Spine1",
    "Neck",
    "Head",
    "LeftArm",
    "LeftForeArm",
    "LeftHand",
    "RightArm",
    "RightForeArm",
    "RightHand",
)

# End Site offsets (metres) in the leaf joint's own frame (T-pose axes): toes forward, the
# crown slightly above the head joint, the hand continuing the forearm.
END_SITES: dict[int, tuple[float, float, float]] = {
    3: (0.0, 0.0, 0.12),
    6: (0.0, 0.0, 0.12),
    10: (0.0, 0.05, 0.0),
    13: (0.08, 0.0, 0.0),
    16: (-0.08, 0.0, 0.0),
}


def unwrap_euler(angles: np.ndarray) -> np.ndarray:
    """Make Euler angle tracks continuous over time.

    angles: (F, ..., 3) radians, any Tait-Bryan order (three different axes). Each frame picks,
    between the two equivalent triples (a, b, c) and (a + pi, pi - b, c + pi) and all their
    2 pi shifts, the one closest to the previous frame, so no angle jumps by ~360 degrees and
    no pair flips by 180 degrees. Returns (F, ..., 3) radians describing the same rotations.
    """
    out = np.array(angles, dtype=np.float64, copy=True)
    two_pi = 2.0 * np.pi
    for t in range(1, len(out)):
        prev = out[t - 1]
        a = out[t]
        b = a + np.array([np.pi, 0.0, np.pi])
        b[..., 1] = np.pi - a[..., 1]
        a = a + two_pi * np.round((prev - a) / two_pi)
        b = b + two_pi * np.round((prev - b) / two_pi)
        use_b = np.sum((b - prev) ** 2, axis=-1) < np.sum((a - prev) ** 2, axis=-1)
        out[t] = np.where(use_b[..., None], b, a)
    return out


def bvh_text(
    positions: np.ndarray,
    rotations: np.ndarray,
    bone_lengths: np.ndarray,
    frame_time_s: float,
    directions: np.ndarray | None = None,
    channel_order: str = "ZXY",
    unit_scale: float = 100.0,
) -> str:
    """The whole BVH file as text.

    positions: (F, 17, 3) metres, world axes (only the root's track is written).
    rotations: (F, 17, 3, 3) world rotations from `fit_skeleton`.
    bone_lengths: (16,) metres, BONES order, and directions: (17, 3) unit rest directions (the
    rest offsets; default the plain T-pose). frame_time_s: seconds.
    channel_order: rotation channel order, e.g. "ZXY" (R = Rz Rx Ry). unit_scale: file units per
    metre (100 for centimetres). Angles are written in degrees, continuous over time.
    """
    F = positions.shape[0]
    offsets = rest_offsets(bone_lengths, directions) * unit_scale
    rot_channels = " ".join(f"{axis}rotation" for axis in channel_order)
    lines = ["HIERARCHY"]

    def write_joint(j: int, depth: int) -> None:
        pad = "  " * depth
        head = "ROOT" if j == 0 else "JOINT"
        lines.append(f"{pad}{head} {BVH_JOINT_NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {' '.join(f'{v:.6f}' for v in offsets[j])}")
        if j == 0:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition {rot_channels}")
        else:
            lines.append(f"{pad}  CHANNELS 3 {rot_channels}")
        for c in CHILDREN[j]:
            write_joint(c, depth + 1)
        if not CHILDREN[j]:
            end = np.asarray(END_SITES[j]) * unit_scale
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {' '.join(f'{v:.6f}' for v in end)}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    write_joint(0, 0)
    order = _depth_first(0)
    local = local_rotations(rotations)[:, order]
    euler = np.degrees(unwrap_euler(matrix_to_euler(local, channel_order)))
    euler = np.where(np.isfinite(euler), euler, 0.0)  # belt and braces: never write NaN
    root = np.where(np.isfinite(positions[:, 0]), positions[:, 0], 0.0) * unit_scale
    motion = np.concatenate([root, euler.reshape(F, -1)], axis=1)
    lines += ["MOTION", f"Frames: {F}", f"Frame Time: {frame_time_s:.8f}"]
    body = "\n".join(" ".join(row) for row in np.char.mod("%.6f", motion).tolist())
    return "\n".join(lines) + "\n" + body + ("\n" if F else "")


def _depth_first(j: int) -> list[int]:
    """Joint indices in the order the hierarchy (and so each motion line) lists them."""
    out = [j]
    for c in CHILDREN[j]:
        out += _depth_first(c)
    return out


assert sorted(_depth_first(0)) == list(range(NUM_JOINTS))
