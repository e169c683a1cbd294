"""Body variety: bone-length and proportion augmentation, so the lifter learns people of many
sizes and builds rather than the few bodies in the mocap.

Bones are scaled along the kinematic tree (each joint moves with its parent, so a longer thigh
carries the shin and foot with it) and never by scaling the whole pose. The distribution
(`BodyConfig`, documented in docs/data.md): a body size factor on every bone, 85% adults
(log-normal around 1, sd 6%: about 1.50-1.95 m) and 15% children and teenagers (0.60-0.92,
with relatively shorter legs and a larger head), then per-group proportion factors (legs,
arms, trunk, neck and head, shoulder width, hip width; sd 4-6%) with a sex-linked shift of the
shoulder-to-hip width ratio (+-6%). Left and right stay symmetric.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from distpose_app.core.skeleton import NUM_JOINTS, PARENTS

# Bone groups by child joint (H36M-17): the bone from PARENTS[j] to j.
GROUPS: dict[str, tuple[int, ...]] = {
    "hip_width": (1, 4),
    "legs": (2, 3, 5, 6),
    "trunk": (7, 8),
    "head": (9, 10),
    "shoulder_width": (11, 14),
    "arms": (12, 13, 15, 16),
}
_ORDER = np.argsort([0 if p < 0 else 1 for p in PARENTS], kind="stable")  # root first


@dataclass(frozen=True)
class BodyConfig:
    """The body distribution. child_share: share of children and teenagers; adult_sd: log-sd of
    adult size; child_size: uniform range of children's size; proportion_sd: per-group sd;
    sex_width_shift: +- shift of shoulder vs hip width; child_legs, child_head: children's
    proportions at the smallest size (linear towards 1 at the largest)."""

    child_share: float = 0.15
    adult_sd: float = 0.06
    child_size: tuple[float, float] = (0.60, 0.92)
    proportion_sd: float = 0.05
    sex_width_shift: float = 0.06
    child_legs: float = 0.90
    child_head: float = 1.30

    def to_dict(self) -> dict:
        return asdict(self)


def sample_bone_factors(rng: np.random.Generator, count: int,
                        config: BodyConfig = BodyConfig()) -> np.ndarray:  # fmt: skip
    """Draw `count` bodies -> (count, 17) length factors, one per bone (by child joint; the
    root's entry is 1)."""
    child = rng.random(count) < config.child_share
    size = np.exp(rng.normal(0.0, config.adult_sd, count))
    lo, hi = config.child_size
    child_size = rng.uniform(lo, hi, count)
    size = np.where(child, child_size, size)
    youth = np.where(child, (hi - child_size) / (hi - lo), 0.0)  # 1 at the smallest child
    group = {name: np.exp(rng.normal(0.0, config.proportion_sd, count)) for name in GROUPS}
    sex = rng.choice([-1.0, 1.0], count) * config.sex_width_shift * (1.0 - youth)
    group["shoulder_width"] *= 1.0 + 0.5 * sex
    group["hip_width"] *= 1.0 - 0.5 * sex
    group["legs"] *= 1.0 + youth * (config.child_legs - 1.0)
    group["head"] *= 1.0 + youth * (config.child_head - 1.0)
    factors = np.ones((count, NUM_JOINTS))
    for name, joints in GROUPS.items():
        factors[:, list(joints)] = (size * group[name])[:, None]
    factors[:, 0] = 1.0
    return factors


def scale_bones(joints: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Scale every bone along the tree. joints (B, ..., 17, 3) any units; factors (B, 17) per bone
    (by child joint). Returns (B, ..., 17, 3): the root stays where it was, each joint sits at its
    parent's new position plus its bone vector times its factor. NaN joints stay NaN."""
    joints = np.asarray(joints, dtype=np.float64)
    factors = np.asarray(factors, dtype=np.float64)
    shape = (factors.shape[0],) + (1,) * (joints.ndim - 3)
    out = joints.copy()
    for j in _ORDER:
        p = PARENTS[j]
        if p < 0:
            continue
        f = factors[:, j].reshape(shape + (1,))
        out[..., j, :] = out[..., p, :] + f * (joints[..., j, :] - joints[..., p, :])
    return out
