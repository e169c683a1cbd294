"""Is a lifted 3D pose a plausible human? Label-free checks for real photos and clips.

Without ground truth we check two things a lifted pose must get right whatever the person does:
- **bone-length ratios**: each bone divided by the trunk length (Hip-Spine + Spine-Thorax, the
  spine path: unlike the straight pelvis-thorax distance it does not shrink when the back bends,
  and unlike the shoulder width it does not move with the clavicles), compared with the range the
  ratio takes over the training mocap, and a few limb-to-limb ratios compared with anthropometric
  tables (`LITERATURE_RATIOS`);
- **knee flexion**: the angle between thigh and shin, 0 for a straight leg (a seated person's
  knees are flexed by roughly 90 degrees).

Plain functions over numpy arrays (..., 17, 3) in metres, H36M-17 order; any axes (lengths and
angles do not depend on them). NaN joints give NaN results.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from distpose_app.core.skeleton import BONE_NAMES, BONES, JOINT_NAMES, bone_lengths, knee_flexion

_J = {name: i for i, name in enumerate(JOINT_NAMES)}
_B = {name: i for i, name in enumerate(BONE_NAMES)}

# The reference length every bone is divided by: the spine path pelvis -> mid-back -> thorax.
TRUNK_BONES: tuple[int, ...] = (_B["Hip-Spine"], _B["Spine-Thorax"])
RATIO_NAMES: tuple[str, ...] = tuple(f"{name}/trunk" for name in BONE_NAMES)

# Limb-to-limb ratios, left and right bones averaged: (numerator bones, denominator bones).
LIMB_RATIOS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "thigh/shin": ((_B["LHip-LKnee"], _B["RHip-RKnee"]), (_B["LKnee-LFoot"], _B["RKnee-RFoot"])),
    "upper_arm/forearm": (
        (_B["LShoulder-LElbow"], _B["RShoulder-RElbow"]),
        (_B["LElbow-LWrist"], _B["RElbow-RWrist"]),
    ),
    "thigh/upper_arm": (
        (_B["LHip-LKnee"], _B["RHip-RKnee"]),
        (_B["LShoulder-LElbow"], _B["RShoulder-RElbow"]),
    ),
}
# Segment lengths as fractions of body height H, Drillis & Contini (1966) as drawn in D. A. Winter,
# "Biomechanics and Motor Control of Human Movement" (4th ed. 2009), fig. 4.1: thigh (hip joint
# to knee) 0.245 H, leg (knee to ankle) 0.246 H, upper arm 0.186 H, forearm (elbow to wrist)
# 0.146 H. The tables give averages only: the band LITERATURE_TOLERANCE around them is our
# allowance for individual build, not a figure from the source.
LITERATURE_RATIOS: dict[str, float] = {
    "thigh/shin": 0.245 / 0.246,
    "upper_arm/forearm": 0.186 / 0.146,
    "thigh/upper_arm": 0.245 / 0.186,
}
LITERATURE_TOLERANCE = 0.15
# Knees of a seated person: the edited seated poses use 80..100 degrees (docs/pose_edit.md);
# anything above this counts as clearly flexed.
SEATED_KNEE_MIN_DEG = 45.0


def trunk_length(poses: np.ndarray) -> np.ndarray:
    """Spine path length Hip -> Spine -> Thorax. poses (..., 17, 3) metres -> (...,) metres."""
    return bone_lengths(np.asarray(poses, dtype=np.float64))[..., list(TRUNK_BONES)].sum(-1)


def bone_ratios(poses: np.ndarray) -> np.ndarray:
    """Every bone's length over the trunk length (`trunk_length`), in BONES order.
    poses (..., 17, 3) metres -> (..., 16) dimensionless (names: RATIO_NAMES)."""
    lengths = bone_lengths(np.asarray(poses, dtype=np.float64))
    trunk = lengths[..., list(TRUNK_BONES)].sum(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(trunk > 0, lengths / trunk, np.nan)


def limb_ratios(poses: np.ndarray) -> np.ndarray:
    """The LIMB_RATIOS (left and right averaged) of poses (..., 17, 3) metres -> (..., 3)."""
    lengths = bone_lengths(np.asarray(poses, dtype=np.float64))
    out = []
    for num, den in LIMB_RATIOS.values():
        top, bottom = lengths[..., list(num)].mean(-1), lengths[..., list(den)].mean(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.where(bottom > 0, top / bottom, np.nan))
    return np.stack(out, axis=-1)


def ratio_range(poses: np.ndarray | Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest `bone_ratios` over all frames. poses: (F, 17, 3) metres, or an
    iterable of such arrays (the sequences of a mocap set) -> (low (16,), high (16,))."""
    chunks = [poses] if isinstance(poses, np.ndarray) else list(poses)
    low, high = np.full(len(BONES), np.inf), np.full(len(BONES), -np.inf)
    for chunk in chunks:
        r = bone_ratios(np.asarray(chunk, dtype=np.float64).reshape(-1, len(JOINT_NAMES), 3))
        if len(r):
            low, high = np.fmin(low, np.nanmin(r, 0)), np.fmax(high, np.nanmax(r, 0))
    if not np.all(np.isfinite(low)):
        raise ValueError("no frames to take the ratio range from")
    return low, high


def range_deviation(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """How far values lie outside [low, high], relative to the end they pass: 0 inside,
    (v - high) / high above, (v - low) / low below (negative). Shapes broadcast; dimensionless."""
    values = np.asarray(values, dtype=np.float64)
    above = (values - high) / high
    below = (values - low) / low
    return np.where(values > high, above, np.where(values < low, below, 0.0))


def summarise(
    poses: np.ndarray, low: np.ndarray | None = None, high: np.ndarray | None = None
) -> dict:
    """The plausibility figures of lifted poses (F, 17, 3) metres, as JSON-ready numbers.

    bone_ratios: per RATIO_NAMES, median / min / max over frames, with the mocap range [low,
    high] (from `ratio_range`) and the median's `range_deviation` when given. limb_ratios: per
    LIMB_RATIOS, the median with the literature value and its deviation from it (fraction).
    knee_flexion_deg: median / min / max of the right and the left knee (degrees).
    """
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, len(JOINT_NAMES), 3)
    ratios = bone_ratios(poses)
    median = np.nanmedian(ratios, 0)
    out: dict = {"frames": len(poses), "bone_ratios": {}, "limb_ratios": {}}
    for i, name in enumerate(RATIO_NAMES):
        row = {"median": median[i], "min": np.nanmin(ratios[:, i]), "max": np.nanmax(ratios[:, i])}
        if low is not None and high is not None:
            row.update(mocap_low=low[i], mocap_high=high[i])
            row["deviation"] = range_deviation(median[i], low[i], high[i])
        out["bone_ratios"][name] = {k: float(v) for k, v in row.items()}
    limbs = np.nanmedian(limb_ratios(poses), 0)
    for value, (name, reference) in zip(limbs, LITERATURE_RATIOS.items()):
        out["limb_ratios"][name] = {
            "median": float(value),
            "literature": reference,
            "deviation": float(value / reference - 1.0),
            "within_tolerance": bool(abs(value / reference - 1.0) <= LITERATURE_TOLERANCE),
        }
    knees = np.degrees(knee_flexion(poses))
    out["knee_flexion_deg"] = {
        side: {
            "median": float(np.nanmedian(knees[:, k])),
            "min": float(np.nanmin(knees[:, k])),
            "max": float(np.nanmax(knees[:, k])),
        }
        for k, side in enumerate(("right", "left"))
    }
    return out


# ---------------------------------------------------------------------------------------------
# Real-clip checks: raised hands, mid-stance knees
# ---------------------------------------------------------------------------------------------
# (wrist, shoulder) joint pairs, left then right.
WRIST_SHOULDER: tuple[tuple[int, int], ...] = ((_J["LWrist"], _J["LShoulder"]),
                                               (_J["RWrist"], _J["RShoulder"]))  # fmt: skip


def raised_hands(keypoints_2d: np.ndarray, poses: np.ndarray) -> dict:
    """Do raised hands stay raised in 3D? keypoints_2d (T, 17, 2) image pixels (y down, NaN =
    unseen) and poses (T, 17, 3) lifted in camera axes (y down), same frames.

    Counts (frame, side) cases where the 2D wrist is seen above the 2D shoulder (smaller y, both
    seen), and of those the ones whose 3D wrist is above its 3D shoulder. Returns raised_2d,
    raised_3d_too and share (None without raised cases), per side and in all."""
    kp, poses = np.asarray(keypoints_2d, float), np.asarray(poses, float)
    out: dict = {}
    total = [0, 0]
    for side, (wrist, shoulder) in zip(("left", "right"), WRIST_SHOULDER):
        with np.errstate(invalid="ignore"):
            up_2d = kp[:, wrist, 1] < kp[:, shoulder, 1]  # NaN compares False: unseen
            up_3d = poses[:, wrist, 1] < poses[:, shoulder, 1]
        n, k = int(up_2d.sum()), int((up_2d & up_3d).sum())
        out[side] = {"raised_2d": n, "raised_3d_too": k, "share": k / n if n else None}
        total[0] += n
        total[1] += k
    out["raised_2d"], out["raised_3d_too"] = total
    out["share"] = total[1] / total[0] if total[0] else None
    return out


def mid_stance_frames(
    ankles_y: np.ndarray, fps: float, min_separation: float, window_s: float = 0.15
) -> list[tuple[int, int]]:
    """Mid-stance events of a walk from the image heights of the ankles, whatever the walking
    direction: when the swing foot passes the stance foot it is at its highest, so the vertical
    gap between the ankles peaks. ankles_y (T, 2) image y (down) of [right, left] ankle, NaN
    unseen; a frame is an event when its gap |y_R - y_L| is the largest within +-window_s and at
    least min_separation (same units). Returns [(frame, stance side: 0 right, 1 left)], the
    stance foot being the lower one in the image (larger y)."""
    y = np.asarray(ankles_y, float)
    gap = np.abs(y[:, 0] - y[:, 1])
    half = max(1, int(round(window_s * fps)))
    events = []
    for t in range(len(gap)):
        if not np.isfinite(gap[t]) or gap[t] < min_separation:
            continue
        lo, hi = max(0, t - half), min(len(gap), t + half + 1)
        # The first largest gap of the window: a plateau gives one event, not several.
        if np.argmax(np.nan_to_num(gap[lo:hi], nan=-1.0)) == t - lo:
            events.append((t, int(y[t, 1] > y[t, 0])))
    return events


def stance_knee_flexion(poses: np.ndarray, events: list[tuple[int, int]]) -> np.ndarray:
    """Knee flexion (degrees) of the stance leg at each mid-stance event. poses (T, 17, 3)
    metres; events from `mid_stance_frames` -> (E,) degrees (0 = straight)."""
    if not events:
        return np.zeros(0)
    frames, sides = np.array(events).T
    return np.degrees(knee_flexion(np.asarray(poses, float)[frames])[np.arange(len(frames)), sides])
