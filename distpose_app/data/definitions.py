"""Joint definitions: place a mocap rig's pelvis, hips, spine, thorax, neck/nose and head where
Human3.6M's marker-based body model has them, so every training source teaches the same joints.

A rig's joints are anatomical joint centres (narrow hips, a neck joint at the base of the skull);
Human3.6M's are not (hips about 13 cm either side of the pelvis, the pelvis their midpoint, a
"neck/nose" joint in front of the face, a head-top joint). Both are compared in a body frame:
origin at the shoulder midpoint S, `up` from the hip midpoint to S, `lat` towards the person's
left, `fwd` = lat x up, lengths in units of the body's limb scale (mean shin, upper-arm and
forearm length, which both define alike). `body_frame_statistics` measures where each joint sits
on average; `RigMapping` holds coefficients that move a rig's joints so that those averages
match Human3.6M's; `scripts/measure_rig_mapping.py` fits them and prints the residual
(docs/mocap.md has the table). The knees are compared by their straightest flexion (low
percentiles over all frames), since where a knee centre sits shows in how straight a leg gets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from distpose_app.core.skeleton import knee_flexion

# H36M-17 indices used here.
PELVIS, RHIP, RKNEE, RFOOT, LHIP, LKNEE, LFOOT = 0, 1, 2, 3, 4, 5, 6
SPINE, THORAX, NOSE, HEAD = 7, 8, 9, 10
LSHOULDER, LELBOW, LWRIST, RSHOULDER, RELBOW, RWRIST = 11, 12, 13, 14, 15, 16
TORSO_JOINTS = (PELVIS, RHIP, LHIP, SPINE, THORAX, NOSE, HEAD)
LEGS = ((RHIP, RKNEE, RFOOT), (LHIP, LKNEE, LFOOT))
# Knee flexion percentiles that describe a body's straightest legs: every mocap source has
# plenty of standing and heel strikes, so these compare definitions, not motions.
KNEE_LOW_PERCENTILES = (1.0, 5.0, 10.0)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-9, n, 1.0)


def body_frame(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """joints (..., 17, 3) -> (origin S (..., 3), lat, up, fwd (..., 3) unit vectors). S is the
    shoulder midpoint, up points from the hip midpoint to S, lat to the person's left (shoulders
    and hips averaged), fwd = lat x up (the way the person faces)."""
    s = 0.5 * (joints[..., LSHOULDER, :] + joints[..., RSHOULDER, :])
    hips = 0.5 * (joints[..., LHIP, :] + joints[..., RHIP, :])
    up = _unit(s - hips)
    lat = (joints[..., LSHOULDER, :] - joints[..., RSHOULDER, :]) + (
        joints[..., LHIP, :] - joints[..., RHIP, :]
    )
    lat = _unit(lat - np.sum(lat * up, axis=-1, keepdims=True) * up)
    fwd = np.cross(lat, up)
    return s, lat, up, fwd


def limb_scale(joints: np.ndarray) -> float:
    """Median over frames of the mean shin, upper-arm and forearm length of (F, 17, 3) joints:
    a body size both rigs and Human3.6M define alike (metres when the input is)."""
    pairs = [(RKNEE, RFOOT), (LKNEE, LFOOT), (RSHOULDER, RELBOW), (LSHOULDER, LELBOW),
             (RELBOW, RWRIST), (LELBOW, LWRIST)]  # fmt: skip
    lengths = np.stack([np.linalg.norm(joints[:, a] - joints[:, b], axis=-1) for a, b in pairs])
    return float(np.median(lengths.mean(0)))


def to_body_frame(joints: np.ndarray, points: np.ndarray, scale: float) -> np.ndarray:
    """points (F, K, 3) -> (F, K, 3) coordinates (lat, up, fwd) relative to the shoulder midpoint
    of `joints` (F, 17, 3), divided by `scale`."""
    s, lat, up, fwd = body_frame(joints)
    rel = points - s[:, None]
    axes = np.stack([lat, up, fwd], axis=-1)  # (F, 3, 3): columns are the axes
    return np.einsum("fkc,fca->fka", rel, axes) / scale


def body_frame_statistics(joints: np.ndarray) -> dict:
    """Mean and standard deviation of every joint's body-frame coordinates (limb-scale units) and
    the bone ratios that depend on the definitions. joints (F, 17, 3) one body's frames."""
    scale = limb_scale(joints)
    coords = to_body_frame(joints, joints, scale)
    thigh = np.linalg.norm(joints[:, [RHIP, LHIP]] - joints[:, [RKNEE, LKNEE]], axis=-1).mean()
    half_width = 0.5 * np.linalg.norm(joints[:, LHIP] - joints[:, RHIP], axis=-1).mean()
    return {
        "scale_m": scale,
        "mean": coords.mean(0),
        "std": coords.std(0),
        "thigh": float(thigh / scale),
        "hip_half_width": float(half_width / scale),
        "knee_low": np.percentile(np.degrees(knee_flexion(joints)), KNEE_LOW_PERCENTILES),
    }


@dataclass(frozen=True)
class RigMapping:
    """How to move a rig's torso and head joints onto Human3.6M's definitions (limb-scale units,
    body frame of the rig's own shoulders and hip joints).

    hips: the new hip midpoint = rig hip midpoint + hip_up * up + hip_fwd * fwd; each hip sits
    hip_half_width from it along the rig's hip axis; the pelvis is their midpoint.
    spine/thorax: new hip midpoint + a * (rig neck - new hip midpoint) + b * fwd.
    nose/head: rig neck + a * (rig head - rig neck) + b * fwd, so they follow the head's motion.
    knee_in: each knee moves this far (at most half its distance to the hip-ankle line) into
    its bend, along the bisector of thigh and shin: a rig whose knees never straighten (its
    knee centre sits in front of Human3.6M's) gets Human3.6M's straightest legs.
    """

    hip_up: float
    hip_fwd: float
    hip_half_width: float
    spine: tuple[float, float]
    thorax: tuple[float, float]
    nose: tuple[float, float]
    head: tuple[float, float]
    knee_in: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def apply_rig_mapping(rig: np.ndarray, neck: np.ndarray, head: np.ndarray,
                      mapping: RigMapping) -> np.ndarray:  # fmt: skip
    """rig (F, 17, 3): a rig's joints with its hips, shoulders and limbs in H36M-17 slots (the
    torso/head slots are ignored); neck, head (F, 3): the rig's neck (skull base) and head joints.
    Returns (F, 17, 3) with joints 0, 1, 4, 7, 8, 9, 10 on Human3.6M's definitions."""
    out = np.array(rig, dtype=np.float64, copy=True)
    scale = limb_scale(out)
    s, lat, up, fwd = body_frame(out)
    hip_mid = 0.5 * (out[:, LHIP] + out[:, RHIP])
    hip_axis = _unit(out[:, LHIP] - out[:, RHIP])
    mid = hip_mid + scale * (mapping.hip_up * up + mapping.hip_fwd * fwd)
    out[:, LHIP] = mid + scale * mapping.hip_half_width * hip_axis
    out[:, RHIP] = mid - scale * mapping.hip_half_width * hip_axis
    out[:, PELVIS] = mid
    for joint, (a, b) in ((SPINE, mapping.spine), (THORAX, mapping.thorax)):
        out[:, joint] = mid + a * (neck - mid) + scale * b * fwd
    for joint, (a, b) in ((NOSE, mapping.nose), (HEAD, mapping.head)):
        out[:, joint] = neck + a * (head - neck) + scale * b * fwd
    if mapping.knee_in:
        out = _with_knees_in(out, scale * mapping.knee_in)
    return out


def _with_knees_in(joints: np.ndarray, distance: float) -> np.ndarray:
    """(F, 17, 3) joints with both knees moved `distance` metres in (`_knee_moved_in`)."""
    out = joints.copy()
    for hip, knee, ankle in LEGS:
        out[:, knee] = _knee_moved_in(out[:, hip], out[:, knee], out[:, ankle], distance)
    return out


def _knee_moved_in(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, distance: float
                   ) -> np.ndarray:  # fmt: skip
    """(F, 3) knees moved `distance` (metres) into their bend along the bisector of thigh and
    shin, at most half their distance to the hip-ankle line (a straight knee stays put)."""
    inward = _unit(_unit(hip - knee) + _unit(ankle - knee))
    chord = _unit(ankle - hip)
    rel = knee - hip
    to_line = np.linalg.norm(rel - np.sum(rel * chord, axis=-1, keepdims=True) * chord, axis=-1)
    return knee + np.minimum(distance, 0.5 * to_line)[:, None] * inward


def fit_rig_mapping(rig: np.ndarray, neck: np.ndarray, head: np.ndarray,
                    target: dict) -> RigMapping:  # fmt: skip
    """Coefficients that give the rig's joints Human3.6M's mean body-frame positions.

    rig (F, 17, 3), neck, head (F, 3) as in `apply_rig_mapping`, frames of the rig's bodies;
    target: `body_frame_statistics` of Human3.6M (averaged over subjects). Each joint's two
    coefficients solve the least-squares fit of its mean (up, fwd) coordinates; the hips' width
    matches exactly."""
    scale = limb_scale(rig)
    s, lat, up, fwd = body_frame(rig)
    mean = target["mean"]

    def coords(p: np.ndarray) -> np.ndarray:  # (F, 3) -> (F, 3) body frame, limb units
        return to_body_frame(rig, p[:, None], scale)[:, 0]

    hip_mid = coords(0.5 * (rig[:, LHIP] + rig[:, RHIP])).mean(0)
    want_mid = 0.5 * (mean[LHIP] + mean[RHIP])
    hip_up, hip_fwd = float(want_mid[1] - hip_mid[1]), float(want_mid[2] - hip_mid[2])
    trial = RigMapping(hip_up, hip_fwd, target["hip_half_width"], (0, 0), (0, 0), (0, 0), (0, 0))
    mid = apply_rig_mapping(rig, neck, head, trial)[:, PELVIS]

    def solve(base: np.ndarray, toward: np.ndarray, joint: int) -> tuple[float, float]:
        # target = base + a * (toward - base) + b * fwd, in (up, fwd) coordinates, on average
        b0, d = coords(base).mean(0), coords(toward).mean(0) - coords(base).mean(0)
        a = (mean[joint][1] - b0[1]) / d[1]
        return float(a), float(mean[joint][2] - b0[2] - a * d[2])

    fitted = RigMapping(
        hip_up=hip_up,
        hip_fwd=hip_fwd,
        hip_half_width=float(target["hip_half_width"]),
        spine=solve(mid, neck, SPINE),
        thorax=solve(mid, neck, THORAX),
        nose=solve(neck, head, NOSE),
        head=solve(neck, head, HEAD),
    )
    if "knee_low" not in target:
        return fitted
    # The knees: the move that gives the straightest legs Human3.6M's flexion. The torso mapping
    # does not depend on the knees, so it is applied once and only the knees move per trial.
    want = np.asarray(target["knee_low"])
    base = apply_rig_mapping(rig, neck, head, fitted)

    def miss(knee_in: float) -> float:
        moved = _with_knees_in(base, scale * knee_in)
        got = np.percentile(np.degrees(knee_flexion(moved)), KNEE_LOW_PERCENTILES)
        return float(np.sum((got - want) ** 2))

    grid = np.round(np.arange(0.0, 0.3001, 0.0025), 4)
    return replace(fitted, knee_in=float(grid[int(np.argmin([miss(k) for k in grid]))]))
