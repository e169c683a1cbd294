"""Root trajectory: where the root (pelvis) is in camera space in every frame, from the frame's 2D
keypoints and its lifted root-relative 3D pose, and its smoothing (causal for the live view,
centred for exports).

The lifter gives the body's shape and size (root-relative metres); the 2D gives where that
body is seen. With a pinhole of known focal length, the translation T that puts the pose where
the camera saw it solves, per seen joint j, (P_j + T)_x = r_jx (P_j + T)_z and the same for y,
r_j being the joint's image ray (x/z, y/z): linear in T, so a weighted least-squares solve in
closed form. Depth comes from the body's size against its image size, so a lifter that makes
people 5 % too small puts them 5 % too close: depth is the least certain coordinate, and it is
smoothed hardest.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from distpose_app.lens.screen import image_coordinates

from .filters import OneEuro

# Seen joints a frame needs for its translation (3 unknowns, 2 equations per joint; 3 joints
# leave one redundant equation to reject a bad joint).
MIN_JOINTS = 3


def focal_from_hfov(hfov_deg: float, width: float) -> float:
    """Focal length in pixels of a pinhole with this horizontal field of view (degrees) over an
    image `width` pixels wide."""
    return 0.5 * float(width) / math.tan(math.radians(hfov_deg) / 2.0)


def pixel_rays(keypoints_px: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Image rays of pixels: (..., 2) pixels, intrinsics (4,) fx, fy, cx, cy pixels -> (..., 2)
    (x/z, y/z) in camera axes (x right, y down, z forward). NaN stays NaN."""
    fx, fy, cx, cy = np.asarray(intrinsics, dtype=np.float64)
    px = np.asarray(keypoints_px, dtype=np.float64)
    return np.stack([(px[..., 0] - cx) / fx, (px[..., 1] - cy) / fy], axis=-1)


def screen_rays(
    keypoints_screen: np.ndarray, width: float, height: float, intrinsics: np.ndarray
) -> np.ndarray:
    """Image rays (..., 2) of the lifter's normalised screen coordinates (..., 2) (VideoPose3D:
    x/w * 2 - 1, y/w * 2 - h/w) of a width x height image with intrinsics (4,) fx, fy, cx, cy."""
    return pixel_rays(image_coordinates(keypoints_screen, width, height), intrinsics)


def hfov_intrinsics(hfov_deg: float, width: float, height: float) -> np.ndarray:
    """(4,) fx, fy, cx, cy of a square-pixel pinhole centred in the image."""
    f = focal_from_hfov(hfov_deg, width)
    return np.array([f, f, 0.5 * float(width), 0.5 * float(height)])


def _row_median(values: np.ndarray) -> np.ndarray:
    """(F, J) -> (F,) median of each row's finite values (NaN for a row with none): a sort,
    much faster than np.nanmedian on the live path's one-row calls."""
    ordered = np.sort(values, axis=1)  # NaN sorts last
    count = np.isfinite(values).sum(axis=1)
    rows = np.arange(len(values))
    low = ordered[rows, np.maximum((count - 1) // 2, 0)]
    high = ordered[rows, np.maximum(count // 2, 0)]
    return np.where(count > 0, 0.5 * (low + high), np.nan)


def solve_root_translation(
    poses: np.ndarray,
    rays: np.ndarray,
    weights: np.ndarray | None = None,
    iterations: int = 3,
    min_joints: int = MIN_JOINTS,
) -> tuple[np.ndarray, np.ndarray]:
    """The root's camera-space position in every frame.

    poses (F, J, 3) metres, root-relative (the root at the origin), camera axes; rays (F, J, 2)
    the joints' image rays (`pixel_rays`), NaN where a joint was not seen; weights (F, J) >= 0
    (e.g. 2D confidence; None: 1 for every seen joint). Per frame, T (3,) minimises
    sum_j w_j |(P_j + T)_xy - r_j (P_j + T)_z|^2 over the seen joints (linear least squares).
    `iterations` > 1 reweights the joints by their reprojection error (Cauchy weights, scale
    from the median error) so that one badly detected or badly lifted joint does not drag the
    body. Returns (T (F, 3) metres, NaN where unsolved; ok (F,) bool: at least `min_joints`
    seen joints and the body in front of the camera).
    """
    P = np.asarray(poses, dtype=np.float64)
    r = np.asarray(rays, dtype=np.float64)
    F, J = P.shape[:2]
    seen = np.isfinite(r).all(-1) & np.isfinite(P).all(-1)
    base = np.ones((F, J)) if weights is None else np.nan_to_num(np.asarray(weights, float))
    base = np.where(seen, np.clip(base, 0.0, None), 0.0)
    r = np.where(seen[..., None], r, 0.0)
    P = np.where(seen[..., None], P, 0.0)
    # Rows: T_x - r_x T_z = r_x P_z - P_x and T_y - r_y T_z = r_y P_z - P_y.
    A = np.zeros((F, J, 2, 3))
    A[..., 0, 0] = A[..., 1, 1] = 1.0
    A[..., :, 2] = -r
    b = r * P[..., 2:3] - P[..., :2]
    count = (base > 0).sum(-1)
    enough = count >= min_joints
    w = base
    T = np.full((F, 3), np.nan)
    for it in range(max(1, iterations)):
        Aw = A * w[..., None, None]
        AtA = np.einsum("fjai,fjak->fik", Aw, A)
        Atb = np.einsum("fjai,fja->fi", Aw, b)
        AtA[~enough] = np.eye(3)  # unsolvable frames: any invertible system, dropped below
        Atb[~enough] = 0.0
        T = np.linalg.solve(AtA, Atb[..., None])[..., 0]
        if it == iterations - 1:
            break
        cam = P + T[:, None, :]
        depth = np.where(cam[..., 2] > 1e-6, cam[..., 2], 1e-6)
        err = np.linalg.norm(cam[..., :2] / depth[..., None] - r, axis=-1)
        scale = _row_median(np.where(seen & (base > 0), err, np.nan))
        # 0.003 rad (2 px at a 640 px focal) keeps exact data from reweighting itself
        scale = np.maximum(np.nan_to_num(scale, nan=1.0), 0.003)
        w = base / (1.0 + (np.nan_to_num(err) / (2.0 * scale[:, None])) ** 2)
    ok = enough & np.isfinite(T).all(-1) & (T[:, 2] > 0)
    # the whole body must be in front of the camera, not only the root
    ok &= np.all(np.where(seen, P[..., 2] + T[:, None, 2] > 0, True), axis=1)
    T[~ok] = np.nan
    return T, ok


def _to_image_depth(root: np.ndarray) -> np.ndarray:
    """(F, 3) camera positions -> (F, 3) (x/z, y/z, log z): where the root is seen, and how far."""
    z = root[:, 2]
    with np.errstate(all="ignore"):
        return np.stack([root[:, 0] / z, root[:, 1] / z, np.log(z)], axis=-1)


def _from_image_depth(q: np.ndarray) -> np.ndarray:
    z = np.exp(q[:, 2])
    return np.stack([q[:, 0] * z, q[:, 1] * z, z], axis=-1)


def _local_linear_fit(
    values: np.ndarray, ok: np.ndarray, t: np.ndarray, sigma_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian-weighted (sigma_s seconds, 3 sigma wide) linear fit around every frame over the
    frames where ok: (value (F,), rate (F,) per second, weight (F,): the window's total)."""
    F = len(values)
    steps = np.diff(t)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    dt = float(np.median(steps)) if steps.size else 1.0 / 30.0
    K = max(1, int(math.ceil(3.0 * sigma_s / dt)))
    v = np.where(ok, values, 0.0)
    s0, s1, s2, y0, y1 = (np.zeros(F) for _ in range(5))
    for k in range(-K, K + 1):
        lo, hi = max(0, -k), min(F, F - k)
        if lo >= hi:
            continue
        src = slice(lo + k, hi + k)
        d = (t[src] - t[lo:hi]) / sigma_s
        w = np.exp(-0.5 * d**2) * ok[src]
        s0[lo:hi] += w
        s1[lo:hi] += w * d
        s2[lo:hi] += w * d * d
        y0[lo:hi] += w * v[src]
        y1[lo:hi] += w * d * v[src]
    det = s0 * s2 - s1 * s1
    # too few neighbours on one side for a slope (a lone frame, an isolated pair): the mean
    linear = det > 1e-3 * np.maximum(s0, 1e-12) ** 2
    safe = np.where(linear, det, 1.0)
    with np.errstate(all="ignore"):
        fit = np.where(linear, (s2 * y0 - s1 * y1) / safe, y0 / s0)
        rate = np.where(linear, (s0 * y1 - s1 * y0) / safe / sigma_s, 0.0)
    return fit, rate, s0


def local_linear_smooth(
    values: np.ndarray, ok: np.ndarray, t: np.ndarray, sigma_s: float, at: np.ndarray | None = None
) -> np.ndarray:
    """Centred smoothing in time of (F,) values by a Gaussian-weighted local linear fit over the
    frames where ok (F,) is True: a steady walk is followed without lag, also at the ends of a
    take and beside gaps, where a plain weighted mean would be pulled inwards. Evaluated at the
    frames `at` (F,) bool (default: ok); NaN elsewhere and where no ok frame is within
    3 sigma (a lone frame keeps its value)."""
    at = ok if at is None else at
    out = np.full(len(values), np.nan)
    if sigma_s <= 0:
        return np.where(ok & at, values, np.nan)
    fit, _, weight = _local_linear_fit(values, ok, t, sigma_s)
    fill = at & (weight > 1e-12)
    out[fill] = fit[fill]
    return out


def local_linear_rate(
    values: np.ndarray, ok: np.ndarray, t: np.ndarray, sigma_s: float
) -> np.ndarray:
    """Rate of change (units per second) of (F,) values at every ok frame: the slope of the
    same local linear fit as `local_linear_smooth` (less noisy than differencing the smoothed
    values). NaN where not ok; 0 where the window has no slope (a lone frame)."""
    fit, rate, weight = _local_linear_fit(values, ok, t, max(sigma_s, 1e-6))
    return np.where(ok & (weight > 1e-12), rate, np.nan)


def _running_median(values: np.ndarray, ok: np.ndarray, half: int) -> np.ndarray:
    """(F,) median over the ok frames within +-half frames (NaN where none)."""
    F = len(values)
    stack = np.full((2 * half + 1, F), np.nan)
    for i, k in enumerate(range(-half, half + 1)):
        lo, hi = max(0, -k), min(F, F - k)
        if lo < hi:
            stack[i, lo:hi] = np.where(ok[lo + k : hi + k], values[lo + k : hi + k], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN is the answer
        return np.nanmedian(stack, axis=0)


def smooth_trajectory(
    root: np.ndarray,
    timestamps_s: np.ndarray,
    valid: np.ndarray | None = None,
    image_sigma_s: float = 0.05,
    depth_sigma_s: float = 0.1,
    outlier_mads: float = 5.0,
) -> np.ndarray:
    """Offline (centred, look-ahead) smoothing of a root trajectory.

    root (F, 3) metres camera space (`solve_root_translation`); timestamps_s (F,) s; valid (F,)
    bool (default: finite frames). Smoothed as where the root is seen (x/z, y/z; Gaussian of
    `image_sigma_s`) and how far it is (log z; Gaussian of `depth_sigma_s`), so that smoothing
    the noisy depth does not move the root off its image position. Depths further than
    `outlier_mads` robust deviations from their running median are left out first. Returns
    (F, 3) metres; invalid frames NaN. A centred window has no lag.
    """
    root = np.asarray(root, dtype=np.float64)
    t = np.asarray(timestamps_s, dtype=np.float64)
    ok = np.isfinite(root).all(-1) & (root[:, 2] > 0)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    out = np.full_like(root, np.nan)
    if not ok.any():
        return out
    q = _to_image_depth(np.where(ok[:, None], root, 1.0))
    depth_ok = ok.copy()
    if outlier_mads > 0 and ok.sum() >= 5:
        steps = np.diff(t)
        steps = steps[np.isfinite(steps) & (steps > 0)]
        dt = float(np.median(steps)) if steps.size else 1.0 / 30.0
        half = max(2, int(round(depth_sigma_s / dt)))
        med = _running_median(q[:, 2], ok, half)
        dev = np.abs(q[:, 2] - med)
        mad = np.nanmedian(dev[ok])
        depth_ok &= ~(dev > outlier_mads * 1.4826 * max(mad, 1e-3))
    smoothed = np.stack(
        [
            local_linear_smooth(q[:, 0], ok, t, image_sigma_s),
            local_linear_smooth(q[:, 1], ok, t, image_sigma_s),
            local_linear_smooth(q[:, 2], depth_ok, t, depth_sigma_s, at=ok),
        ],
        axis=-1,
    )
    # a frame whose own depth was an outlier takes the smoothed depth of its neighbours
    missing = ok & ~np.isfinite(smoothed[:, 2])
    if missing.any():
        smoothed[missing, 2] = local_linear_smooth(q[:, 2], depth_ok, t, 4 * depth_sigma_s, at=ok)[
            missing
        ]
    ok &= np.isfinite(smoothed).all(-1)
    out[ok] = _from_image_depth(smoothed[ok])
    return out


class RootFilter:
    """Causal smoothing of the root for the live view: One Euro filters (no lag when moving,
    steady when still) on where the root is seen (x/z, y/z) and on log depth, the depth more
    strongly. `__call__(timestamp_s, root (3,) metres)` -> (3,) smoothed metres; a NaN root
    returns the last output (or NaN); reset() after a gap."""

    def __init__(
        self,
        image_cutoff_hz: float = 2.0,
        image_beta: float = 2.0,
        depth_cutoff_hz: float = 0.5,
        depth_beta: float = 1.0,
    ):
        self._image = OneEuro(image_cutoff_hz, image_beta)
        self._depth = OneEuro(depth_cutoff_hz, depth_beta)
        self._last = np.full(3, np.nan)

    def reset(self) -> None:
        self._image.reset()
        self._depth.reset()
        self._last = np.full(3, np.nan)

    def __call__(self, timestamp_s: float, root: np.ndarray) -> np.ndarray:
        root = np.asarray(root, dtype=np.float64)
        if not (np.isfinite(root).all() and root[2] > 0):
            return self._last.copy()
        q = _to_image_depth(root[None])[0]
        image = self._image(timestamp_s, q[:2])
        depth = self._depth(timestamp_s, q[2:])
        self._last = _from_image_depth(np.concatenate([image, depth])[None])[0]
        return self._last.copy()
