"""Foot contact: when each foot is planted on the floor, and keeping a planted foot still (a root
correction for what both feet agree on, then a two-bone leg IK for the rest) so that exported
feet do not skate."""

from __future__ import annotations

from typing import TypedDict

import numpy as np

from distpose_app.core.skeleton import BONES

from .trajectory import local_linear_rate, local_linear_smooth

FEET = (3, 6)  # H36M right and left ankle ("RightFoot", "LeftFoot" in the exports)
LEGS = ((1, 2, 3), (4, 5, 6))  # (hip, knee, ankle) right, left
# A planted ankle: within this height of the floor (metres; the estimated floor, the lifter's
# feet and the trajectory all carry a few centimetres of noise) and slower than this
# horizontally (m/s; a walking foot swings at 2-4 m/s, a planted one rolls at < 0.1 m/s).
CONTACT_HEIGHT_M = 0.06
CONTACT_SPEED_M_S = 0.35
# ... or, where the ankle's 2D is known, slower than this across the image (m/s at the ankle's
# depth): a static camera sees a planted foot stand still whatever the lifter makes of it.
CONTACT_IMAGE_SPEED_M_S = 0.2


class ContactThresholds(TypedDict):
    """Keyword arguments of `detect_contacts` that set how readily a foot counts as planted."""

    height_m: float
    grow_height_m: float
    image_speed_m_s: float
    grow: float


# Planting asks less (`PLANT_CONTACT`): a contact missed lets the lifter's foot slide at walking
# speed, and on held-out mocap the lifter's planted feet float up to ~12 cm above the floor
# (runs) and cross the image at up to ~0.3 m/s in short running contacts (the speed is smoothed
# over 0.05 s, which blurs a 0.15 s contact with the swings around it). The contact then grows
# while the foot stays within twice these thresholds (three times would pin swinging feet).
PLANT_CONTACT: ContactThresholds = {
    "height_m": 0.12, "grow_height_m": 0.16, "image_speed_m_s": 0.3, "grow": 2.0,
}  # fmt: skip
MIN_CONTACT_S = 0.1  # shorter "contacts" are a swinging foot passing low and slow
MAX_FLICKER_S = 0.07  # a contact broken this briefly is one contact


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(F,) bool -> [(start, stop)] half-open ranges of consecutive True."""
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _clean(mask: np.ndarray, t: np.ndarray, max_flicker_s: float, min_s: float) -> np.ndarray:
    """Fill False runs shorter than max_flicker_s inside True, then drop True runs shorter
    than min_s (durations from the timestamps, inclusive of one frame time)."""
    out = np.asarray(mask, bool).copy()
    if len(out) < 2:
        return out
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0 / 30.0
    for a, b in _runs(~out):
        if a > 0 and b < len(out) and t[b - 1] - t[a] + step <= max_flicker_s + 1e-9:
            out[a:b] = True
    for a, b in _runs(out):
        if t[b - 1] - t[a] + step < min_s - 1e-9:
            out[a:b] = False
    return out


def _velocity(x: np.ndarray, ok: np.ndarray, t: np.ndarray, smooth_s: float) -> np.ndarray:
    """(F, ..., D) -> (F, ..., D) per second: the local linear fit's slope over `smooth_s`
    (centred), or plain differences when smooth_s is 0. NaN where not ok."""
    if len(t) < 2:
        return np.full_like(x, np.nan)
    if smooth_s <= 0:
        v = np.gradient(x, t, axis=0)
        return np.where(ok.reshape((-1,) + (1,) * (x.ndim - 1)), v, np.nan)
    flat = x.reshape(len(x), -1)
    rates = [local_linear_rate(flat[:, c], ok, t, smooth_s) for c in range(flat.shape[1])]
    return np.stack(rates, axis=-1).reshape(x.shape)


def foot_speed_height(
    feet: np.ndarray, timestamps_s: np.ndarray, valid: np.ndarray, up: np.ndarray | None = None,
    smooth_s: float = 0.04,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Horizontal speed (m/s) and height (m, along `up`) of each foot: feet (F, 2, 3) metres,
    timestamps_s (F,), valid (F,) bool, up (3,) unit (default +Y). Both come from a centred
    local linear fit over `smooth_s` seconds (0: raw positions, plain differences), so that
    detector jitter is not read as motion. Returns (speed (F, 2), height (F, 2)); NaN on
    invalid frames."""
    t = np.asarray(timestamps_s, dtype=np.float64)
    feet = np.asarray(feet, dtype=np.float64)
    up = np.array([0.0, 1.0, 0.0]) if up is None else np.asarray(up, dtype=np.float64)
    valid = np.asarray(valid, bool) & np.isfinite(feet).all(axis=(1, 2))
    velocity = _velocity(feet, valid, t, smooth_s)
    horizontal = velocity - (velocity @ up)[..., None] * up
    speed = np.linalg.norm(horizontal, axis=-1)
    if smooth_s > 0:
        height = np.stack(
            [local_linear_smooth(feet[:, k] @ up, valid, t, smooth_s) for k in range(2)], -1
        )
    else:
        height = feet @ up
    return np.where(valid[:, None], speed, np.nan), np.where(valid[:, None], height, np.nan)


def image_speed(
    rays: np.ndarray, depth: np.ndarray, timestamps_s: np.ndarray, smooth_s: float = 0.05
) -> np.ndarray:
    """How fast points cross the image, in m/s at their depth: rays (F, K, 2) image rays (x/z,
    y/z; NaN unseen), depth (F, K) metres, timestamps_s (F,); the rate of change comes from a
    centred local linear fit over `smooth_s`. Returns (F, K), NaN where a ray is unseen."""
    t = np.asarray(timestamps_s, dtype=np.float64)
    rays = np.asarray(rays, dtype=np.float64)
    out = np.full(rays.shape[:2], np.nan)
    for k in range(rays.shape[1]):
        ok = np.isfinite(rays[:, k]).all(-1)
        velocity = _velocity(rays[:, k], ok, t, smooth_s)
        out[:, k] = np.linalg.norm(velocity, axis=-1) * np.asarray(depth, float)[:, k]
    return out


def detect_contacts(
    feet: np.ndarray,
    timestamps_s: np.ndarray,
    valid: np.ndarray | None = None,
    floor_m: float = 0.0,
    height_m: float = CONTACT_HEIGHT_M,
    speed_m_s: float = CONTACT_SPEED_M_S,
    min_contact_s: float = MIN_CONTACT_S,
    up: np.ndarray | None = None,
    rays: np.ndarray | None = None,
    depth: np.ndarray | None = None,
    image_speed_m_s: float = CONTACT_IMAGE_SPEED_M_S,
    grow: float = 3.0,
    grow_height_m: float = 0.12,
) -> np.ndarray:
    """(F, 2) bool: right and left foot planted, per frame.

    feet (F, 2, 3) metres (world, Y up unless `up` (3,) says otherwise); timestamps_s (F,);
    valid (F,) bool frames with a pose (default: finite). A foot is planted when it is within
    `height_m` of the floor (height `floor_m`) and still: where its 2D was seen (rays (F, 2, 2)
    the ankles' image rays, depth (F, 2) their camera depth in metres), slower than
    `image_speed_m_s` across the image; elsewhere slower than `speed_m_s` horizontally in 3D
    (the lifter's feet slide more than the image's). A contact extends to the neighbouring
    frames that meet `grow` times these thresholds, lasts at least `min_contact_s` (breaks of
    up to MAX_FLICKER_S are bridged).
    """
    feet = np.asarray(feet, dtype=np.float64)
    t = np.asarray(timestamps_s, dtype=np.float64)
    valid = np.isfinite(feet).all(axis=(1, 2)) if valid is None else np.asarray(valid, bool)
    speed, height = foot_speed_height(feet, t, valid, up)
    seen_speed = None
    if rays is not None and depth is not None:
        seen_speed = image_speed(rays, depth, t)

    def planted(factor: float, height_limit: float) -> np.ndarray:
        still = speed < factor * speed_m_s
        if seen_speed is not None:
            with np.errstate(invalid="ignore"):
                fast = seen_speed < factor * image_speed_m_s
            still = np.where(np.isfinite(seen_speed), fast, still)
        with np.errstate(invalid="ignore"):
            return (height - floor_m < height_limit) & still & valid[:, None]

    # Hysteresis: a contact found with the thresholds extends while the foot stays within
    # `grow` times them (the speed estimate is smoothed, so it rises before the foot leaves).
    seed, weak = planted(1.0, height_m), planted(grow, grow_height_m)
    out = []
    for k in range(2):
        contact = np.zeros(len(t), bool)
        for a, b in _runs(weak[:, k]):
            if seed[a:b, k].any():
                contact[a:b] = True
        out.append(_clean(contact, t, MAX_FLICKER_S, min_contact_s))
    return np.stack(out, axis=-1)


def _leg_lengths(bone_lengths: np.ndarray) -> list[tuple[float, float]]:
    """(thigh, shin) metres of the right and left leg from (16,) BONES-order lengths."""
    out = []
    for hip, knee, ankle in LEGS:
        out.append(
            (float(bone_lengths[BONES.index((hip, knee))]),
             float(bone_lengths[BONES.index((knee, ankle))]))
        )  # fmt: skip
    return out


def two_bone_ik(
    hip: np.ndarray, knee: np.ndarray, target: np.ndarray, thigh_m: float, shin_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Knee and ankle (F, 3) that put the ankle on `target` (F, 3) with the hip (F, 3) fixed
    and the bone lengths kept, the knee staying in the plane of hip, target and the old knee
    (F, 3). A target out of reach is approached along the hip-target line."""
    d_vec = target - hip
    d = np.linalg.norm(d_vec, axis=-1, keepdims=True)
    e = d_vec / np.maximum(d, 1e-9)
    d = np.clip(d, abs(thigh_m - shin_m) + 1e-6, thigh_m + shin_m - 1e-6)
    a = (thigh_m**2 - shin_m**2 + d**2) / (2.0 * d)
    h = np.sqrt(np.maximum(thigh_m**2 - a**2, 0.0))
    pole = (knee - hip) - np.sum((knee - hip) * e, axis=-1, keepdims=True) * e
    norm = np.linalg.norm(pole, axis=-1, keepdims=True)
    # a straight leg has no bend plane: bend forward-ish, along any perpendicular
    fallback = np.cross(e, np.array([1.0, 0.0, 0.0]))
    pole = np.where(norm > 1e-6, pole / np.maximum(norm, 1e-9), fallback)
    new_knee = hip + a * e + h * pole
    return new_knee, hip + d * e


def plant_feet(
    positions: np.ndarray,
    contacts: np.ndarray,
    bone_lengths: np.ndarray,
    timestamps_s: np.ndarray,
    valid: np.ndarray | None = None,
    blend_s: float = 0.15,
    root_share: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep planted feet still.

    positions (F, 17, 3) metres world (Y up, floor at 0); contacts (F, 2) bool (right, left);
    bone_lengths (16,) metres, the skeleton's (kept); timestamps_s (F,); valid (F,) bool.
    Each contact is anchored where the foot stood on average during it, on the floor. First the
    whole body moves horizontally by `root_share` of the average of what the planted feet need
    (interpolated between contacts; default 0: measured on held-out mocap, moving the body to
    the lifter's feet costs more accuracy than it saves, docs/root_motion.md); then each
    planted ankle is put on its anchor by a two-bone IK of its leg, faded in and out over
    `blend_s` at the contact's ends (easing: weight 1 - s^2 at a share s of the fade away from
    the contact, so the foot slows as it lands and starts slowly as it lifts instead of jumping
    the last quarter of its way in the contact's first frame), the body lowered where a
    straight leg cannot reach.
    Returns (positions (F, 17, 3), root_shift (F, 3) metres: the body shift applied in each
    frame).
    """
    P = np.array(positions, dtype=np.float64, copy=True)
    F = len(P)
    t = np.asarray(timestamps_s, dtype=np.float64)
    valid = np.isfinite(P).all(axis=(1, 2)) if valid is None else np.asarray(valid, bool)
    contacts = np.asarray(contacts, bool) & valid[:, None]
    shift = np.zeros((F, 3))
    if F == 0 or not contacts.any():
        return P, shift
    anchors = np.full((F, 2, 3), np.nan)
    for k, joint in enumerate(FEET):
        for a, b in _runs(contacts[:, k]):
            anchor = np.median(P[a:b, joint], axis=0)
            anchor[1] = 0.0
            anchors[a:b, k] = anchor
    # 1. Root correction: the horizontal offset the planted feet ask for, averaged over them.
    need = anchors - P[:, list(FEET)]
    need[..., 1] = 0.0
    count = contacts.sum(axis=1)
    want = np.where(count[:, None] > 0, np.nansum(np.where(contacts[..., None], need, 0.0), 1)
                    / np.maximum(count, 1)[:, None], np.nan)  # fmt: skip
    have = np.isfinite(want).all(-1)
    frames = np.arange(F)
    for axis in (0, 2):
        shift[:, axis] = np.interp(frames, frames[have], want[have, axis])
    shift[~valid] = 0.0
    shift *= root_share
    P += shift[:, None, :]
    # 2. Leg IK for what is left (double support where the feet disagree, and the height).
    step = float(np.median(np.diff(t))) if F > 1 else 1.0 / 30.0
    ramp = max(1, int(round(blend_s / step)))
    legs = []
    for k, (_, _, ankle) in enumerate(LEGS):
        weight = np.zeros(F)
        target = np.full((F, 3), np.nan)
        for a, b in _runs(contacts[:, k]):
            weight[a:b] = 1.0
            target[a:b] = anchors[a, k]
            # fade in before and out after the contact, towards the anchor
            for i in range(1, ramp + 1):
                w = 1.0 - (i / (ramp + 1)) ** 2
                for f in (a - i, b - 1 + i):
                    if 0 <= f < F and valid[f] and w > weight[f]:
                        weight[f], target[f] = w, anchors[a, k]
        use = weight > 0
        goal = np.full((F, 3), np.nan)
        goal[use] = P[use, ankle] + weight[use, None] * (target[use] - P[use, ankle])
        legs.append((use, goal))
    # 3. A planted foot the straight leg cannot reach (the lifter's hips a little too high)
    # lowers the body just enough, as a real gait's hips dip when the feet are apart.
    drop = np.zeros(F)
    for k, (hip, _, _) in enumerate(LEGS):
        use, goal = legs[k]
        reach = sum(_leg_lengths(bone_lengths)[k]) - 1e-6
        d = goal[use] - P[use, hip]
        level = np.maximum(reach**2 - d[:, 0] ** 2 - d[:, 2] ** 2, 0.0)
        need = -d[:, 1] - np.sqrt(level)  # how far the hip is above where the leg reaches
        drop[use] = np.maximum(drop[use], need)
    drop = np.clip(drop, 0.0, None)
    P[:, :, 1] -= drop[:, None]
    shift[:, 1] = -drop
    for k, (hip, knee, ankle) in enumerate(LEGS):
        use, goal = legs[k]
        if not use.any():
            continue
        thigh, shin = _leg_lengths(bone_lengths)[k]
        new_knee, new_ankle = two_bone_ik(P[use, hip], P[use, knee], goal[use], thigh, shin)
        P[use, knee], P[use, ankle] = new_knee, new_ankle
    return P, shift
