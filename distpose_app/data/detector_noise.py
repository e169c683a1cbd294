"""A 2D detector-noise model fitted on real detections (Stacked Hourglass on Human3.6M), and
its vectorised sampler for training windows.

Errors are expressed in metres at the person's depth (pixel error x root depth / focal length),
so one model serves any image size, focal length and distance: multiply by `focal / depth` (the
sampler's `metres_to_px`) to get pixels again.

The model, per H36M-17 joint:
- bias (17, 2): the detector's mean offset in image axes (x right, y down). For a detector
  trained on another dataset it is mostly a difference of joint DEFINITIONS (where "thorax" or
  "head top" sit), not an error of the detector.
- a Gaussian core (std per axis) plus an outlier component (probability, isotropic std): the
  heavy tails. Outliers come in bursts (mean duration) and hold their offset for the burst.
- temporal correlation of the core: the sum of a slow and a fast AR(1) process (coefficients
  per frame at `fps`, and the slow one's share of the variance). One AR(1) does not fit real
  detections: their autocorrelation drops quickly to about 0.8 and then decays over seconds.
- left/right swaps per symmetric pair: the share of frames and the mean burst duration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from ..core.errors import DataFormatError
from ..core.skeleton import NUM_JOINTS

# The frame rate the fitted coefficients refer to: the lifter's (lifter.MODEL_FPS; data may not
# import lifter, and a checkpoint records the model's own `fps` anyway).
DEFAULT_FPS = 30.0

# MPII's 16 joints (Stacked Hourglass output order) -> H36M-17 index. Spine (7) has no detection.
MPII_TO_H36M: tuple[int, ...] = (3, 2, 1, 4, 5, 6, 0, 8, 9, 10, 16, 15, 14, 11, 12, 13)
SPINE = 7
SPINE_NEIGHBOURS = (0, 8)  # Hip and Thorax: the spine joint gets the mean of their statistics

# Symmetric (right, left) joint pairs whose detections a detector can swap.
SWAP_PAIRS: tuple[tuple[int, int], ...] = ((1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13))
SWAP_PAIR_NAMES: tuple[str, ...] = ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")
# A pair counts as swapped only where its two ground-truth joints are at least this far apart
# (metres at the person's depth): closer pairs are ambiguous and a swap there is harmless.
SWAP_MIN_SEPARATION_M = 0.10

_ACF_MAX_LAG_S = 2.0  # the autocorrelation is fitted over lags up to this (seconds)
_EM_ITERATIONS = 30
# The mixture is fitted on every 8th frame: errors 0.16 s apart at 50 fps are strongly
# correlated anyway, and the fit stays a few seconds long.
_EM_STRIDE = 8


@dataclass(frozen=True)
class DetectorNoise:
    """A fitted detector-noise model. Arrays are stored as nested tuples (frozen, JSON-able);
    the properties return numpy arrays. Lengths: metres at the person's depth; temporal
    quantities refer to frames at `fps`."""

    bias_m: tuple  # (17, 2) mean error x, y
    sigma_m: tuple  # (17, 2) core std x, y
    outlier_prob: tuple  # (17,) share of frames in the outlier component
    outlier_sigma_m: tuple  # (17,) outlier std per axis (isotropic)
    outlier_burst_frames: tuple  # (17,) mean duration of an outlier burst
    ar_slow: tuple  # (17,) AR(1) coefficient per frame of the slow component
    ar_fast: tuple  # (17,) AR(1) coefficient per frame of the fast component
    slow_share: tuple  # (17,) share of the core variance in the slow component
    swap_rate: tuple  # (6,) share of frames with the pair swapped, SWAP_PAIRS order
    swap_burst_frames: tuple  # (6,) mean duration of a swap
    swap_pairs: tuple = SWAP_PAIRS
    fps: float = DEFAULT_FPS
    source: str = ""

    _SHAPES = {
        "bias_m": (NUM_JOINTS, 2),
        "sigma_m": (NUM_JOINTS, 2),
        "outlier_prob": (NUM_JOINTS,),
        "outlier_sigma_m": (NUM_JOINTS,),
        "outlier_burst_frames": (NUM_JOINTS,),
        "ar_slow": (NUM_JOINTS,),
        "ar_fast": (NUM_JOINTS,),
        "slow_share": (NUM_JOINTS,),
    }

    def __post_init__(self):
        n_pairs = len(self.swap_pairs)
        shapes = dict(self._SHAPES, swap_rate=(n_pairs,), swap_burst_frames=(n_pairs,))
        for name, shape in shapes.items():
            value = np.asarray(getattr(self, name), dtype=float)
            if value.shape != shape or not np.all(np.isfinite(value)):
                raise DataFormatError(f"detector noise: {name} must be finite, shape {shape}")
            object.__setattr__(self, name, _to_tuple(value))
        pairs = np.asarray(self.swap_pairs, dtype=int)
        if pairs.shape != (n_pairs, 2) or pairs.min(initial=0) < 0 or pairs.max(initial=0) >= 17:
            raise DataFormatError("detector noise: swap_pairs must be (right, left) joint pairs")
        object.__setattr__(self, "swap_pairs", _to_tuple(pairs))
        for name in ("outlier_prob", "ar_slow", "ar_fast", "slow_share", "swap_rate"):
            if np.any(self.array(name) < 0) or np.any(self.array(name) >= 1.0 + 1e-9):
                raise DataFormatError(f"detector noise: {name} must lie in [0, 1)")
        for name in ("sigma_m", "outlier_sigma_m"):
            if np.any(self.array(name) < 0):
                raise DataFormatError(f"detector noise: {name} must be >= 0")
        for name in ("outlier_burst_frames", "swap_burst_frames"):
            if np.any(self.array(name) < 1):
                raise DataFormatError(f"detector noise: {name} must be >= 1 frame")
        if not self.fps > 0:
            raise DataFormatError("detector noise: fps must be positive")

    def array(self, name: str) -> np.ndarray:
        """One field as a float numpy array."""
        return np.asarray(getattr(self, name), dtype=float)

    def to_dict(self) -> dict:
        """JSON-able dict (lists and floats): for checkpoint metadata."""
        out = asdict(self)
        return {k: (_to_list(v) if isinstance(v, tuple) else v) for k, v in out.items()}

    @classmethod
    def from_dict(cls, d: dict) -> DetectorNoise:
        """Inverse of to_dict; unknown keys are refused (a typo must not pass silently)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise DataFormatError(f"detector noise: unknown keys {sorted(unknown)}")
        return cls(**d)

    def at_fps(self, fps: float) -> DetectorNoise:
        """The same process sampled at another frame rate (coefficients and durations)."""
        ratio = self.fps / float(fps)
        return DetectorNoise(
            **{
                **asdict(self),
                "ar_slow": self.array("ar_slow") ** ratio,
                "ar_fast": self.array("ar_fast") ** ratio,
                "outlier_burst_frames": np.maximum(self.array("outlier_burst_frames") / ratio, 1),
                "swap_burst_frames": np.maximum(self.array("swap_burst_frames") / ratio, 1),
                "fps": float(fps),
            }
        )

    def markdown_table(self) -> str:
        """Per-joint figures in millimetres (the docs' table)."""
        from ..core.skeleton import JOINT_NAMES

        b, s = self.array("bias_m") * 1000, self.array("sigma_m") * 1000
        rows = [
            "| joint | bias x, y mm | std x, y mm | outliers % | outlier std mm | outlier burst "
            "frames | AR slow, fast | slow share |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for j, name in enumerate(JOINT_NAMES):
            rows.append(
                f"| {name} | {b[j, 0]:+.0f}, {b[j, 1]:+.0f} | {s[j, 0]:.0f}, {s[j, 1]:.0f} | "
                f"{100 * self.outlier_prob[j]:.1f} | {1000 * self.outlier_sigma_m[j]:.0f} | "
                f"{self.outlier_burst_frames[j]:.1f} | {self.ar_slow[j]:.3f}, "
                f"{self.ar_fast[j]:.2f} | {self.slow_share[j]:.2f} |"
            )
        rows += ["", "| pair | swapped frames % | mean swap frames |", "|---|---|---|"]
        for name, rate, burst in zip(SWAP_PAIR_NAMES, self.swap_rate, self.swap_burst_frames):
            rows.append(f"| {name} | {100 * rate:.2f} | {burst:.1f} |")
        return "\n".join(rows)


def _to_tuple(a: np.ndarray):
    return tuple(_to_tuple(x) for x in a) if a.ndim else a.item()


def _to_list(t):
    return [_to_list(x) for x in t] if isinstance(t, tuple) else t


# ---------------------------------------------------------------------------------------
# Fitting
# ---------------------------------------------------------------------------------------
def project_h36m_lens(
    points_cam: np.ndarray, f: np.ndarray, c: np.ndarray, k: np.ndarray, p: np.ndarray
) -> np.ndarray:
    """Camera-frame points (..., 3) metres -> pixels (..., 2) through Human3.6M's calibrated
    lens in ITS OWN convention (as 3d-pose-baseline's project_point_radial): radial k1 k2 k3,
    and tangential x' = x (radial + p1 y + p2 x) + p2 r², y' = y (radial + p1 y + p2 x) + p1 r²,
    which is not OpenCV's 2 p1 x y + p2 (r² + 2 x²). The detections were made on the real,
    distorted images, so the fit compares them with this projection."""
    xy = points_cam[..., :2] / points_cam[..., 2:]
    r2 = np.sum(xy**2, axis=-1, keepdims=True)
    radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tangential = p[0] * xy[..., 1:] + p[1] * xy[..., :1]
    xy = xy * (radial + tangential) + np.array([p[1], p[0]]) * r2
    return xy * f + c


def undistort_h36m_lens(
    pixels: np.ndarray,
    f: np.ndarray,
    c: np.ndarray,
    k: np.ndarray,
    p: np.ndarray,
    iterations: int = 20,
) -> np.ndarray:
    """Inverse of `project_h36m_lens` on the image: distorted pixels (..., 2) -> the pixels an
    ideal pinhole with the same f and c would see (fixed-point iteration; Human3.6M's lenses are
    mild: the round trip is well under 0.01 px inside the image). NaN stays NaN."""
    xd = (np.asarray(pixels, dtype=float) - c) / f
    xy = xd.copy()
    for _ in range(iterations):
        r2 = np.sum(xy**2, axis=-1, keepdims=True)
        radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
        tangential = p[0] * xy[..., 1:] + p[1] * xy[..., :1]
        xy = (xd - np.array([p[1], p[0]]) * r2) / (radial + tangential)
    return xy * f + c


def check_detected_subjects(path: str | Path, subjects) -> list[str]:
    """Raise DataFormatError unless every one of `subjects` (names such as "S1"; None: any)
    has detections in the Human3.6M file at `path`; returns the subjects that do."""
    with np.load(path, allow_pickle=False) as d:
        if "sh_sequence" not in d.files or "subject" not in d.files:
            raise DataFormatError(f"{path}: no detections (no sh_sequence)")
        return _require_detected(path, d["subject"], d["sh_sequence"], subjects)


def _require_detected(path, subject: np.ndarray, sh_seq: np.ndarray, subjects) -> list[str]:
    """`check_detected_subjects` on the file's arrays: subject (S,) per sequence, sh_seq (M,)
    the sequence of each detection sequence."""
    detected = sorted({f"S{int(subject[s])}" for s in sh_seq}, key=lambda n: int(n[1:]))
    absent = sorted(set(subjects or ()) - set(detected))
    if absent:  # one silently dropped subject would leave the run on fewer people than asked
        raise DataFormatError(f"{path}: no detections of {', '.join(absent)} (detections "
                              f"of {', '.join(detected) or 'nobody'})")  # fmt: skip
    return detected


def _load_detection_errors(path: str | Path, subjects=None):
    """Ground truth and detections of every detection sequence (of `subjects` only, names
    such as "S1", when given), in metres at the root depth.

    Returns gt (R, 17, 2), det (R, 17, 2) (Spine NaN), segment lengths, and the file's fps."""
    with np.load(path, allow_pickle=False) as d:
        need = ("world_3d", "sequence", "subject", "camera_subject", "camera_id", "camera_R",
                "camera_T", "camera_f", "camera_c", "camera_k", "camera_p", "sh_sequence",
                "sh_camera", "sh_start", "sh_keypoints")  # fmt: skip
        missing = [key for key in need if key not in d.files]
        if missing:
            raise DataFormatError(f"{path}: no detections to fit (missing {missing})")
        world, sequence = d["world_3d"], d["sequence"]
        subject, cam_subject, cam_id = d["subject"], d["camera_subject"], d["camera_id"]
        cam = {key: d[f"camera_{key}"].astype(float) for key in "RTfckp"}
        sh_seq, sh_cam, sh_start = d["sh_sequence"], d["sh_camera"], d["sh_start"]
        keypoints = d["sh_keypoints"]
        fps = float(d["fps"]) if "fps" in d.files else 50.0
    _require_detected(path, subject, sh_seq, subjects)
    order = np.argsort(sequence, kind="stable")
    first = np.searchsorted(sequence[order], np.arange(len(subject) + 1))
    gts, dets, lengths = [], [], []
    for m, s in enumerate(sh_seq):
        if subjects is not None and f"S{int(subject[s])}" not in subjects:
            continue
        match = np.flatnonzero((cam_subject == subject[s]) & (cam_id == sh_cam[m]))
        if len(match) != 1:
            raise DataFormatError(f"{path}: no unique camera {sh_cam[m]} for sequence {s}")
        ci = match[0]
        rows = order[first[s] : first[s + 1]]
        n = min(len(rows), int(sh_start[m + 1] - sh_start[m]))
        if n < 2:
            continue
        x_cam = (world[rows[:n]].astype(float) - cam["T"][ci]) @ cam["R"][ci].T
        gt = project_h36m_lens(x_cam, cam["f"][ci], cam["c"][ci], cam["k"][ci], cam["p"][ci])
        det = np.full((n, NUM_JOINTS, 2), np.nan)
        det[:, list(MPII_TO_H36M)] = keypoints[sh_start[m] : sh_start[m] + n]
        to_metres = x_cam[:, 0, 2] / cam["f"][ci].mean()  # root depth / focal: m per px
        gts.append(gt * to_metres[:, None, None])
        dets.append(det * to_metres[:, None, None])
        lengths.append(n)
    if not lengths:
        among = f" of {', '.join(sorted(subjects))}" if subjects is not None else ""
        raise DataFormatError(f"{path}: no detection sequence{among} matches the ground truth")
    return np.concatenate(gts), np.concatenate(dets), np.array(lengths), fps


def undo_swaps(det: np.ndarray, swapped: np.ndarray) -> np.ndarray:
    """det (R, 17, 2) with each pair of SWAP_PAIRS exchanged back where swapped (R, pairs) is
    True (`_detect_swaps`); a new array."""
    det = det.copy()
    for p, (a, b) in enumerate(SWAP_PAIRS):
        rows = swapped[:, p]
        det[rows, a], det[rows, b] = det[rows, b], det[rows, a].copy()
    return det


def _run_starts(flags: np.ndarray, segment_start: np.ndarray) -> np.ndarray:
    """Count of runs of True along axis 0, runs cut at segment starts. flags (R, ...) bool."""
    previous = np.zeros_like(flags)
    previous[1:] = flags[:-1]
    previous[segment_start] = False
    return np.sum(flags & ~previous, axis=0)


def _detect_swaps(gt, det, segment_start):
    """Per pair: swapped flags (R, P) (detections closer to the swapped ground truth) among
    frames whose pair is at least SWAP_MIN_SEPARATION_M apart, and the eligible flags."""
    swapped, eligible = [], []
    for a, b in SWAP_PAIRS:
        straight = np.linalg.norm(det[:, a] - gt[:, a], axis=-1) + np.linalg.norm(
            det[:, b] - gt[:, b], axis=-1
        )
        crossed = np.linalg.norm(det[:, a] - gt[:, b], axis=-1) + np.linalg.norm(
            det[:, b] - gt[:, a], axis=-1
        )
        ok = np.linalg.norm(gt[:, a] - gt[:, b], axis=-1) >= SWAP_MIN_SEPARATION_M
        ok &= np.isfinite(straight) & np.isfinite(crossed)
        eligible.append(ok)
        swapped.append(ok & (crossed < straight))
    return np.stack(swapped, 1), np.stack(eligible, 1)


def _log_odds_outlier(x, sigma, prob, so):
    """Log odds that centred residuals x (n, J, 2) belong to the outlier component."""
    log_core = -0.5 * np.sum((x / sigma) ** 2, -1) - np.log(2 * np.pi * sigma.prod(-1))
    log_out = -0.5 * np.sum(x**2, -1) / so**2 - np.log(2 * np.pi * so**2)
    return np.log(prob) + log_out - np.log1p(-prob) - log_core


def _outlier_responsibility(residual, mu, sigma, prob, so):
    logit = _log_odds_outlier(residual - mu, sigma, prob, so)
    return 1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50)))


def _fit_mixture(residual: np.ndarray):
    """EM per joint for a core N(mu, diag(sx², sy²)) plus an outlier N(mu, so² I) component.
    residual (n, J, 2) without NaN. Returns mu (J, 2), core sigma (J, 2), outlier prob (J,),
    outlier sigma (J,)."""
    mu = np.median(residual, axis=0)
    sigma = 1.4826 * np.median(np.abs(residual - mu), axis=0) + 1e-6
    so = 5 * sigma.mean(-1)
    prob = np.full(residual.shape[1], 0.05)
    for _ in range(_EM_ITERATIONS):
        x = residual - mu
        resp = _outlier_responsibility(residual, mu, sigma, prob, so)
        core_w = 1.0 - resp
        mu = np.sum(core_w[..., None] * residual, 0) / np.sum(core_w, 0)[:, None]
        sigma = np.sqrt(np.sum(core_w[..., None] * x**2, 0) / np.sum(core_w, 0)[:, None]) + 1e-6
        so = np.sqrt(np.sum(resp * np.sum(x**2, -1), 0) / (2 * np.sum(resp, 0) + 1e-12)) + 1e-6
        prob = np.clip(resp.mean(0), 1e-5, 0.5)
    return mu, sigma, prob, so


def _autocorrelation(x: np.ndarray, mask: np.ndarray, lengths: np.ndarray, max_lag: int):
    """Pooled autocorrelation (max_lag+1, C) of x (R, C) over segments, using only pairs of
    frames where mask (R, C) is True (the core: outliers and missing frames left out). Each
    segment's masked mean is removed first."""
    num = np.zeros((max_lag + 1,) + x.shape[1:])
    pairs = np.zeros_like(num)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    for s, e in zip(offsets[:-1], offsets[1:]):
        m = mask[s:e].astype(float)
        seg = x[s:e] - np.sum(m * x[s:e], 0) / np.maximum(m.sum(0), 1)
        seg = np.where(mask[s:e], seg, 0.0)
        size = 1 << int(np.ceil(np.log2(2 * len(seg))))
        lag_n = min(max_lag + 1, len(seg))
        for values, target in ((seg, num), (m, pairs)):
            spec = np.fft.rfft(values, size, axis=0)
            target[:lag_n] += np.fft.irfft(spec * np.conj(spec), size, axis=0)[:lag_n]
    cov = num / np.maximum(pairs, 1.0)
    return cov / cov[:1]


def _fit_two_ar(acf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit acf[lag] ~ w a^lag + (1 - w) b^lag per column by grid search over a > b (least
    squares in w for each pair). acf (L+1, J). Returns a, b, w (J,) per source frame."""
    lags = np.arange(acf.shape[0])[:, None]
    a_grid = 1 - np.geomspace(1e-4, 0.3, 80)
    b_grid = np.linspace(0.0, 0.95, 60)
    best = (np.full(acf.shape[1], np.inf), np.zeros(acf.shape[1]), np.zeros(acf.shape[1]),
            np.zeros(acf.shape[1]))  # fmt: skip
    for a in a_grid:
        for b in b_grid[b_grid < a]:
            ua, ub = a**lags, b**lags  # (L+1, 1)
            d = ua - ub
            w = np.clip(np.sum(d * (acf - ub), 0) / max(np.sum(d * d), 1e-12), 0, 1)
            err = np.sum((ub + w * d - acf) ** 2, 0)
            better = err < best[0]
            best = (np.where(better, err, best[0]), np.where(better, a, best[1]),
                    np.where(better, b, best[2]), np.where(better, w, best[3]))  # fmt: skip
    return best[1], best[2], best[3]


def _mean_burst(flags: np.ndarray, segment_start: np.ndarray) -> np.ndarray:
    """Mean run length (frames) of True per column; 1 where there is none."""
    runs = _run_starts(flags, segment_start)
    return np.where(runs > 0, flags.sum(0) / np.maximum(runs, 1), 1.0)


def fit_detector_noise(h36m_npz_path: str | Path, fps: float = DEFAULT_FPS) -> DetectorNoise:
    """Fit the model on the Stacked Hourglass detections of a Human3.6M training file (keys as in
    the data README: world_3d, cameras, sh_*) against its ground truth projected through each
    camera's calibrated lens. Coefficients are returned per frame at `fps`."""
    gt, det, lengths, src_fps = _load_detection_errors(h36m_npz_path)
    segment_start = np.concatenate([[0], np.cumsum(lengths)[:-1]])

    # 1. Swaps, then compare each swapped pair with its swapped ground truth (the noise model
    #    describes errors after the swap).
    swapped, eligible = _detect_swaps(gt, det, segment_start)
    swap_rate = swapped.sum(0) / np.maximum(eligible.sum(0), 1)
    swap_burst = _mean_burst(swapped, segment_start)
    error = undo_swaps(det, swapped) - gt  # (R, 17, 2), Spine NaN

    # 2. Bias, core and outliers (every frame; the joints with a detection).
    seen = [j for j in range(NUM_JOINTS) if j != SPINE]
    valid = np.all(np.isfinite(error[:, seen]), axis=(1, 2))
    res = error[:, seen]
    mu, sigma, prob, so = _fit_mixture(res[valid][::_EM_STRIDE])
    outlier = np.zeros((len(res), len(seen)), bool)
    outlier[valid] = _outlier_responsibility(res[valid], mu, sigma, prob, so) > 0.5
    outlier_burst = _mean_burst(outlier, segment_start)

    # 3. Temporal correlation of the core (outlier frames left out).
    core = np.where(valid[:, None, None], res - mu, 0.0).reshape(len(res), -1)
    core_mask = np.repeat(valid[:, None] & ~outlier, 2, axis=1)
    max_lag = int(round(_ACF_MAX_LAG_S * src_fps))
    acf = _autocorrelation(core, core_mask, lengths, max_lag)
    a, b, w = _fit_two_ar(acf.reshape(max_lag + 1, len(seen), 2).mean(-1))

    fitted = {
        "bias_m": mu, "sigma_m": sigma, "outlier_prob": prob, "outlier_sigma_m": so,
        "outlier_burst_frames": outlier_burst, "ar_slow": a, "ar_fast": b, "slow_share": w,
    }  # fmt: skip
    out = {}
    for name, value in fitted.items():  # Spine: the mean of its neighbours' statistics
        full = np.zeros((NUM_JOINTS,) + value.shape[1:])
        full[seen] = value
        full[SPINE] = np.mean([full[j] for j in SPINE_NEIGHBOURS], axis=0)
        out[name] = full
    n_frames = int(valid.sum())
    model = DetectorNoise(
        **out,
        swap_rate=swap_rate,
        swap_burst_frames=swap_burst,
        fps=src_fps,
        source=f"fitted on {n_frames} detected frames ({len(lengths)} sequences) of "
        f"{Path(h36m_npz_path).name}",
    )
    return model.at_fps(fps)


# ---------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------
def _bursts(rng: np.random.Generator, prob: np.ndarray, burst: np.ndarray, shape_bl, tail):
    """Two-state Markov chain along axis 1 with stationary share `prob` and mean run `burst`
    frames (both broadcast to tail). Returns (B, L) + tail bool."""
    b, length = shape_bl
    leave = (1.0 / np.maximum(burst, 1.0)).astype(np.float32)
    enter = np.clip(prob / np.maximum(1.0 - prob, 1e-9) * leave, 0.0, 1.0).astype(np.float32)
    on = np.empty((b, length) + tail, bool)
    u = rng.random((b, length) + tail, dtype=np.float32)
    state = u[:, 0] < prob
    on[:, 0] = state
    for t in range(1, length):
        state = np.where(state, u[:, t] >= leave, u[:, t] < enter)
        on[:, t] = state
    return on


def sample_noise(
    model: DetectorNoise,
    rng: np.random.Generator,
    shape_BL: tuple[int, int],
    metres_to_px,
    scale: float = 1.0,
    bias: bool | str = True,
    fps: float | None = None,
) -> np.ndarray:
    """Pixel offsets (B, L, 17, 2) float32 to add to clean 2D keypoints of B windows of L frames.

    metres_to_px (B, L) or (B, 1): focal length (px) / root depth (m) of each frame.
    scale multiplies the core and outlier spreads (not the bias): 1 is Stacked Hourglass on
    Human3.6M. bias: True adds the fitted bias, False none, "random" a per-window constant offset
    per joint with the fitted bias's magnitude in a uniformly random direction (another lab's
    joint definitions). fps: the windows' frame rate (default the model's).
    Temporal structure: slow + fast stationary AR(1) core along L; outliers come in bursts
    (a two-state Markov chain) and hold one offset per burst.
    """
    b, length = (int(v) for v in shape_BL)
    if fps is not None and abs(fps - model.fps) > 1e-9:
        model = model.at_fps(fps)
    m2px = np.asarray(metres_to_px, dtype=np.float32)
    if m2px.ndim != 2 or m2px.shape[0] != b or m2px.shape[1] not in (1, length):
        raise ValueError(f"metres_to_px must be (B, L) or (B, 1), got {m2px.shape}")
    if bias not in (True, False, "random"):
        raise ValueError(f"bias must be True, False or 'random', got {bias!r}")

    def param(name: str) -> np.ndarray:
        return model.array(name).astype(np.float32)

    phi_slow, phi_fast = param("ar_slow")[:, None], param("ar_fast")[:, None]
    keep_slow, keep_fast = np.sqrt(1 - phi_slow**2), np.sqrt(1 - phi_fast**2)
    share = param("slow_share")[:, None]
    gain_slow = np.float32(scale) * np.sqrt(share) * param("sigma_m")
    gain_fast = np.float32(scale) * np.sqrt(1 - share) * param("sigma_m")
    out_on = _bursts(rng, model.array("outlier_prob"), model.array("outlier_burst_frames"),
                     (b, length), (NUM_JOINTS,))  # fmt: skip
    # One outlier offset per burst: drawn where a burst starts, held while it lasts.
    starts = out_on.copy()
    starts[:, 1:] &= ~out_on[:, :-1]
    draws = np.zeros((b, length, NUM_JOINTS, 2), np.float32)
    joint = np.nonzero(starts)[2]
    draws[starts] = rng.standard_normal((len(joint), 2), dtype=np.float32) * (
        np.float32(scale) * param("outlier_sigma_m")[joint, None]
    )
    z = rng.standard_normal((2, b, length, NUM_JOINTS, 2), dtype=np.float32)
    slow, fast, held = z[0, :, 0], z[1, :, 0], draws[:, 0]
    error = np.empty((b, length, NUM_JOINTS, 2), np.float32)
    for t in range(length):
        if t:
            slow = phi_slow * slow + keep_slow * z[0, :, t]
            fast = phi_fast * fast + keep_fast * z[1, :, t]
            held = np.where(starts[:, t, :, None], draws[:, t], held)
        error[:, t] = np.where(out_on[:, t, :, None], held, gain_slow * slow + gain_fast * fast)
    if bias is True:
        error += param("bias_m")
    elif bias == "random":
        angle = rng.uniform(0, 2 * np.pi, (b, 1, NUM_JOINTS)).astype(np.float32)
        magnitude = np.linalg.norm(param("bias_m"), axis=-1)[:, None]
        error += magnitude * np.stack([np.cos(angle), np.sin(angle)], -1)
    error *= m2px[:, :, None, None]
    return error


def apply_swaps(
    model: DetectorNoise,
    rng: np.random.Generator,
    keypoints: np.ndarray,
    rate_scale: float = 1.0,
    fps: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Swap left/right pairs of keypoints (B, L, 17, D) in short bursts, each pair with the
    model's share of frames (times rate_scale) and mean burst duration. Returns the swapped
    copy and the swap flags (B, L, P) per pair (SWAP_PAIRS order). Apply before the noise."""
    keypoints = np.asarray(keypoints)
    if fps is not None and abs(fps - model.fps) > 1e-9:
        model = model.at_fps(fps)
    b, length = keypoints.shape[:2]
    rate = np.clip(model.array("swap_rate") * rate_scale, 0.0, 0.5)
    on = _bursts(rng, rate, model.array("swap_burst_frames"), (b, length), (len(rate),))
    out = keypoints.copy()
    for p, (right, left) in enumerate(model.swap_pairs):
        flag = on[:, :, p, None]
        out[:, :, right] = np.where(flag, keypoints[:, :, left], keypoints[:, :, right])
        out[:, :, left] = np.where(flag, keypoints[:, :, right], keypoints[:, :, left])
    return out, on


# The training batch's noise size is drawn per window from 0 to NOISE_SPREAD x its scale.
NOISE_SPREAD = 1.5


class DetectorNoiseSampler:
    """Adds a fitted noise model (`DetectorNoise.to_dict` form) to a training batch: callable
    (rng, px (B, L, 17, 2) pixels, metres_to_px (B, L) pixels per metre at the person's depth)
    -> noisy px. With a `residual_noise.ResidualBank`, a `residual_share` of the windows get
    a window of real detection residuals instead of the model's positional error."""

    def __init__(self, model: dict, scale: float, bias: str, bank=None,
                 residual_share: float = 0.0):  # fmt: skip
        self.model = DetectorNoise.from_dict(model)
        self.scale, self.bias = scale, bias
        self.bank, self.residual_share = bank, residual_share

    def __call__(self, rng, px, metres_to_px):
        # Left/right swaps first (a detector labels the wrong limb), then the positional error,
        # its size drawn per window from 0 to NOISE_SPREAD x scale: from clean 2D (motion
        # capture, a good detector) to a poor detector on a hard frame.
        swapped, _ = apply_swaps(self.model, rng, px)
        bias = {"fitted": True, "none": False, "random": "random"}[self.bias]
        offsets = sample_noise(self.model, rng, px.shape[:2], metres_to_px,
                               scale=1.0, bias=bias)  # fmt: skip
        size = rng.uniform(0.0, NOISE_SPREAD * self.scale, (len(px), 1, 1, 1))
        noisy = swapped + size * offsets
        if self.bank is None or self.residual_share <= 0:
            return noisy
        # Real residuals at the detector's own size (times `scale`), in pixels of this window.
        real = rng.random(len(px)) < self.residual_share
        if real.any():
            b, length = int(real.sum()), px.shape[1]
            to_px = np.broadcast_to(np.asarray(metres_to_px), px.shape[:2])[real]
            residual = self.bank.sample(rng, b, length) * to_px[..., None, None]
            noisy[real] = swapped[real] + self.scale * residual
        return noisy
