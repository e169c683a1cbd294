"""The Human3.6M 17-joint skeleton that every stage of distpose speaks, and the
mapping from MediaPipe's 33 pose landmarks onto it.

Joint order and parents follow VideoPose3D (facebookresearch/VideoPose3D), so that
weights and numbers are comparable with the literature. Positions are always arrays
of shape (..., 17, D) with D = 2 (pixels or normalised screen units) or 3 (metres).
"""

from __future__ import annotations

import numpy as np

NUM_JOINTS = 17

JOINT_NAMES: tuple[str, ...] = (
    "Hip",  # 0  pelvis centre, the root
    "RHip",  # 1
    "RKnee",  # 2
    "RFoot",  # 3  ankle
    "LHip",  # 4
    "LKnee",  # 5
    "LFoot",  # 6  ankle
    "Spine",  # 7  mid-back
    "Thorax",  # 8  base of the neck, between the shoulders
    "Neck",  # 9  "Neck/Nose" in H36M: the head's centre
    "Head",  # 10 top of the head
    "LShoulder",  # 11
    "LElbow",  # 12
    "LWrist",  # 13
    "RShoulder",  # 14
    "RElbow",  # 15
    "RWrist",  # 16
)

PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

# Subject's own left/right (not the image's): used by flip augmentation.
LEFT_JOINTS: tuple[int, ...] = (4, 5, 6, 11, 12, 13)
RIGHT_JOINTS: tuple[int, ...] = (1, 2, 3, 14, 15, 16)
CENTRE_JOINTS: tuple[int, ...] = (0, 7, 8, 9, 10)

# Index permutation that swaps left and right joints (flip augmentation).
FLIP_PERMUTATION: tuple[int, ...] = tuple(
    {**dict(zip(LEFT_JOINTS, RIGHT_JOINTS)), **dict(zip(RIGHT_JOINTS, LEFT_JOINTS))}.get(j, j)
    for j in range(NUM_JOINTS)
)

# Bones as (parent, child) pairs, one per non-root joint, in joint order.
BONES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)
BONE_NAMES: tuple[str, ...] = tuple(f"{JOINT_NAMES[p]}-{JOINT_NAMES[c]}" for p, c in BONES)

# Symmetric bone pairs (left bone index, right bone index) into BONES: hips (pelvis to hip
# joint), thighs, shins, shoulders (thorax to shoulder), upper arms, forearms.
_BONE_INDEX = {bone: i for i, bone in enumerate(BONES)}
SYMMETRIC_BONE_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (_BONE_INDEX[left], _BONE_INDEX[right])
    for left, right in (
        ((0, 4), (0, 1)),  # hip
        ((4, 5), (1, 2)),  # thigh
        ((5, 6), (2, 3)),  # shin
        ((8, 11), (8, 14)),  # shoulder
        ((11, 12), (14, 15)),  # upper arm
        ((12, 13), (15, 16)),  # forearm
    )
)
SYMMETRIC_PAIR_NAMES: tuple[str, ...] = (
    "hip",
    "thigh",
    "shin",
    "shoulder",
    "upper_arm",
    "forearm",
)


def bone_vectors(positions: np.ndarray) -> np.ndarray:
    """Child minus parent for every bone. (..., 17, D) -> (..., 16, D), same units."""
    parents = [p for p, _ in BONES]
    children = [c for _, c in BONES]
    return positions[..., children, :] - positions[..., parents, :]


def bone_lengths(positions: np.ndarray) -> np.ndarray:
    """Euclidean length of every bone. (..., 17, D) -> (..., 16), same units as the input."""
    return np.linalg.norm(bone_vectors(positions), axis=-1)


def knee_flexion(poses: np.ndarray) -> np.ndarray:
    """Knee flexion, the angle between thigh (hip -> knee) and shin (knee -> ankle): 0 for a
    straight leg, pi/2 for a right angle. poses (..., 17, 3) metres -> (..., 2) radians,
    [right, left]."""
    poses = np.asarray(poses, dtype=np.float64)
    out = []
    for hip, knee, ankle in (("RHip", "RKnee", "RFoot"), ("LHip", "LKnee", "LFoot")):
        thigh = poses[..., JOINT_NAMES.index(knee), :] - poses[..., JOINT_NAMES.index(hip), :]
        shin = poses[..., JOINT_NAMES.index(ankle), :] - poses[..., JOINT_NAMES.index(knee), :]
        # atan2 of |cross| and dot: accurate near 0 and pi, where arccos of the cosine is not.
        cross = np.linalg.norm(np.cross(thigh, shin), axis=-1)
        out.append(np.arctan2(cross, np.einsum("...i,...i->...", thigh, shin)))
    return np.stack(out, axis=-1)


# ---------------------------------------------------------------------------------------
# MediaPipe Pose (BlazePose, 33 landmarks) -> H36M-17
# ---------------------------------------------------------------------------------------
MP_NOSE = 0
MP_LEFT_EAR, MP_RIGHT_EAR = 7, 8
MP_LEFT_SHOULDER, MP_RIGHT_SHOULDER = 11, 12
MP_LEFT_ELBOW, MP_RIGHT_ELBOW = 13, 14
MP_LEFT_WRIST, MP_RIGHT_WRIST = 15, 16
MP_LEFT_HIP, MP_RIGHT_HIP = 23, 24
MP_LEFT_KNEE, MP_RIGHT_KNEE = 25, 26
MP_LEFT_ANKLE, MP_RIGHT_ANKLE = 27, 28
NUM_MEDIAPIPE_LANDMARKS = 33

# Where the spine joint sits on the pelvis -> thorax segment (Human3.6M's: 0.47 of the way).
SPINE_FRACTION = 0.47
# MediaPipe's landmarks are not Human3.6M's joints, the definitions every lifter output and
# training source uses (docs/mocap.md): its hip landmarks are far narrower than Human3.6M's hips
# (13 cm either side of the pelvis), its shoulders slightly wider, and the ear midpoint E sits
# above Human3.6M's neck/nose joint and below its head joint. Each derived joint is placed where
# Human3.6M has it relative to MediaPipe's shoulder midpoint S and E, with factors = (Human3.6M
# ratio) / (MediaPipe ratio), both over the trunk (shoulder midpoint to hip midpoint), measured
# by scripts/measure_mapping.py (figures in docs/mocap.md).
SHOULDER_WIDTH_FACTOR = 0.96
HIP_WIDTH_FACTOR = 1.65
THORAX_FRACTION = 0.36  # Thorax = S + 0.36 (E - S)
NECK_FRACTION = 0.98  # Neck/Nose = S + 0.98 (E - S)
HEAD_TOP_FRACTION = 1.40  # Head = S + 1.40 (E - S)

# Joint by joint (H36M index: MediaPipe landmarks used):
# Joint by joint (H36M index: MediaPipe landmarks used; S shoulder midpoint, E ear midpoint):
#   0 Hip       midpoint H of left_hip(23) and right_hip(24)
#   1 RHip      H + HIP_WIDTH_FACTOR (right_hip(24) - H)    4 LHip  the same with left_hip(23)
#   2 RKnee     right_knee(26)       5 LKnee     left_knee(25)
#   3 RFoot     right_ankle(28)      6 LFoot     left_ankle(27)
#   7 Spine     Hip + SPINE_FRACTION * (Thorax - Hip)
#   8 Thorax    S + THORAX_FRACTION (E - S): the base of the neck
#   9 Neck      S + NECK_FRACTION (E - S): where the mocap's head joint sits
#  10 Head      S + HEAD_TOP_FRACTION (E - S): the crown, which MediaPipe lacks
#  11 LShoulder S + SHOULDER_WIDTH_FACTOR (left_shoulder(11) - S); 14 RShoulder likewise
#  12 LElbow    left_elbow(13)      15 RElbow    right_elbow(14)
#  13 LWrist    left_wrist(15)      16 RWrist    right_wrist(16)
_MP_DIRECT = {
    1: MP_RIGHT_HIP,
    2: MP_RIGHT_KNEE,
    3: MP_RIGHT_ANKLE,
    4: MP_LEFT_HIP,
    5: MP_LEFT_KNEE,
    6: MP_LEFT_ANKLE,
    11: MP_LEFT_SHOULDER,
    12: MP_LEFT_ELBOW,
    13: MP_LEFT_WRIST,
    14: MP_RIGHT_SHOULDER,
    15: MP_RIGHT_ELBOW,
    16: MP_RIGHT_WRIST,
}


def mediapipe_to_h36m(
    landmarks: np.ndarray, visibility: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Map MediaPipe's 33 pose landmarks to the H36M-17 joints.

    landmarks: (..., 33, D) with D = 2 or 3, any units (pixels for 2D detections, metres for
    `pose_world_landmarks`). visibility: (..., 33) in [0, 1], or None for all ones.
    Returns (joints (..., 17, D) in the input's units, confidence (..., 17)); a derived joint's
    confidence is the minimum over the landmarks it is built from.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape[-2] != NUM_MEDIAPIPE_LANDMARKS:
        raise ValueError(
            f"expected {NUM_MEDIAPIPE_LANDMARKS} MediaPipe landmarks, got shape {landmarks.shape}"
        )
    if visibility is None:
        visibility = np.ones(landmarks.shape[:-1])
    visibility = np.asarray(visibility, dtype=np.float64)

    out = np.zeros(landmarks.shape[:-2] + (NUM_JOINTS, landmarks.shape[-1]))
    conf = np.zeros(landmarks.shape[:-2] + (NUM_JOINTS,))
    for joint, landmark in _MP_DIRECT.items():
        out[..., joint, :] = landmarks[..., landmark, :]
        conf[..., joint] = visibility[..., landmark]

    def mid(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        point = 0.5 * (landmarks[..., a, :] + landmarks[..., b, :])
        return point, np.minimum(visibility[..., a], visibility[..., b])

    hip, hip_c = mid(MP_LEFT_HIP, MP_RIGHT_HIP)
    shoulders, shoulders_c = mid(MP_LEFT_SHOULDER, MP_RIGHT_SHOULDER)
    ears, ears_c = mid(MP_LEFT_EAR, MP_RIGHT_EAR)
    for joint in (1, 4):
        out[..., joint, :] = hip + HIP_WIDTH_FACTOR * (out[..., joint, :] - hip)
    for joint in (11, 14):
        out[..., joint, :] = shoulders + SHOULDER_WIDTH_FACTOR * (out[..., joint, :] - shoulders)
    up = ears - shoulders
    head_c = np.minimum(ears_c, shoulders_c)
    thorax = shoulders + THORAX_FRACTION * up
    out[..., 0, :], conf[..., 0] = hip, hip_c
    out[..., 8, :], conf[..., 8] = thorax, shoulders_c
    out[..., 7, :] = hip + SPINE_FRACTION * (thorax - hip)
    conf[..., 7] = np.minimum(hip_c, shoulders_c)
    out[..., 9, :], conf[..., 9] = shoulders + NECK_FRACTION * up, head_c
    out[..., 10, :], conf[..., 10] = shoulders + HEAD_TOP_FRACTION * up, head_c
    return out, conf
