"""Pose-error metrics. Every function takes arrays in one unit (metres or millimetres) and
returns the error in that same unit; `distpose evaluate` feeds metres and reports mm.

Shapes: poses are (..., J, 3); the leading axes are frames (and batches). Means are taken over
every joint of every frame, as in Human3.6M practice (VideoPose3D's `common/loss.py`).
"""

from __future__ import annotations

import numpy as np

from distpose_app.core.skeleton import SYMMETRIC_BONE_PAIRS, bone_lengths


def mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """Mean per-joint position error: mean Euclidean distance. (..., J, 3) x2 -> scalar."""
    predicted, target = np.asarray(predicted), np.asarray(target)
    if predicted.shape != target.shape:
        raise ValueError(f"shape mismatch: {predicted.shape} vs {target.shape}")
    return float(np.mean(np.linalg.norm(predicted - target, axis=-1)))


def n_mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """MPJPE after the per-frame least-squares scale of `predicted` onto `target` (Rhodin et al.).

    Shapes (..., J, 3). The scale s = <p, t> / <p, p> is computed per frame over all joints.
    """
    predicted, target = np.asarray(predicted, float), np.asarray(target, float)
    num = np.sum(predicted * target, axis=(-2, -1), keepdims=True)
    den = np.sum(predicted * predicted, axis=(-2, -1), keepdims=True)
    scale = num / np.maximum(den, 1e-12)
    return mpjpe(scale * predicted, target)


def procrustes_align(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame similarity transform (rotation, uniform scale, translation) of `predicted`
    onto `target` that minimises the squared error (Umeyama). (..., J, 3) -> (..., J, 3)."""
    predicted, target = np.asarray(predicted, float), np.asarray(target, float)
    mu_p = predicted.mean(axis=-2, keepdims=True)
    mu_t = target.mean(axis=-2, keepdims=True)
    p0, t0 = predicted - mu_p, target - mu_t
    norm_p = np.sqrt(np.sum(p0**2, axis=(-2, -1), keepdims=True))
    norm_t = np.sqrt(np.sum(t0**2, axis=(-2, -1), keepdims=True))
    p0 = p0 / np.maximum(norm_p, 1e-12)
    t0 = t0 / np.maximum(norm_t, 1e-12)
    h = np.swapaxes(p0, -1, -2) @ t0  # (..., 3, 3)
    u, s, vt = np.linalg.svd(h)
    v = np.swapaxes(vt, -1, -2)
    r = v @ np.swapaxes(u, -1, -2)
    # Forbid reflections: flip the last singular direction where det(R) < 0.
    sign = np.sign(np.linalg.det(r))[..., None]
    v[..., :, -1] *= sign
    s[..., -1] *= sign[..., 0]
    r = v @ np.swapaxes(u, -1, -2)
    scale = (np.sum(s, axis=-1)[..., None, None]) * norm_t / np.maximum(norm_p, 1e-12)
    return scale * (predicted - mu_p) @ np.swapaxes(r, -1, -2) + mu_t


def p_mpjpe(predicted: np.ndarray, target: np.ndarray) -> float:
    """MPJPE after per-frame Procrustes alignment (rotation, scale, translation)."""
    return mpjpe(procrustes_align(predicted, target), np.asarray(target, float))


def mpjve(predicted: np.ndarray, target: np.ndarray, axis: int = -3) -> float:
    """Mean per-joint velocity error: MPJPE of the first differences along the time axis.

    Shapes (T, J, 3) (time on `axis`, default the one before joints). Units per frame.
    """
    return mpjpe(np.diff(predicted, axis=axis), np.diff(target, axis=axis))


def bone_symmetry_error(positions: np.ndarray) -> float:
    """Mean |left - right| bone length over the symmetric pairs and all frames.

    (..., 17, 3) -> scalar, same units. Zero for a left/right-symmetric skeleton.
    """
    lengths = bone_lengths(np.asarray(positions, float))
    left = lengths[..., [a for a, _ in SYMMETRIC_BONE_PAIRS]]
    right = lengths[..., [b for _, b in SYMMETRIC_BONE_PAIRS]]
    return float(np.mean(np.abs(left - right)))


def bone_consistency(positions: np.ndarray) -> float:
    """Mean over bones of each bone's length standard deviation over time.

    (T, 17, 3) -> scalar in the input's units. Zero for a rigid skeleton.
    """
    lengths = bone_lengths(np.asarray(positions, float))
    return float(np.mean(np.std(lengths, axis=0)))


def bone_consistency_ratio(positions: np.ndarray) -> float:
    """Mean over bones of (std over time / mean over time) of the bone length: dimensionless,
    multiply by 100 for percent. (T, 17, 3) -> scalar."""
    lengths = bone_lengths(np.asarray(positions, float))
    return float(np.mean(np.std(lengths, axis=0) / np.maximum(np.mean(lengths, axis=0), 1e-12)))


def mean_joint_acceleration(positions: np.ndarray, fps: float) -> float:
    """Jitter: mean norm of the second time difference, (T, J, 3) units -> units/s^2."""
    acc = np.diff(np.asarray(positions, float), n=2, axis=0) * fps**2
    return float(np.mean(np.linalg.norm(acc, axis=-1)))
