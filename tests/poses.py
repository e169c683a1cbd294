"""Hand-made poses and sequences shared by tests (metres; H36M-17 order)."""

from dataclasses import dataclass

import numpy as np

from distpose_app.core.skeleton import PARENTS

# Bone offsets of a rest pose, camera-like axes (y down): left and right exactly mirrored.
_OFFSETS_Y_DOWN = {
    1: (-0.1, 0, 0), 2: (0, 0.45, 0), 3: (0, 0.42, 0),
    4: (0.1, 0, 0), 5: (0, 0.45, 0), 6: (0, 0.42, 0),
    7: (0, -0.25, 0), 8: (0, -0.25, 0), 9: (0, -0.12, 0), 10: (0, -0.12, 0),
    11: (0.17, 0, 0), 12: (0, 0.28, 0), 13: (0, 0.25, 0),
    14: (-0.17, 0, 0), 15: (0, 0.28, 0), 16: (0, 0.25, 0),
}  # fmt: skip


def symmetric_pose() -> np.ndarray:
    """A rest pose (17, 3) whose left and right sides are exact mirrors (y down)."""
    pose = np.zeros((17, 3))
    for j in range(1, 17):
        pose[j] = pose[PARENTS[j]] + np.array(_OFFSETS_Y_DOWN[j])
    return pose


@dataclass
class Sequence:
    """Enough of a mocap.MocapSequence for the dataset builder."""

    name: str
    positions: np.ndarray
    fps: float = 30.0
    style: str = "normal"


def walking(frames: int, phase: float) -> np.ndarray:
    """A crude walking figure (frames, 17, 3): world metres, Y up, hips 0.9 m above the floor."""
    t = np.arange(frames) / 30.0
    out = np.zeros((frames, 17, 3))
    out[:, 0] = np.stack([0.3 * np.sin(0.5 * t + phase), 0.9 + 0 * t, 0.8 * t], 1)
    swing = 0.5 * np.sin(2 * np.pi * t + phase)
    for j in range(1, 17):
        off = np.tile(np.array(_OFFSETS_Y_DOWN[j], float) * [1, -1, 1], (frames, 1))
        if j in (2, 3, 12, 13):  # right leg and left arm swing forward together
            off[:, 2] = -off[:, 1] * np.sin(swing)
            off[:, 1] = off[:, 1] * np.cos(swing)
        if j in (5, 6, 15, 16):
            off[:, 2] = off[:, 1] * np.sin(swing)
            off[:, 1] = off[:, 1] * np.cos(swing)
        out[:, j] = out[:, PARENTS[j]] + off
    return out
