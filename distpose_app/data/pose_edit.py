"""Pose augmentation on a mocap file's own joint rotations: seated, crouching, bending forward and
kneeling variants of the Bandai-Namco motions, which hold none of these poses.

How an edit is made (docs/pose_edit.md gives the ranges and the measured rejection rates):
- The upper body (Spine and everything above it) keeps the source file's local rotations frame by
  frame, so waving, gesturing and turning stay as captured. Its bones are the file's own.
- The pelvis keeps the source's heading (yaw, smoothed over SMOOTH_HEADING_S so that the walking
  sway of the hips goes) and gets the family's tilt; it stays in place (no root travel).
- The legs are set to the family's pose, built in a body frame (x left, y up, z forward) from the
  subject's own standing leg (the source's mean leg orientation, straightened), plus a slow random
  sway of a few degrees. Only rotations change, so every bone keeps its exact length.
- The height comes from floor contact: in every frame the lowest contact point (heel, ball of the
  foot, and for kneeling the knee) touches the floor at its clearance measured on the source.
  Seated legs are solved so that the feet reach the floor from the sampled seat height.
- Forward kinematics and `mocap.to_h36m` give the H36M-17 joints. `check_pose` rejects frames
  beyond anatomical joint limits or below the floor; `edit_sequence` redraws the parameters and
  keeps the longest run of valid frames when no draw is clean.

Internal lengths are in the file's units (centimetres for Bandai-Namco); angles are degrees in
`EditParams` (they are user-facing ranges) and radians in the maths.

Over 700 lines because sampling, building, applying and checking an edit all work on the
source file's private `_Body` (its standing leg, heading and clearances); split, that state
would have to become a public interface.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distpose_app.core.errors import DataFormatError, DistposeError
from distpose_app.core.rotations import (
    chordal_mean,
    matrix_to_euler,
    rotation_about_axis,
    smallest_rotation,
)
from distpose_app.data.bvh import Bvh, forward_kinematics, local_rotations, local_translations
from distpose_app.data.mocap import MocapSequence, detect_scale_to_m, parse_bandai_name, to_h36m

FAMILIES = ("seated", "crouching", "bending_forward", "kneeling")
# Edited sequences are named `<source><EDIT_SEPARATOR><family>`: data.splits.split_of keeps
# everything before its clip separator "#", so an edit always shares its source file's split.
EDIT_SEPARATOR = "#"

# Bandai-Namco joint names the edit touches (the upper body is found as Spine's subtree).
PELVIS, SPINE, CHEST, NECK = "Hips", "Spine", "Chest", "Neck"
LEGS = {
    "L": ("UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L"),
    "R": ("UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R"),
}

# Contact geometry, metres. The hip joint centres sit about 9 cm above a seat's surface (ischial
# tuberosities plus soft tissue); the knee joint centre about 6 cm above the floor when kneeling
# on it. Heel (ankle joint) and ball-of-foot (toe joint) clearances are measured per file.
SEAT_TO_HIP_JOINT_M = 0.09
KNEE_CLEARANCE_M = 0.06
FLOOR_TOLERANCE_M = 0.01
SEAT_TOLERANCE_M = 0.03
SMOOTH_HEADING_S = 0.5

# Anatomical limits, degrees (AAOS normal ranges, widened by a little for mocap noise).
LIMITS_DEG = {
    "knee_flexion": (-10.0, 160.0),  # below 0: hyperextension
    "hip_flexion": (-20.0, 140.0),
    "hip_abduction": (-30.0, 50.0),  # negative: adduction across the midline
    "ankle_dorsiflexion": (-60.0, 45.0),  # relative to the standing foot
    "spine_flexion": (-30.0, 90.0),  # Spine -> Neck against the pelvis, sagittal
    "spine_lateral": (-40.0, 40.0),
}

_UP = np.array([0.0, 1.0, 0.0])
_FLEX_AXIS = np.array([-1.0, 0.0, 0.0])  # about it, +angle turns "down" toward "forward" (+z)


# ---------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LegPose:
    """One leg, degrees, in the body frame. thigh: thigh angle from straight down toward forward
    (90 = horizontal). knee: knee flexion (the shin points thigh - knee from down toward forward).
    abduction: thigh and shin turned outward. foot_pitch: foot turned toes-up (+) from flat, or
    for contact 'knee' the ankle's dorsiflexion from its standing angle to the shin. contact:
    'foot' (heel and ball on the floor), 'knee' (knee and ball on the floor) or 'none'.
    """

    thigh: float
    knee: float
    abduction: float = 0.0
    foot_pitch: float = 0.0
    contact: str = "foot"


@dataclass(frozen=True)
class EditParams:
    """A sampled edit. pelvis_tilt: anterior (+) / posterior (-) tilt, degrees. spine_flexion:
    extra forward bend of Spine and Chest (half each), degrees. seat_height_m: seat surface
    height for 'seated' (None otherwise). sway_deg / sway_hz: amplitude and frequency of the
    slow random sway added to pelvis tilt, thighs and knees; sway_phase: (6,) radians."""

    family: str
    pelvis_tilt: float
    left: LegPose
    right: LegPose
    spine_flexion: float = 0.0
    seat_height_m: float | None = None
    sway_deg: float = 0.0
    sway_hz: float = 0.2
    sway_phase: tuple[float, ...] = (0.0,) * 6


# ---------------------------------------------------------------------------------------
# Rotations
# ---------------------------------------------------------------------------------------
def _flex(deg: np.ndarray) -> np.ndarray:
    return rotation_about_axis(_FLEX_AXIS, np.radians(deg))


def _yaw(psi: np.ndarray) -> np.ndarray:
    return rotation_about_axis(_UP, psi)


def _align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction src (3,) to dst (3,) -> (3, 3)."""
    return smallest_rotation(src / np.linalg.norm(src), dst / np.linalg.norm(dst))


# ---------------------------------------------------------------------------------------
# The source's body: heading, standing leg, clearances
# ---------------------------------------------------------------------------------------
@dataclass
class _Body:
    index: dict[str, int]
    scale: float  # metres per file unit
    trans: np.ndarray  # (J, 3) local translations of frame 0, file units
    local: np.ndarray  # (F, J, 3, 3) source local rotations
    glob: np.ndarray  # (F, J, 3, 3) source global rotations
    heading: np.ndarray  # (F,) smoothed yaw, radians
    centre: np.ndarray  # (3,) where the pelvis stays (x, 0, z), file units
    pelvis: np.ndarray  # (3, 3) standing pelvis in the body frame
    leg: dict[str, np.ndarray] = field(default_factory=dict)  # "thigh_L" ... -> (3, 3)
    toe_clear: float = 0.0  # file units
    ankle_clear: float = 0.0
    ankle_ref: float = 0.0  # standing shin-to-foot angle, radians


def _heading(positions: np.ndarray, index: dict[str, int], width: int) -> np.ndarray:
    """(F,) yaw of the body's forward (right hip -> left hip crossed with up), radians, unwrapped
    and smoothed by a moving average over `width` frames (odd)."""
    left = positions[:, index[LEGS["L"][0]]] - positions[:, index[LEGS["R"][0]]]
    forward = np.cross(left, _UP)
    psi = np.unwrap(np.arctan2(forward[:, 0], forward[:, 2]))
    padded = np.pad(psi, width // 2, mode="edge")
    return np.convolve(padded, np.ones(width) / width, mode="valid")


def _body(bvh: Bvh, scale_to_m: float | None) -> _Body:
    missing = [
        n for n in (PELVIS, SPINE, CHEST, NECK, *LEGS["L"], *LEGS["R"]) if n not in bvh.names
    ]
    if missing:
        raise DataFormatError(f"pose edit needs a Bandai-Namco skeleton; missing {missing}")
    if bvh.num_frames == 0:
        raise DataFormatError("pose edit: the file has no frames")
    index = {n: j for j, n in enumerate(bvh.names)}
    scale = detect_scale_to_m(bvh) if scale_to_m is None else scale_to_m
    positions, glob = forward_kinematics(bvh)
    local = local_rotations(bvh)
    trans = local_translations(bvh)[0]
    psi_raw = _heading(positions, index, 1)  # the raw heading, for the de-yawing
    heading = _heading(positions, index, int(round(SMOOTH_HEADING_S * bvh.fps)) | 1)
    deyaw = np.swapaxes(_yaw(psi_raw), -1, -2)  # (F, 3, 3)
    p = index[PELVIS]
    centre = positions[:, p].mean(axis=0) * np.array([1.0, 0.0, 1.0])
    # The standing pelvis: its mean orientation, turned so that Hips -> Spine points straight up
    # (a bowing or stooping source file would otherwise lend its lean to every edit).
    pelvis = chordal_mean(deyaw @ glob[:, p])
    pelvis = _align(pelvis @ trans[index[SPINE]], _UP) @ pelvis
    body = _Body(index, scale, trans, local, glob, heading, centre, pelvis)
    down = -_UP
    for side, (thigh, shin, foot, _toe) in LEGS.items():
        for name, joint, child in (("thigh", thigh, shin), ("shin", shin, foot)):
            mean = chordal_mean(deyaw @ glob[:, index[joint]])
            body.leg[f"{name}_{side}"] = _align(mean @ trans[index[child]], down) @ mean
        body.leg[f"foot_{side}"] = chordal_mean(deyaw @ glob[:, index[foot]])
    # Clearances: the 5th percentile over frames of the joints' heights (stance phases).
    y = positions[..., 1]
    feet = [index[LEGS[s][2]] for s in LEGS]
    toes = [index[LEGS[s][3]] for s in LEGS]
    body.toe_clear = float(np.clip(np.percentile(y[:, toes], 5), 0.01 / scale, 0.08 / scale))
    body.ankle_clear = float(np.clip(np.percentile(y[:, feet], 5), 0.05 / scale, 0.15 / scale))
    # Make the standing foot flat: heel at ankle_clear and ball at toe_clear, its toe-out kept.
    for side in LEGS:
        foot_rotation = body.leg[f"foot_{side}"]
        vec = foot_rotation @ trans[index[LEGS[side][3]]]
        length, drop = np.linalg.norm(vec), body.ankle_clear - body.toe_clear
        # Toe-out from the mean foot, within +-25 degrees (running files lean on the toes).
        toe_out = np.clip(np.arctan2(vec[0], vec[2]), -np.radians(25), np.radians(25))
        flat = np.array([np.sin(toe_out), 0.0, np.cos(toe_out)]) * np.sqrt(
            np.maximum(length**2 - drop**2, 0.0)
        )
        body.leg[f"foot_{side}"] = _align(vec, flat - drop * _UP) @ foot_rotation
    shin = body.leg["shin_L"] @ trans[index[LEGS["L"][2]]]
    toe = body.leg["foot_L"] @ trans[index[LEGS["L"][3]]]
    body.ankle_ref = float(_signed_angle(shin, toe, _FLEX_AXIS))
    return body


def _signed_angle(a: np.ndarray, b: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Angle from a to b (..., 3) about axis (..., 3), radians in (-pi, pi]."""
    return np.arctan2(np.sum(np.cross(a, b) * axis, axis=-1), np.sum(a * b, axis=-1))


# ---------------------------------------------------------------------------------------
# Building a pose in the body frame
# ---------------------------------------------------------------------------------------
def _leg_rotations(body: _Body, side: str, pose: LegPose, thigh, knee):
    """Body-frame global rotations (thigh, shin, foot) of one leg, each (..., 3, 3); thigh and
    knee in degrees, scalars or (F,) for a sway."""
    outward = np.array([0.0, 0.0, 1.0 if side == "L" else -1.0])
    # Abduction acts in the pelvis's frontal plane before the flexion, so that flexed thighs
    # (seated, crouching) spread sideways like knees apart do.
    hip = _flex(thigh) @ rotation_about_axis(outward, np.radians(pose.abduction))
    g_thigh = hip @ body.leg[f"thigh_{side}"]
    shank = hip @ _flex(np.negative(knee))
    g_shin = shank @ body.leg[f"shin_{side}"]
    if pose.contact == "knee":  # kneeling: the foot follows the shin, toes tucked under
        g_foot = shank @ _flex(np.full(np.shape(knee), pose.foot_pitch)) @ body.leg[f"foot_{side}"]
    else:  # standing on it: flat on the floor whatever the abduction
        g_foot = _flex(np.full(np.shape(thigh), pose.foot_pitch)) @ body.leg[f"foot_{side}"]
    return g_thigh, g_shin, g_foot


def _leg_points(body: _Body, side: str, g_pelvis, g_thigh, g_shin, g_foot) -> dict:
    """Body-frame positions (..., 3) relative to the pelvis joint, file units."""
    thigh, shin, foot, toe = (body.index[n] for n in LEGS[side])
    hip = g_pelvis @ body.trans[thigh]
    knee = hip + g_thigh @ body.trans[shin]
    ankle = knee + g_shin @ body.trans[foot]
    return {"hip": hip, "knee": knee, "ankle": ankle, "toe": ankle + g_foot @ body.trans[toe]}


def _contacts(body: _Body, side: str, pose: LegPose, points: dict) -> list:
    """(height above the pelvis (...,), clearance) pairs of the leg's floor contacts."""
    knee_clear = KNEE_CLEARANCE_M / body.scale
    if pose.contact == "knee":
        return [(points["knee"][..., 1], knee_clear), (points["toe"][..., 1], body.toe_clear)]
    if pose.contact == "foot":
        return [
            (points["ankle"][..., 1], body.ankle_clear),
            (points["toe"][..., 1], body.toe_clear),
        ]
    return []


def _bisect(f, lo: float, hi: float, iters: int = 40) -> float | None:
    """A root of f on [lo, hi] (f(lo), f(hi) of opposite signs), else None."""
    flo, fhi = f(lo), f(hi)
    if flo * fhi > 0:
        return None
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        fm = f(mid)
        if (fm > 0) == (flo > 0):
            lo, flo = mid, fm
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _pelvis_rotation(body: _Body, tilt) -> np.ndarray:
    """Body-frame pelvis rotation (..., 3, 3) for an anterior tilt (degrees, + = top forward:
    the opposite sense of `_flex`, which turns the thigh's "down" toward forward)."""
    return _flex(np.negative(tilt)) @ body.pelvis


# ---------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------
def sample_params(
    bvh: Bvh, family: str, rng: np.random.Generator, scale_to_m: float | None = None
) -> tuple[EditParams | None, int]:
    """Draw an edit of `family` for this file's skeleton: (params, redraws), params None when
    20 draws all failed to fit (a seated leg that cannot reach the floor, say). Ranges: see
    docs/pose_edit.md. Deterministic from rng."""
    return _sample(_body(bvh, scale_to_m), family, rng)


def _sample(body: _Body, family: str, rng: np.random.Generator) -> tuple[EditParams | None, int]:
    if family not in FAMILIES:
        raise DistposeError(f"unknown pose family {family!r}: choose one of {', '.join(FAMILIES)}")
    u = rng.uniform
    for attempt in range(20):
        sway: dict[str, Any] = dict(
            sway_deg=u(0.5, 2.5), sway_hz=u(0.1, 0.4), sway_phase=tuple(u(0, 2 * np.pi, 6))
        )
        params: EditParams | None = None
        if family == "seated":
            tilt, seat = u(-15.0, 0.0), u(0.40, 0.50)
            knees, spread = u(80.0, 100.0, 2), u(0.0, 15.0, 2)
            # The lumbar spine flexes against the pelvis's backward tilt to keep the trunk
            # about upright, then leans toward a desk or back against a backrest.
            params = _seated(body, knees, seat, tilt, spread, -tilt + u(-10.0, 15.0), sway)
            seated = (params.left, params.right) if params is not None else ()
            if any(
                not 70.0 <= leg.thigh <= 110.0 or not 75 <= leg.thigh + tilt <= 105
                for leg in seated
            ):
                params = None
        elif family == "crouching":
            knee, lean, hip = u(100.0, 140.0), u(10.0, 30.0), u(100.0, 135.0)
            thigh = knee - lean
            tilt = hip - thigh
            if 5.0 <= tilt <= 45.0:
                left, right = (LegPose(thigh, knee, abduction=u(5.0, 25.0)) for _ in "LR")
                params = EditParams(family, tilt, left, right, **sway)
        elif family == "bending_forward":
            knee = u(0.0, 20.0)
            thigh = knee - u(0.0, 0.5 * knee)
            trunk = u(30.0, 80.0)
            spine = u(0.2, 0.5) * trunk
            left, right = (LegPose(thigh, knee, abduction=u(0.0, 8.0)) for _ in "LR")
            params = EditParams(family, trunk - spine, left, right, spine_flexion=spine, **sway)
        else:  # kneeling: both knees, or one knee with the other foot forward
            tilt = u(-10.0, 10.0)
            both = rng.random() < 0.5
            kneel_side = "LR"[int(rng.integers(2))]
            legs: dict[str, LegPose] = {}
            for side in "LR":
                if both or side == kneel_side:
                    pose = LegPose(u(-5.0, 25.0), 0.0, u(0.0, 10.0), u(-10.0, 15.0), "knee")
                    kneeling_knee = _solve_kneeling_knee(body, side, pose, tilt)
                    if kneeling_knee is None:
                        break
                    legs[side] = dataclasses.replace(pose, knee=kneeling_knee)
            if len(legs) == (2 if both else 1) and not both:
                other = "R" if kneel_side == "L" else "L"
                pose = LegPose(u(80.0, 100.0), 0.0, u(0.0, 10.0))
                front_knee = _solve_front_knee(body, other, pose, tilt, legs[kneel_side])
                if front_knee is not None and 55.0 <= front_knee <= 130.0:
                    legs[other] = dataclasses.replace(pose, knee=front_knee)
            if len(legs) == 2:
                params = EditParams(family, tilt, legs["L"], legs["R"], **sway)
        if params is not None:
            return params, attempt
    return None, 20


def solve_seated(
    bvh: Bvh,
    knee_deg: float,
    seat_height_m: float,
    pelvis_tilt_deg: float = 0.0,
    scale_to_m: float | None = None,
) -> EditParams | None:
    """A seated edit with both knees at knee_deg and the seat surface at seat_height_m (the hip
    joint centres SEAT_TO_HIP_JOINT_M above it): each thigh angle is solved so that a flat foot
    rests on the floor. No sway, no abduction, no spine change. None when the feet cannot reach
    the floor with the thigh within 50-130 degrees of straight down."""
    body = _body(bvh, scale_to_m)
    return _seated(body, (knee_deg, knee_deg), seat_height_m, pelvis_tilt_deg, (0.0, 0.0), 0.0, {})


def _seated(body, knees, seat, tilt, spread, spine, sway) -> EditParams | None:
    legs: list[LegPose] = []
    for side, knee, abduction in zip("LR", knees, spread):
        pose = LegPose(0.0, float(knee), abduction=float(abduction))
        thigh = _solve_seated_thigh(body, side, pose, tilt, seat)
        if thigh is None:
            return None
        legs.append(dataclasses.replace(pose, thigh=thigh))
    return EditParams("seated", tilt, legs[0], legs[1], spine, seat_height_m=seat, **sway)


def _static_points(body: _Body, side: str, pose: LegPose, tilt: float) -> dict:
    g = _leg_rotations(body, side, pose, pose.thigh, pose.knee)
    return _leg_points(body, side, _pelvis_rotation(body, tilt), *g)


def _solve_seated_thigh(body, side, pose, tilt, seat_m) -> float | None:
    """Thigh angle (degrees) that puts a flat foot on the floor with the hip joints at the seat
    height plus SEAT_TO_HIP_JOINT_M; None if out of [50, 130]."""
    hip_y = (seat_m + SEAT_TO_HIP_JOINT_M) / body.scale

    def gap(thigh):
        p = _static_points(body, side, dataclasses.replace(pose, thigh=thigh), tilt)
        return (p["ankle"][1] - p["hip"][1] + hip_y) - body.ankle_clear

    return _bisect(gap, 50.0, 130.0)


def _solve_kneeling_knee(body, side, pose, tilt) -> float | None:
    """Knee flexion (degrees) that puts the ball of the foot on the floor when the knee is."""
    target = body.toe_clear - KNEE_CLEARANCE_M / body.scale

    def gap(knee):
        p = _static_points(body, side, dataclasses.replace(pose, knee=knee), tilt)
        return (p["toe"][1] - p["knee"][1]) - target

    knee = _bisect(gap, pose.thigh + 45.0, min(pose.thigh + 130.0, 155.0))
    return knee


def _solve_front_knee(body, side, pose, tilt, kneeling: LegPose) -> float | None:
    """Knee flexion of the forward leg of a one-knee kneel: its heel on the floor."""
    kside = "R" if side == "L" else "L"
    kp = _static_points(body, kside, kneeling, tilt)
    pelvis_y = KNEE_CLEARANCE_M / body.scale - kp["knee"][1]

    def gap(knee):
        p = _static_points(body, side, dataclasses.replace(pose, knee=knee), tilt)
        return pelvis_y + p["ankle"][1] - body.ankle_clear

    # The ankle is lowest with the shin vertical (knee = thigh): solve on the side where the foot
    # stands in front of the knee, where the height is monotonic.
    return _bisect(gap, 20.0, pose.thigh)


# ---------------------------------------------------------------------------------------
# Applying an edit
# ---------------------------------------------------------------------------------------
@dataclass
class EditResult:
    """One edited file. bvh: the edited file (same skeleton and frame count as the source).
    positions: (F, 17, 3) H36M-17 metres, Y up, floor at y = 0. valid: (F,) frames passing every
    check. violations: check name -> (F,) bool frames failing it. params: the edit."""

    bvh: Bvh
    positions: np.ndarray
    valid: np.ndarray
    violations: dict[str, np.ndarray]
    params: EditParams


def _write_rotation(motion: np.ndarray, bvh: Bvh, joint: int, local: np.ndarray) -> None:
    """Store (F, 3, 3) local rotations into the joint's rotation channels (degrees)."""
    chans, cols = bvh.channels[joint], bvh.channel_columns()[joint]
    rot = [(c[0], col) for c, col in zip(chans, cols) if c.endswith("rotation")]
    if len(rot) != 3:
        raise DataFormatError(f"pose edit: joint {bvh.names[joint]} needs 3 rotation channels")
    order = "".join(a for a, _ in rot)
    motion[:, [col for _, col in rot]] = np.degrees(matrix_to_euler(local, order))


def _write_position(motion: np.ndarray, bvh: Bvh, joint: int, xyz: np.ndarray) -> None:
    """Store (F, 3) local translations into the joint's position channels (file units)."""
    chans, cols = bvh.channels[joint], bvh.channel_columns()[joint]
    pos = {c[0]: col for c, col in zip(chans, cols) if c.endswith("position")}
    if set(pos) != {"X", "Y", "Z"}:
        raise DataFormatError(f"pose edit: joint {bvh.names[joint]} needs 3 position channels")
    motion[:, [pos["X"], pos["Y"], pos["Z"]]] = xyz


def apply_edit(bvh: Bvh, params: EditParams, scale_to_m: float | None = None) -> EditResult:
    """Apply an edit (from `sample_params`) to every frame of a Bandai-Namco file and check it.

    bvh: the source file (J joints, F frames). scale_to_m: metres per file unit (detected when
    None). Returns an EditResult: the edited Bvh, H36M-17 positions (F, 17, 3) metres and the
    per-frame checks of `joint_angles` / LIMITS_DEG and floor and seat contact.
    """
    return _apply(_body(bvh, scale_to_m), bvh, params)


def _apply(body: _Body, bvh: Bvh, params: EditParams) -> EditResult:
    F, ix = bvh.num_frames, body.index
    t = np.arange(F) / bvh.fps
    sway = [
        params.sway_deg * np.sin(2 * np.pi * params.sway_hz * t + phase)
        for phase in params.sway_phase
    ]
    tilt = params.pelvis_tilt + sway[0]
    g_pelvis = _pelvis_rotation(body, tilt)  # (F, 3, 3) body frame
    legs, contacts = {}, []
    for k, (side, pose) in enumerate((("L", params.left), ("R", params.right))):
        thigh_sway, knee_sway = sway[1 + 2 * k], sway[2 + 2 * k]
        if pose.contact == "knee":
            # A shin lying on the floor keeps its angle (the knee follows the thigh's sway), so
            # that knee and toes rise and fall together and both stay down.
            knee_sway = thigh_sway
        elif params.family == "kneeling":
            # The front foot of a one-knee kneel stays put: its sway would lift the other knee.
            thigh_sway = knee_sway = 0.0 * thigh_sway
        g = _leg_rotations(body, side, pose, pose.thigh + thigh_sway, pose.knee + knee_sway)
        legs[side] = g
        contacts += _contacts(body, side, pose, _leg_points(body, side, g_pelvis, *g))
    # The lowest contact point of every frame rests on the floor at its clearance.
    height = np.max([clear - y for y, clear in contacts], axis=0)  # (F,) pelvis height

    motion = bvh.motion.copy()
    heading = _yaw(body.heading)  # (F, 3, 3) body frame -> world
    root = int(np.flatnonzero(bvh.parents < 0)[0])
    pelvis = ix[PELVIS]
    if bvh.parents[pelvis] != root or root == pelvis:
        raise DataFormatError("pose edit: expected the pelvis (Hips) as the root's child")
    # The root becomes a still floor marker under the pelvis: no travel, no rotation.
    _write_position(motion, bvh, root, np.broadcast_to(body.centre, (F, 3)))
    _write_rotation(motion, bvh, root, np.broadcast_to(np.eye(3), (F, 3, 3)))
    _write_position(motion, bvh, pelvis, np.stack([0 * height, height, 0 * height], axis=-1))
    _write_rotation(motion, bvh, pelvis, heading @ g_pelvis)
    # Spine and Chest bend forward about the body's lateral axis by half the flexion each.
    half = _flex(np.full(F, -0.5 * params.spine_flexion))
    g_spine = half @ g_pelvis @ body.local[:, ix[SPINE]]
    g_chest = half @ g_spine @ body.local[:, ix[CHEST]]
    _write_rotation(motion, bvh, ix[SPINE], np.swapaxes(g_pelvis, -1, -2) @ g_spine)
    _write_rotation(motion, bvh, ix[CHEST], np.swapaxes(g_spine, -1, -2) @ g_chest)
    for side, (g_thigh, g_shin, g_foot) in legs.items():
        thigh, shin, foot, _ = (ix[n] for n in LEGS[side])
        _write_rotation(motion, bvh, thigh, np.swapaxes(g_pelvis, -1, -2) @ g_thigh)
        _write_rotation(motion, bvh, shin, np.swapaxes(g_thigh, -1, -2) @ g_shin)
        _write_rotation(motion, bvh, foot, np.swapaxes(g_shin, -1, -2) @ g_foot)
    edited = dataclasses.replace(bvh, motion=motion)
    fk, _ = forward_kinematics(edited)
    violations = _check(body, params, fk)
    valid = ~np.any(list(violations.values()), axis=0)
    return EditResult(edited, to_h36m(edited, body.scale), valid, violations, params)


# ---------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------
def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def joint_angles(positions: np.ndarray, names: list[str], ankle_ref_deg: float = 0.0) -> dict:
    """Anatomical angles of a Bandai-Namco pose from its joint positions.

    positions: (F, J, 3) forward-kinematics positions (any length unit, Y up); names: the J
    joint names. The pelvis frame is lateral = left hip - right hip, up = Hips -> Spine (rigid
    on the pelvis), forward = lateral x up. Returns degrees, each (F,) or (F, 2) for (left,
    right): knee_flexion (negative: hyperextension), hip_flexion, hip_abduction (outward +),
    ankle_dorsiflexion (minus ankle_ref_deg, the standing shin-foot angle), spine_flexion and
    spine_lateral (Spine -> Neck against the pelvis).
    """
    p = lambda n: positions[:, names.index(n)]  # noqa: E731
    lateral = _unit(p(LEGS["L"][0]) - p(LEGS["R"][0]))
    up = p(SPINE) - p(PELVIS)
    up = _unit(up - np.sum(up * lateral, -1, keepdims=True) * lateral)
    forward = np.cross(lateral, up)
    out: dict[str, list] = {k: [] for k in LIMITS_DEG if not k.startswith("spine")}
    for side, sign in (("L", 1.0), ("R", -1.0)):
        hip, knee, ankle, toe = (p(n) for n in LEGS[side])
        thigh, shin, foot = knee - hip, ankle - knee, toe - ankle
        out["hip_flexion"].append(np.arctan2(np.sum(thigh * forward, -1), -np.sum(thigh * up, -1)))
        out["hip_abduction"].append(
            np.arcsin(np.clip(sign * np.sum(_unit(thigh) * lateral, -1), -1, 1))
        )
        out["knee_flexion"].append(_signed_angle(thigh, shin, lateral))
        out["ankle_dorsiflexion"].append(
            _signed_angle(shin, foot, -lateral) - np.radians(ankle_ref_deg)
        )
    angles = {k: np.degrees(np.stack(v, axis=-1)) for k, v in out.items()}
    trunk = p(NECK) - p(SPINE)
    vertical = np.sum(trunk * up, -1)
    angles["spine_flexion"] = np.degrees(np.arctan2(np.sum(trunk * forward, -1), vertical))
    angles["spine_lateral"] = np.degrees(
        np.arcsin(np.clip(np.sum(_unit(trunk) * lateral, -1), -1, 1))
    )
    return angles


def _check(body: _Body, params: EditParams, fk: np.ndarray) -> dict[str, np.ndarray]:
    """(F,) bool per failed check, from forward-kinematics positions (F, J, 3) file units."""
    names = list(body.index)
    angles = joint_angles(fk, names, np.degrees(body.ankle_ref))
    out = {}
    for key, (lo, hi) in LIMITS_DEG.items():
        a = angles[key]
        bad = (a < lo) | (a > hi)
        out[key] = bad if bad.ndim == 1 else bad.any(axis=-1)
    tol = FLOOR_TOLERANCE_M / body.scale
    y = fk[..., 1]
    below = y.min(axis=1) < -tol
    # Contact joints stay above their clearance: the ball of the foot, the knee, and the heel
    # (ankle) of a foot standing flat; a kneeling leg's tucked foot has its ankle above the ball.
    knee_clear = KNEE_CLEARANCE_M / body.scale
    for side, pose in (("L", params.left), ("R", params.right)):
        _, knee, ankle, toe = (body.index[n] for n in LEGS[side])
        ankle_clear = body.ankle_clear if pose.contact == "foot" else body.toe_clear
        for joint, c in ((knee, knee_clear), (ankle, ankle_clear), (toe, body.toe_clear)):
            below |= y[:, joint] < c - tol
    out["floor"] = below
    if params.seat_height_m is not None:
        hips = 0.5 * (y[:, body.index[LEGS["L"][0]]] + y[:, body.index[LEGS["R"][0]]])
        seat = hips * body.scale - SEAT_TO_HIP_JOINT_M
        out["seat"] = np.abs(seat - params.seat_height_m) > SEAT_TOLERANCE_M
    return out


# ---------------------------------------------------------------------------------------
# Sequences
# ---------------------------------------------------------------------------------------
STAT_KEYS = ("edits", "failed", "draws", "param_redraws", "frames_checked", "frames_rejected")


def _longest_run(valid: np.ndarray) -> slice:
    """The longest run of True in a (F,) bool array as a slice (empty when none)."""
    best, start = (0, 0), None
    for i, v in enumerate(np.append(valid, False)):
        if v and start is None:
            start = i
        elif not v and start is not None:
            best = max(best, (i - start, start))
            start = None
    return slice(best[1], best[1] + best[0])


def _edit(body: _Body, bvh: Bvh, family: str, rng, max_tries: int, stats: dict | None):
    stats = {} if stats is None else stats
    for key in STAT_KEYS:
        stats.setdefault(key, 0)
    stats["edits"] += 1
    best = None
    for _ in range(max_tries):
        params, redraws = _sample(body, family, rng)
        stats["param_redraws"] += redraws
        if params is None:
            continue
        result = _apply(body, bvh, params)
        stats["draws"] += 1
        stats["frames_checked"] += bvh.num_frames
        stats["frames_rejected"] += int((~result.valid).sum())
        for key, bad in result.violations.items():
            stats[f"rejected_{key}"] = stats.get(f"rejected_{key}", 0) + int(bad.sum())
        if result.valid.all():
            return result.positions
        if best is None or result.valid.sum() > best.valid.sum():
            best = result
    if best is None:
        stats["failed"] += 1
        return np.zeros((0, 17, 3))
    return best.positions[_longest_run(best.valid)]


def edit_sequence(
    bvh: Bvh,
    family: str,
    rng: np.random.Generator,
    scale_to_m: float | None = None,
    max_tries: int = 4,
    stats: dict | None = None,
) -> np.ndarray:
    """One edited variant of a Bandai-Namco file. -> positions (F', 17, 3) float64 metres, Y up,
    floor at y = 0, at the file's frame rate.

    family: one of FAMILIES. Up to max_tries parameter draws; the first whose frames all pass
    the checks is returned whole (F' = F); otherwise the longest run of valid frames of the best
    draw (possibly empty). stats: a dict that counts draws and rejections (STAT_KEYS, plus
    rejected_<check> frame counts). Deterministic from rng.
    """
    return _edit(_body(bvh, scale_to_m), bvh, family, rng, max_tries, stats)


def edited_sequences(
    sequences_bvh: Iterable[tuple[str, Bvh]],
    families: tuple[str, ...] = FAMILIES,
    per_source: int = 1,
    seed: int = 0,
    scale_to_m: float | None = 0.01,
    min_frames: int = 45,
    stats: dict | None = None,
) -> list[MocapSequence]:
    """Edited variants of mocap files as MocapSequence (positions (F, 17, 3) float32 metres).

    sequences_bvh: (file name, Bvh) pairs, e.g. from `mocap.iter_bandai_bvh`. Each file gives
    per_source variants of each family, named `<stem>#<family>` (`#<family>-<k>` when
    per_source > 1) with content = family and the source's dataset and style, so that
    data.splits.split_of puts each variant in its source's split. Variants shorter than min_frames
    after the checks are dropped (counted in stats["dropped"]). scale_to_m: 0.01 for
    Bandai-Namco centimetres, None to detect. Each variant depends only on (seed, file stem,
    family, k), not on the order or number of files.
    """
    stats = {} if stats is None else stats
    stats.setdefault("dropped", 0)
    out = []
    for name, bvh in sequences_bvh:
        stem = Path(name.replace("\\", "/")).name
        stem = stem[:-4] if stem.lower().endswith(".bvh") else stem
        try:
            dataset, _, style = parse_bandai_name(stem)
        except DataFormatError:
            dataset, style = "", ""
        body = _body(bvh, scale_to_m)
        for f, family in enumerate(families):
            if family not in FAMILIES:
                raise DistposeError(f"unknown pose family {family!r}: choose from {FAMILIES}")
            for k in range(per_source):
                rng = np.random.default_rng([seed, zlib.crc32(stem.encode()), f, k])
                positions = _edit(body, bvh, family, rng, 4, stats)
                if len(positions) < min_frames:
                    stats["dropped"] += 1
                    continue
                label = family if per_source == 1 else f"{family}-{k}"
                out.append(
                    MocapSequence(
                        f"{stem}{EDIT_SEPARATOR}{label}",
                        dataset,
                        family,
                        style,
                        positions.astype(np.float32),
                        bvh.fps,
                    )
                )
    return out


__all__ = [
    "EDIT_SEPARATOR",
    "EditParams",
    "EditResult",
    "FAMILIES",
    "LIMITS_DEG",
    "LegPose",
    "apply_edit",
    "edit_sequence",
    "edited_sequences",
    "joint_angles",
    "sample_params",
    "solve_seated",
]
