"""Lens-space self-supervised adaptation ("lens ISO"): a radial undistortion fitted in front of
the frozen lifter, accepted only on evidence.

Weight-space ISO (`adapt.iso`) moves the lifter's weights; it cannot see a lens. Here the lifter
stays frozen and the k1 of a radial undistortion (`lifter.model.undistort_screen`, the model's
`input_lens`) is fitted to the unlabelled 2D buffer, in normalised screen coordinates
(principal point at the image centre):

    u = d * g(k1, r),  g = 1 + k1 r^2 (k1 >= 0),  1 / (1 - k1 r^2) (k1 < 0, without folding)

The signal is reprojection: lift u to root-relative 3D P, fit each frame's root translation T in
closed form so that the pinhole f (P + T)_xy / (P + T)_z matches u, and score what is left
relative to the 2D pose's size. The lifter only outputs plausible bodies, so 2D that no body
explains (a lens) leaves a residual. A frame whose residual exceeds `residual_cap` (a detector
failure: a limb swapped or lost) counts as the cap, so that one bad frame cannot decide the fit.

The work is fixed: a grid over k1 (forward passes only), then a golden-section refinement of a
fixed number of steps, on a fixed set of frames. The same buffer gives the same lens on an idle
or a loaded machine; `max_seconds` is only a safety net (hitting it changes nothing and says so).

A fit is accepted only when the buffer supports it (`LensAdaptResult.evidence`):
- coverage: the person reached far enough from the image centre (a lens shows only there);
- the objective falls at the fitted lens by more than `min_improvement`, and in each half of
  the buffer;
- the fitted k1 is away from the search bounds, and its interval over block-bootstrap
  resamples of the frames (5-95%) excludes "no lens" by more than the bias's own spread
  between data sets (`k1_offset_spread`);
- no shift of the picture's centre explains the 2D better than the lens (a cropped or pasted
  picture pulls the fit; not tried on a camera's whole picture, `adapt_model(whole_picture=)`);
- the lens is a barrel correction (k1 > 0) unless `allow_pincushion`, does not fold the image,
  and the lifted skeleton is not clearly less consistent with it (left/right bone symmetry
  worse by more than 10% of its own figure, bone-length constancy over time by more than 15%,
  or either by 0.5 mm, whichever is larger; a lens the picture shows: 10% for both).
Every refusal names its reason in plain words (`LensAdaptResult.reason`).

When frames of the camera's own picture come with the buffer (`pictures`), the straight edges
in them are measured first (`lens.plumb_line`): a signal that does not pass through the
lifter, and on real footage a much sharper one (docs/adaptation.md). When they determine the
lens, it decides: a barrel lens they show is fitted from them (still subject to the pincushion
rule and the skeleton check), and when they show none nothing is adapted, whatever the 2D
objective says. When they do not determine it (too few long straight edges), the 2D objective
decides as above.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from distpose_app.core import metrics
from distpose_app.core.errors import DistposeError
from distpose_app.core.skeleton import NUM_JOINTS
from distpose_app.lens.plumb_line import LineConfig, estimate_lens_from_lines
from distpose_app.lifter.inference import edge_padded, lift_sequence
from distpose_app.lifter.model import undistort_screen  # the input lens the model itself applies

#: Bounds of the searched k1 (normalised screen units, the objective's coordinates): beyond them
#: a fit is not a lens. Barrel undistortion (k1 > 0) reaches further: the strongest barrel
#: evaluated (brown:-0.6,0.25 at 90 degrees) needs about +1.1.
K1_RANGE = (-1.0, 1.5)
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass
class ScreenLens:
    """A radial undistortion in normalised screen coordinates (see the module docstring and
    `undistort_screen`). k1, k2: radial coefficients (per screen unit^2, ^4); scale: factor;
    cx, cy: centre. Adaptation fits k1 only; the rest is the model buffer's full form."""

    k1: float = 0.0
    k2: float = 0.0
    scale: float = 1.0
    cx: float = 0.0
    cy: float = 0.0

    def params_tensor(self, dtype=torch.float32) -> torch.Tensor:
        """(5,) k1, k2, log(scale), cx, cy: the argument of `undistort_screen`."""
        return torch.tensor([self.k1, self.k2, math.log(self.scale), self.cx, self.cy], dtype=dtype)

    @classmethod
    def from_params(cls, params) -> ScreenLens:
        """Inverse of `params_tensor` ((5,) tensor or sequence)."""
        k1, k2, log_s, cx, cy = (float(v) for v in params)
        return cls(k1, k2, math.exp(log_s), cx, cy)

    def undistort(self, keypoints: np.ndarray) -> np.ndarray:
        """keypoints (..., 17, 2) normalised screen coordinates, NaN kept -> same shape float32."""
        kp = np.asarray(keypoints, dtype=np.float64)
        if kp.shape[-1] != 2:
            raise DistposeError(f"keypoints must end in 2 coordinates, got shape {kp.shape}")
        out = undistort_screen(torch.from_numpy(kp), self.params_tensor(torch.float64))
        return out.numpy().astype(np.float32)

    @property
    def is_identity(self) -> bool:
        return self.k1 == 0 and self.k2 == 0 and self.scale == 1 and self.cx == 0 and self.cy == 0

    def radial_slope(self, r: np.ndarray) -> np.ndarray:
        """d r_u / d r at distances r (from the centre, screen units): > 0 means monotonic."""
        r2 = np.asarray(r, float) ** 2
        if self.k1 >= 0:
            radial = 1.0 + 3.0 * self.k1 * r2
        else:  # d/dr [r / (1 - k1 r^2)]
            radial = (1.0 + self.k1 * r2) / (1.0 - self.k1 * r2) ** 2
        return self.scale * (radial + 5.0 * self.k2 * r2 * r2)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ScreenLens:
        try:
            return cls(**{k: float(d[k]) for k in ("k1", "k2", "scale", "cx", "cy") if k in d})
        except (TypeError, ValueError) as exc:
            raise DistposeError(f"bad screen lens {d!r}: {exc}") from None


def focal_from_hfov(hfov_deg: float) -> float:
    """Focal length in normalised screen units (x_s = f X / Z) of a camera with this horizontal
    field of view (degrees), principal point centred: 1 / tan(hfov / 2)."""
    return 1.0 / math.tan(math.radians(hfov_deg) / 2.0)


@dataclass
class LensAdaptConfig:
    """Lens-fit settings: the work (grid, refinement steps, frames) is fixed, never timed."""

    # The lifter's assumed focal (screen units): the median field of view of training (50-120 deg)
    focal: float = field(default_factory=lambda: focal_from_hfov(85.0))
    grid_k1: tuple[float, ...] = tuple(np.round(np.arange(K1_RANGE[0], K1_RANGE[1] + 1e-9, 0.1), 3))
    refine_steps: int = 12  # golden-section steps inside the best grid cell (forward passes)
    # Frames of the buffer used (evenly spaced crops). 600 rather than 300: on 20 s buffers the
    # fitted k1's interval over resamples halves (docs/adaptation.md), for twice the work.
    max_frames: int = 600
    crop_frames: int = 50
    block_frames: int = 25  # bootstrap block: frames this close are too correlated to resample
    residual_cap: float = 0.5  # a frame's reprojection residual counts at most this
    # The objective's own bias for this model: on lens-free input its minimum lies at
    # k1 = -k1_offset, not 0, and that minimum moves between data sets by about
    # k1_offset_spread. Both measured by `distpose adapt-calibrate` on lens-free validation data
    # and stored in the checkpoint (`for_model`); the fitted k1 is shifted by the offset.
    k1_offset: float = 0.3
    k1_offset_spread: float = 0.15
    # Evidence (module docstring)
    min_reach: float = 0.35  # 90th percentile of the joints' distance from the centre / half-width
    min_improvement: float = 0.002  # relative fall of the objective at the fitted lens
    bootstrap: int = 200
    # A fit that shrinks the edges of the picture (k1 < 0, a pincushion correction) is refused
    # unless this is set: webcams are barrel or lens-free, and what else pulls the fit that way
    # on lens-free input (the bias's spread; an off-centre principal point, as in a cropped or
    # pasted picture) made every wrong-signed fit measured on real clips (docs/adaptation.md).
    allow_pincushion: bool = False
    # Principal-point shifts (screen units) tried at "no lens": a picture whose centre is
    # elsewhere (cropped, or pasted into a larger one) pulls the k1 fit, and one such fit passed
    # every other check and made the output worse (docs/adaptation.md). When a shift explains
    # the 2D better than the fitted lens does, the fit is refused.
    centre_shifts: tuple[tuple[float, float], ...] = tuple(
        (x, y) for x in (-0.4, -0.2, 0.0, 0.2, 0.4) for y in (-0.2, 0.0, 0.2) if (x, y) != (0, 0)
    )
    # The skeleton may get this much less consistent (the larger of the share and the floor).
    # Undoing the true lens raises this lifter's symmetry figure by up to 3% and its bone-length
    # constancy (jitter of lengths over time) by up to 11% on synthetic 2D, so a lens fitted on
    # the 2D may raise constancy by 15%; wrong 2D fits on real clips worsen symmetry by 17%+. A
    # lens the picture shows is held to 10% on both: where it makes MediaPipe's guesses outside
    # the picture worse, constancy rises 11%+ (docs/adaptation.md, "The Demo with these weights").
    skeleton_tolerance_mm: float = 0.5
    symmetry_tolerance_share: float = 0.10
    consistency_tolerance_share: float = 0.15
    picture_tolerance_share: float = 0.10
    # The picture's straight edges (`lens.plumb_line`): a lens they measure whose interval
    # reaches below this strength is "no lens" (it moves the lifted joints by under a mm).
    lines: LineConfig = field(default_factory=LineConfig)
    lines_min_strength: float = 0.025  # magnification at 0.7 half-widths (k1 0.05 alone)
    max_seconds: float = 60.0  # safety net only: a fit still running then is "not finished"
    seed: int = 0

    @classmethod
    def for_model(cls, model) -> LensAdaptConfig:
        """The defaults with the objective's bias (and its spread) measured for `model`: its
        checkpoint's metadata["lens_adapt"], written by `distpose adapt-calibrate`."""
        stored = (getattr(model, "metadata", None) or {}).get("lens_adapt", {})
        config = cls()
        if "k1_offset" in stored:
            config.k1_offset = float(stored["k1_offset"])
        if "k1_offset_spread" in stored:
            config.k1_offset_spread = float(stored["k1_offset_spread"])
        return config

    def validate(self) -> None:
        if len(self.grid_k1) < 3 or self.refine_steps < 0 or self.focal <= 0:
            raise DistposeError("lens adaptation needs >= 3 grid points, steps >= 0, focal > 0")
        if self.max_frames < 1 or self.crop_frames < 1 or self.block_frames < 1:
            raise DistposeError("lens adaptation needs frames, crops and blocks >= 1")
        if self.bootstrap < 1 or self.residual_cap <= 0:
            raise DistposeError("lens adaptation needs bootstrap >= 1 and a positive cap")


@dataclass
class LensAdaptResult:
    """The fitted lens (the identity when not accepted), why, and the evidence it was judged
    on. loss_before/loss_after: the objective at "no lens" and at the fitted lens (before the
    guard); steps: objective evaluations done; finished: False when cancelled or cut off by
    the safety net (then nothing was fitted)."""

    lens: ScreenLens
    accepted: bool
    reason: str
    loss_before: float
    loss_after: float
    steps: int
    seconds: float
    evidence: dict = field(default_factory=dict)
    finished: bool = True

    def summary(self) -> dict:
        """JSON-able: every field, the lens as a dict."""
        out = asdict(self)
        out["lens"] = self.lens.to_dict()
        return out


def reprojection_residual(
    poses: torch.Tensor, keypoints: torch.Tensor, seen: torch.Tensor, focal: float
) -> torch.Tensor:
    """How far the pinhole projection of lifted poses, best placed, lies from the 2D.

    poses (N, J, 3) root-relative metres (camera axes); keypoints (N, J, 2) normalised screen
    coordinates, finite (unseen ones any finite value); seen (N, J) bool; focal: screen units.
    Per frame the root translation T (3,) minimises sum_j |f (P_xy + T_xy) - u (P_z + T_z)|^2
    over seen joints (linear least squares, closed form). Returns (N,) the mean distance
    between projection and 2D over seen joints, divided by the 2D pose's RMS radius about its
    seen joints' mean (dimensionless; 0 where a frame has < 3 seen joints).
    """
    w = seen.to(poses.dtype)
    u = keypoints
    # Equations per joint and axis a: f T_a - u_a T_z = u_a P_z - f P_a.
    zero, f = torch.zeros_like(u[..., 0]), torch.full_like(u[..., 0], focal)
    rows_x = torch.stack([f, zero, -u[..., 0]], -1)
    rows_y = torch.stack([zero, f, -u[..., 1]], -1)
    a = torch.stack([rows_x, rows_y], -2)  # (N, J, 2, 3)
    b = u * poses[..., 2:3] - focal * poses[..., :2]
    aw = a * w[..., None, None]
    # A frame with under 3 seen joints gets a unit ridge (its residual is zeroed below anyway),
    # so the batched solve never meets a singular matrix.
    ridge = torch.where(w.sum(-1) >= 3, 1e-9, 1.0).to(poses.dtype)[:, None, None]
    ata = torch.einsum("njai,njak->nik", aw, a) + ridge * torch.eye(3, dtype=poses.dtype)
    atb = torch.einsum("njai,nja->ni", aw, b)
    t = torch.linalg.solve(ata, atb)
    cam = poses + t[:, None, :]
    depth = cam[..., 2:3].clamp_min(1e-3)
    proj = focal * cam[..., :2] / depth
    dist = torch.sqrt(((proj - u) ** 2).sum(-1) + 1e-12)
    count = w.sum(-1).clamp_min(1.0)
    mean2d = (u * w[..., None]).sum(-2) / count[..., None]
    size = torch.sqrt((((u - mean2d[..., None, :]) ** 2).sum(-1) * w).sum(-1) / count + 1e-12)
    res = (dist * w).sum(-1) / count / size
    return torch.where(w.sum(-1) >= 3, res, torch.zeros_like(res))


def coverage(keypoints_2d: np.ndarray) -> dict:
    """How much of the picture the person covered: keypoints (N, 17, 2) normalised screen
    coordinates (NaN = unseen) -> {"reach": 90th percentile of the seen joints' distance from
    the image centre, in half-widths (1 = the left/right edge), "area": share of the cells of
    an 8 x 4 grid over a 16:9 picture that a seen joint entered}."""
    kp = np.asarray(keypoints_2d, np.float64).reshape(-1, 2)
    kp = kp[np.isfinite(kp).all(-1)]
    if not len(kp):
        return {"reach": 0.0, "area": 0.0}
    reach = float(np.percentile(np.linalg.norm(kp, axis=-1), 90))
    col = np.clip(((kp[:, 0] + 1.0) / 2.0 * 8).astype(int), 0, 7)
    row = np.clip(((kp[:, 1] + 0.5625) / 1.125 * 4).astype(int), 0, 3)
    area = len(set(zip(col.tolist(), row.tolist()))) / 32.0
    return {"reach": reach, "area": area}


def _crops(n: int, config: LensAdaptConfig) -> list[tuple[int, int]]:
    """Evenly spaced windows (start, stop) into a buffer of n frames: at most max_frames outputs
    in crops of crop_frames, covering the whole buffer when it is that short (the last crops
    overlap rather than leave its end out)."""
    crop = min(config.crop_frames, n)
    count = max(1, min(config.max_frames // crop, -(-n // crop)))
    starts = np.linspace(0, n - crop, count).round().astype(int)
    return [(int(s), int(s) + crop) for s in starts]


def _buffer_windows(model, keypoints: np.ndarray, config: LensAdaptConfig) -> torch.Tensor:
    """Fixed, evenly spaced crops of the buffer (N, 17, 2) with the receptive-field context
    each output needs -> (B, crop + RF - 1, 17, 2)."""
    x = torch.as_tensor(keypoints, dtype=torch.float32)
    padded = edge_padded(model, x)  # one output per input frame
    rf = model.receptive_field
    return torch.stack([padded[s : e + rf - 1] for s, e in _crops(len(x), config)])


class _Objective:
    """The reprojection objective over windows (B, L, 17, 2) of 2D (NaN = unseen, each with its
    receptive-field context) as a function of the (5,) lens parameters: per output frame
    (B, T) the residual, capped."""

    def __init__(self, model, windows: torch.Tensor, focal: float, cap: float):
        self.model, self.inputs, self.focal, self.cap = model, windows, focal, cap
        # The input frames the outputs belong to (causal: the last; symmetric: centred).
        self.past = model.receptive_field - 1 - model.lookahead_frames

    @torch.no_grad()
    def per_frame(self, params: torch.Tensor, shift=(0.0, 0.0)) -> np.ndarray:
        """(B, T) float64 capped residuals at these lens parameters (forward passes only), the
        undistorted 2D moved by -shift (screen units: a principal point off the centre)."""
        u_in = undistort_screen(self.inputs, params)
        if shift != (0.0, 0.0):
            u_in = u_in - torch.tensor(shift, dtype=u_in.dtype)
        poses = self.model(u_in)  # (B, T, J, 3)
        b, t = poses.shape[:2]
        u = u_in[:, self.past : self.past + t]
        seen = torch.isfinite(u).all(-1)
        res = reprojection_residual(
            poses.reshape(b * t, NUM_JOINTS, 3),
            torch.where(seen[..., None], u, 0.0).reshape(b * t, NUM_JOINTS, 2),
            seen.reshape(b * t, NUM_JOINTS),
            self.focal,
        )
        return res.clamp_max(self.cap).reshape(b, t).double().numpy()

    def value(self, k1: float, shift=(0.0, 0.0)) -> tuple[float, np.ndarray]:
        """(mean objective, per-frame (B, T)) at undistortion k1 (objective coordinates) and a
        principal-point shift (screen units)."""
        frames = self.per_frame(ScreenLens(k1=float(k1)).params_tensor(), shift)
        return float(frames.mean()), frames


def _blocks(frames: np.ndarray, block: int) -> np.ndarray:
    """(B, T) per-frame values -> (B * ceil(T / block),) block means, crop by crop."""
    b, t = frames.shape
    edges = list(range(0, t, block))
    return np.stack([frames[:, s : s + block].mean(1) for s in edges], 1).reshape(-1)


class _Stopped(Exception):
    """Cancelled, or the safety-net time ran out: nothing is fitted."""


def lens_adapt(
    model: torch.nn.Module,
    keypoints_2d: np.ndarray,
    config: LensAdaptConfig | None = None,
    cancel: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
    pictures=None,
) -> LensAdaptResult:
    """Fit the k1 of a `ScreenLens` in front of the frozen `model` to an unlabelled 2D buffer,
    and accept it only on evidence (module docstring).

    pictures: optional frames of the same camera's picture, as seen (lens and all): a sequence
    of (H, W) uint8 grey or (H, W, 3) BGR images of one size, a few spread over the buffer;
    their straight edges are measured first (module docstring). None or empty: 2D only.
    keypoints_2d (N, 17, 2) normalised screen coordinates at the model's fps, NaN where a joint
    is unseen; frames with no seen joint are dropped; N >= the receptive field (else
    DistposeError). `cancel()` is polled between objective evaluations (cancelling returns the
    identity, finished=False); `progress(done, total)` is called after each. The model is not
    modified. The adapted prediction is model(result.lens.undistort(keypoints)).
    """
    config = config or LensAdaptConfig()
    config.validate()
    start = time.perf_counter()
    kp = np.asarray(keypoints_2d, dtype=np.float32)
    if kp.ndim != 3 or kp.shape[1:] != (NUM_JOINTS, 2):
        raise DistposeError(f"keypoints must have shape (N, 17, 2), got {kp.shape}")
    kp = kp[np.isfinite(kp).all(-1).any(-1)]
    rf = model.receptive_field
    if len(kp) < rf:
        raise DistposeError(f"too few frames with a person to adapt: {len(kp)} (need {rf})")
    was_training = model.training
    model.eval()
    try:
        if pictures is not None and len(pictures):
            return _fit_with_pictures(model, kp, config, cancel, progress, start, pictures)
        return _fit(model, kp, config, cancel, progress, start)
    finally:
        model.train(was_training)


def _fit(model, kp, config: LensAdaptConfig, cancel, progress, start) -> LensAdaptResult:
    offset = config.k1_offset
    reference = -offset  # where the objective settles on lens-free input (objective coords)
    cover = coverage(kp)
    evidence: dict = {"coverage": cover, "k1_offset": offset,
                      "k1_offset_spread": config.k1_offset_spread}  # fmt: skip
    total = (1 + len(config.grid_k1) + (config.refine_steps if config.refine_steps >= 2 else 0)
             + len(config.centre_shifts))  # fmt: skip
    done = 0

    def result(accepted, reason, lens=None, before=float("nan"), after=float("nan"),
               finished=True) -> LensAdaptResult:  # fmt: skip
        return LensAdaptResult(lens if accepted else ScreenLens(), accepted, reason, before,
                               after, done, time.perf_counter() - start, evidence,
                               finished)  # fmt: skip

    if cover["reach"] < config.min_reach:
        return result(False, (
            f"the person stayed near the middle of the picture (90% of the joints within "
            f"{100 * cover['reach']:.0f}% of the way to the sides; at least "
            f"{100 * config.min_reach:.0f}% needed): a lens shows only away from the middle. "
            "Move through the sides of the picture and adapt again"))  # fmt: skip

    objective = _Objective(model, _buffer_windows(model, kp, config), config.focal,
                           config.residual_cap)  # fmt: skip

    def evaluate(k1: float, shift=(0.0, 0.0)) -> tuple[float, np.ndarray]:
        nonlocal done
        if cancel is not None and cancel():
            raise _Stopped("cancelled")
        if time.perf_counter() - start > config.max_seconds:
            raise _Stopped(f"not finished within {config.max_seconds:.0f} s (is the computer "
                           "busy?): nothing changed")  # fmt: skip
        out = objective.value(k1, shift)
        done += 1
        if progress is not None:
            progress(done, total)
        return out

    try:
        loss0, frames0 = evaluate(reference)
        grid = np.asarray(config.grid_k1, np.float64)
        curves = [evaluate(k)[1] for k in grid]
        values = np.array([c.mean() for c in curves])
        best = int(values.argmin())
        k_best, v_best, f_best = grid[best], values[best], curves[best]
        for k, (v, f) in _golden(evaluate, grid, best, config.refine_steps):
            if v < v_best:
                k_best, v_best, f_best = k, v, f
        shifted = [evaluate(reference, c)[0] for c in config.centre_shifts]
    except _Stopped as stop:
        return result(False, str(stop), finished=False)

    lens = ScreenLens(k1=float(k_best + offset))
    evidence.update(_evidence(grid, curves, frames0, f_best, offset, config))
    evidence["k1"] = lens.k1
    grid_step = float(np.min(np.diff(grid)))
    improvement = evidence["improvement"]
    low, high = evidence["k1_interval"]
    radii = np.linalg.norm(kp[np.isfinite(kp).all(-1)], axis=-1)
    folds = not (lens.radial_slope(np.linspace(0.0, float(radii.max()), 64)) > 0).all()
    if not improvement["mean"] > config.min_improvement:
        return result(False, (
            f"no lens explains the 2D better than none: the best fit improves the objective by "
            f"{100 * improvement['mean']:.1f}% (at least {100 * config.min_improvement:.1f}% "
            "needed)"), before=loss0, after=v_best)  # fmt: skip
    if not grid[0] + 0.5 * grid_step < k_best < grid[-1] - 0.5 * grid_step:
        return result(False, (
            f"the best fit lies at the edge of the lenses tried (k1 {lens.k1:+.2f}): not a lens "
            "that can be measured here"), before=loss0, after=v_best)  # fmt: skip
    if low <= config.k1_offset_spread and high >= -config.k1_offset_spread:
        return result(False, (
            f"the lens is not determined: resamples of the frames give k1 from {low:+.2f} to "
            f"{high:+.2f}, which does not exclude no lens (|k1| <= "
            f"{config.k1_offset_spread:.2f})"), before=loss0, after=v_best)  # fmt: skip
    if lens.k1 < 0 and not config.allow_pincushion:
        return result(False, (
            f"the fit (k1 {lens.k1:+.2f}) would shrink the edges of the picture, as for a "
            "pincushion lens, which webcams rarely have; an off-centre or cropped picture "
            "asks for the same: not adapted"), before=loss0, after=v_best)  # fmt: skip
    halves = evidence["halves"]
    if min(halves) <= 0:
        return result(False, (
            f"the two halves of the recording disagree: the lens improves the objective by "
            f"{100 * halves[0]:+.1f}% in one and {100 * halves[1]:+.1f}% in the other"),
            before=loss0, after=v_best)  # fmt: skip
    if folds:
        return result(False, f"the fitted lens (k1 {lens.k1:+.2f}) folds the picture",
                      before=loss0, after=v_best)  # fmt: skip
    if shifted:
        i = int(np.argmin(shifted))
        centre, centre_fall = config.centre_shifts[i], 1.0 - shifted[i] / loss0
        evidence["off_centre"] = {"shift": list(centre), "fall": centre_fall}
        if centre_fall > improvement["mean"]:
            return result(False, (
                f"the picture looks off-centre (cropped, or pasted into a larger one): moving "
                f"its centre by ({centre[0]:+.1f}, {centre[1]:+.1f}) half-widths explains the 2D "
                f"better ({100 * centre_fall:.1f}%) than any lens ({100 * improvement['mean']:.1f}"
                "%), and a lens correction cannot undo that: not adapted"),
                before=loss0, after=v_best)  # fmt: skip
    worse = _skeleton_worse(model, kp, lens, evidence, config.skeleton_tolerance_mm,
                            (config.symmetry_tolerance_share,
                             config.consistency_tolerance_share))  # fmt: skip
    if worse:
        return result(False, f"the lens (k1 {lens.k1:+.2f}) would make the 3D skeleton less "
                      f"consistent: {worse}", before=loss0, after=v_best)  # fmt: skip
    return result(True, "adapted", lens, loss0, v_best)


def _fit_with_pictures(model, kp, config: LensAdaptConfig, cancel, progress, start,
                       pictures) -> LensAdaptResult:  # fmt: skip
    """The picture's straight edges first; the 2D objective when they do not determine the
    lens (module docstring)."""
    try:
        lines = estimate_lens_from_lines(list(pictures), config.lines, cancel)
    except DistposeError:
        if cancel is not None and cancel():
            return LensAdaptResult(ScreenLens(), False, "cancelled", float("nan"), float("nan"),
                                   0, time.perf_counter() - start, {}, False)  # fmt: skip
        raise
    if not lines.measured:
        fitted = _fit(model, kp, config, cancel, progress, start)
        fitted.evidence["lines"] = lines.summary()
        if not fitted.accepted and fitted.finished:
            fitted.reason += f" (and {lines.reason})"
        return fitted
    low, high = lines.interval  # of the lens's strength (`lens_strength`)
    evidence: dict = {"coverage": coverage(kp), "lines": lines.summary(), "source": "picture",
                      "k1": lines.k1, "k2": lines.k2, "strength_interval": (low, high)}  # fmt: skip

    def result(accepted, reason, lens=None, before=float("nan"), after=float("nan")):
        return LensAdaptResult(lens if accepted else ScreenLens(), accepted, reason, before,
                               after, 2, time.perf_counter() - start, evidence)  # fmt: skip

    if low <= config.lines_min_strength and high >= -config.lines_min_strength:
        return result(False, (
            f"the straight edges in the picture show no lens ({lines.lines} edges: it would "
            f"magnify by {lines.strength:+.1%} at 0.7 half-widths from the middle, "
            f"{low:+.1%} to {high:+.1%}): nothing to undo"))  # fmt: skip
    lens = ScreenLens(k1=lines.k1, k2=lines.k2)
    objective = _Objective(model, _buffer_windows(model, kp, config), config.focal,
                           config.residual_cap)  # fmt: skip
    before = objective.value(-config.k1_offset)[0]
    after = objective.value(lens.k1 - config.k1_offset)[0]  # k1 only: the objective's form
    if progress is not None:
        progress(2, 2)
    # a pincushion the edges show is measured, not the 2D objective's pull: no sign rule here
    if not (lens.radial_slope(np.linspace(0.0, 1.2, 64)) > 0).all():
        return result(False, f"the lens the picture shows (k1 {lens.k1:+.2f}, k2 {lens.k2:+.2f}) "
                      "folds the picture: not adapted", before=before, after=after)  # fmt: skip
    worse = _skeleton_worse(model, kp, lens, evidence, config.skeleton_tolerance_mm,
                            (config.picture_tolerance_share,) * 2)  # fmt: skip
    if worse:
        return result(False, f"the lens the picture shows (k1 {lens.k1:+.2f}) would make the 3D "
                      f"skeleton less consistent: {worse}", before=before, after=after)  # fmt: skip
    return result(True, f"adapted to the lens the picture's straight edges show ({lines.lines} "
                  "edges)", lens, before, after)  # fmt: skip


def _skeleton_worse(model, kp, lens: ScreenLens, evidence: dict, floor_mm: float,
                    shares: tuple[float, float]) -> str:  # fmt: skip
    """The skeleton check: "" when lifting through `lens` keeps the skeleton as consistent as
    without it (symmetry and constancy each within its share of its own figure, or floor_mm),
    else which measure got worse and by how much. Records both in evidence["skeleton"]."""
    plain, fitted = (_skeleton(lift_sequence(model, x)) for x in (kp, lens.undistort(kp)))
    evidence["skeleton"] = {"before": plain, "after": fitted}
    for (key, name), share in zip(
        (("symmetry_mm", "left/right bone symmetry"), ("consistency_mm", "bone-length constancy")),
        shares,
    ):
        tolerance = max(floor_mm, share * plain[key])
        if fitted[key] > plain[key] + tolerance:
            return f"{name} {plain[key]:.1f} -> {fitted[key]:.1f} mm"
    return ""


def _skeleton(poses: np.ndarray) -> dict:
    return {"symmetry_mm": 1000 * metrics.bone_symmetry_error(poses),
            "consistency_mm": 1000 * metrics.bone_consistency(poses)}  # fmt: skip


def _evidence(grid, curves, frames0, frames_fit, offset, config: LensAdaptConfig) -> dict:
    """The fit's evidence from per-frame values: block-bootstrap resamples (seeded, so the
    same buffer gives the same verdict) of the relative improvement at the fitted lens and
    of the grid's best k1, and the improvement in each half of the buffer."""
    block = config.block_frames
    ref = _blocks(frames0, block)
    fit = _blocks(frames_fit, block)
    on_grid = np.stack([_blocks(c, block) for c in curves])  # (G, blocks)
    n = len(ref)
    rng = np.random.default_rng(config.seed)
    picks = rng.integers(0, n, size=(config.bootstrap, n))
    gain = (ref[picks] - fit[picks]).mean(1) / ref[picks].mean(1)
    k1s = grid[on_grid[:, picks].mean(2).argmin(0)] + offset
    half = n // 2

    def rel(sel) -> float:
        return float((ref[sel] - fit[sel]).mean() / ref[sel].mean())

    return {
        "improvement": {"mean": rel(slice(None)), "low": float(np.quantile(gain, 0.05)),
                        "high": float(np.quantile(gain, 0.95))},
        "k1_interval": (float(np.quantile(k1s, 0.05)), float(np.quantile(k1s, 0.95))),
        "halves": (rel(slice(0, max(half, 1))), rel(slice(half, None))) if n >= 2
        else (rel(slice(None)),) * 2,
        "blocks": n,
    }  # fmt: skip


def k1_grid_search(
    model: torch.nn.Module, windows: torch.Tensor, k1_values, focal: float
) -> tuple[float, torch.Tensor]:
    """The k1 of `k1_values` whose undistortion gives the lowest reprojection objective over
    training windows (the inner loop of lens-space meta-training, `training.loop.meta_step`).

    windows (B, L, 17, 2) normalised screen coordinates, NaN = unseen, L >= the receptive
    field. Returns (best k1, objective (G,)): forward passes only, uncapped."""
    objective = _Objective(model, windows, focal, cap=float("inf"))
    values = torch.tensor([objective.value(float(k))[0] for k in k1_values])
    return float(k1_values[int(values.argmin())]), values


def calibrate_k1_offset(model: torch.nn.Module, buffers, config=None) -> tuple[float, float]:
    """The objective's bias for `model` (`LensAdaptConfig.k1_offset`) and its spread between
    data sets (`k1_offset_spread`): minus the median, over buffers of lens-free 2D, of the k1
    that minimises the objective, and half the distance between their 10th and 90th
    percentiles.

    buffers: iterable of (N, 17, 2) normalised screen coordinates from a pinhole camera (e.g.
    the validation split through the evaluation webcam), each >= the receptive field.
    """
    base = config or LensAdaptConfig()
    found = []
    for b in buffers:
        objective = _Objective(model, _buffer_windows(model, np.asarray(b, np.float32), base),
                               base.focal, base.residual_cap)  # fmt: skip
        grid = np.asarray(base.grid_k1, np.float64)
        values = [objective.value(k)[0] for k in grid]
        best = int(np.argmin(values))
        tried = [(grid[best], values[best])]
        tried += [(k, v[0]) for k, v in _golden(objective.value, grid, best, base.refine_steps)]
        found.append(min(tried, key=lambda kv: kv[1])[0])
    found = np.array(found)
    spread = 0.5 * float(np.percentile(found, 90) - np.percentile(found, 10))
    return -float(np.median(found)), spread


def _golden(evaluate, grid: np.ndarray, best: int, steps: int) -> list:
    """Golden-section search of `steps` evaluations for the minimum of evaluate(k) -> (value,
    ...) within the grid cells either side of index `best`. Returns every (k, evaluate(k))."""
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    if steps < 2:
        return []
    a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    seen = [(a, evaluate(a)), (b, evaluate(b))]
    fa, fb = seen[0][1], seen[1][1]
    for _ in range(steps - 2):
        if fa[0] < fb[0]:
            hi, b, fb = b, a, fa
            a = hi - _GOLDEN * (hi - lo)
            fa = evaluate(a)
            seen.append((a, fa))
        else:
            lo, a, fa = a, b, fb
            b = lo + _GOLDEN * (hi - lo)
            fb = evaluate(b)
            seen.append((b, fb))
    return seen
