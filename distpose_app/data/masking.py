"""Unseen joints: the masks a webcam's partial views produce, for training and evaluation.

A masked joint is NaN in the 2D input (`model.encode_keypoints` turns that into a "seen" flag).
The groups follow what MediaPipe loses in practice: legs under a desk or below the image edge
(knees, ankles), the whole lower body when only the torso is in the picture (then the pelvis,
hips and the spine joint, which `skeleton.mediapipe_to_h36m` derives from the hips, go too), one
arm out of the image, the head turned away or cut off, and single joints dropping out.

Training draws one group per window with the probabilities of `MaskConfig` and keeps it for the
whole window (a leg does not flicker in and out of a desk), plus independent per-frame joint
drop-outs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distpose_app.core.skeleton import JOINT_NAMES

_J = {name: i for i, name in enumerate(JOINT_NAMES)}
# Joint groups (H36M-17 indices) that go unseen together.
MASK_GROUPS: dict[str, tuple[int, ...]] = {
    "legs": tuple(_J[n] for n in ("RKnee", "RFoot", "LKnee", "LFoot")),
    "lower_body": tuple(
        _J[n] for n in ("Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine")
    ),  # fmt: skip
    "left_arm": tuple(_J[n] for n in ("LElbow", "LWrist")),
    "right_arm": tuple(_J[n] for n in ("RElbow", "RWrist")),
    "head": tuple(_J[n] for n in ("Neck", "Head")),
}
# The joints the upper-body target is measured on: what a desk webcam always sees.
UPPER_BODY = tuple(_J[n] for n in ("Thorax", "Neck", "Head", "LShoulder", "LElbow", "LWrist",
                                   "RShoulder", "RElbow", "RWrist"))  # fmt: skip


@dataclass(frozen=True)
class MaskConfig:
    """Probabilities, per training window, of each masked group (at most one group a window),
    and of each joint dropping out in each frame."""

    legs: float = 0.12
    lower_body: float = 0.12
    arm: float = 0.08  # left or right, equally likely
    head: float = 0.04
    joint_dropout: float = 0.01
    # Share of windows without a spine joint at all, on top of the groups: detectors with an
    # MPII or COCO skeleton (Stacked Hourglass, OpenPose) have no joint there.
    spine: float = 0.1

    def validate(self) -> None:
        p = [self.legs, self.lower_body, self.arm, self.head, self.joint_dropout, self.spine]
        if min(p) < 0 or self.legs + self.lower_body + self.arm + self.head > 1:
            raise ValueError(f"bad masking probabilities {self}")


NO_MASKING = MaskConfig(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def group_mask(group: str, shape: tuple[int, ...] = ()) -> np.ndarray:
    """(*shape, 17) bool, True on the joints of MASK_GROUPS[group]."""
    mask = np.zeros((*shape, len(JOINT_NAMES)), bool)
    mask[..., list(MASK_GROUPS[group])] = True
    return mask


def sample_masks(
    rng: np.random.Generator, windows: int, frames: int, config: MaskConfig = MaskConfig()
) -> np.ndarray:
    """Random unseen-joint masks -> (windows, frames, 17) bool, True = unseen."""
    config.validate()
    mask = np.zeros((windows, frames, len(JOINT_NAMES)), bool)
    u = rng.random(windows)
    side = rng.random(windows) < 0.5
    edges = np.cumsum([config.legs, config.lower_body, config.arm, config.head])
    for w in range(windows):
        if u[w] < edges[0]:
            group = "legs"
        elif u[w] < edges[1]:
            group = "lower_body"
        elif u[w] < edges[2]:
            group = "left_arm" if side[w] else "right_arm"
        elif u[w] < edges[3]:
            group = "head"
        else:
            continue
        mask[w, :, list(MASK_GROUPS[group])] = True
    if config.joint_dropout > 0:
        mask |= rng.random(mask.shape) < config.joint_dropout
    if config.spine > 0:
        mask[rng.random(windows) < config.spine, :, _J["Spine"]] = True
    return mask


def apply_mask(keypoints: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """keypoints (..., 17, 2), mask (..., 17) bool True = unseen -> a copy with NaN there."""
    out = np.array(keypoints, dtype=np.result_type(keypoints, np.float32), copy=True)
    out[np.broadcast_to(mask, out.shape[:-1])] = np.nan
    return out
