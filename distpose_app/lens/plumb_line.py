"""The lens from the picture itself: straight edges in the scene (door frames, shelves, building
fronts) come out curved through a lens, and the radial undistortion that makes them straight
again is the lens ("plumb-line" self-calibration, Brown 1971; Devernay & Faugeras 2001).

This is a second signal for Adapt, independent of the lifter: on real keypoints the
reprojection objective carries only a weak lens signal (docs/adaptation.md). It needs no target
and no calibration, only a few frames of the camera's own picture with some straight edges away
from the middle (a lens bends nothing near the middle).

Recipe, per frame (grey, at most `LineConfig.work_width` pixels wide):
1. Canny edges (thresholds from the frame's own contrast); the signed gradient direction
   splits them into pieces of one direction (8 bins of 45 degrees, connected pixels per bin,
   one-pixel gaps bridged): corners and junctions separate, the two sides of a stripe stay
   apart, a gently curved line stays one piece.
2. Long, thin pieces are candidates (length and width bounds, screen units).
3. For each lens of a grid (k1 alone, then k1 and k2 jointly, kept only when k2 lowers the
   objective by `k2_min_gain` of k1 alone's), every candidate is undistorted
   with the model's own radial form (`undistort_points`, as `lifter.model.undistort_screen`
   with the centre fixed at the picture's middle) and scored by its RMS distance from its best
   straight line, in the distorted picture's pixels.
4. The objective sums, over candidates, min(rms, cap)^2 weighted by length: a piece that is
   straight at no lens (a curved object, a body, texture) costs the same at every lens, so only
   the scene's straight edges move the minimum (truncated least squares). Only pieces that are
   straight at the minimum (rms <= `straight_px`) count as evidence, and the estimate stands
   only when resamples of them agree on the lens (`max_interval`).

The result carries its evidence: how many straight edges were found and how far from the
middle, the lens's strength interval over resamples of the pieces, and the strength each frame
gives alone. Coordinates are the lifter's normalised screen coordinates (x/w*2-1, y/w*2-h/w;
the principal point at the middle), so k1, k2 are the quantities of the keypoint fit and the
model's `input_lens`: u = d (g1(r) + k2 r^4), g1 = 1 + k1 r^2 (k1 >= 0), 1 / (1 - k1 r^2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from distpose_app.core.errors import DistposeError


@dataclass
class LineConfig:
    """Settings of the straight-edge lens estimate (module docstring). Lengths in screen units
    (the picture is 2 wide) unless they say px (pixels at `work_width`)."""

    work_width: int = 960  # frames are shrunk to this width first: edges, not detail
    edge_percentile: float = 95.0  # Canny's upper threshold: this percentile of the gradient
    min_length: float = 0.10  # a candidate piece spans at least this (about 5% of the width)
    max_thickness: float = 0.08  # and its spread across its line is at most this share of it
    # k1 tried: barrel corrections up to what a 180-degree fisheye needs at the edge; negative
    # for pincushion lenses
    grid_k1: tuple[float, ...] = tuple(np.round(np.arange(-0.5, 2.0 + 1e-9, 0.02), 3))
    # then k1 and k2 jointly: a strong barrel lens near its fold needs the r^4 term
    grid_k1_joint: tuple[float, ...] = tuple(np.round(np.arange(-0.5, 2.0 + 1e-9, 0.05), 3))
    grid_k2: tuple[float, ...] = tuple(np.round(np.arange(-0.5, 1.5 + 1e-9, 0.1), 3))
    # k2 is taken only when it lowers the objective by this share of k1 alone's: on a real
    # street scene k1 and k2 trade along a flat ridge, where a k2 gaining under 1% moved the
    # strength by 5-10 points; a lens that needs k2 gained 2-40% (docs/adaptation.md, "k2
    # must earn its place")
    k2_min_gain: float = 0.015
    max_points: int = 48  # points used per piece
    cap_px: float = 2.0  # a piece's residual counts at most this much (truncated least squares)
    straight_px: float = 0.8  # a piece at most this far from a line at the best k1 is straight
    min_lines: int = 8  # straight pieces needed before the picture is believed
    # and the 5-95% range over resamples of the magnification at 0.7 half-widths at most this
    max_interval: float = 0.12
    bootstrap: int = 200
    seed: int = 0


@dataclass
class LineEstimate:
    """What the picture's straight edges say about the lens.

    k1, k2: the best radial undistortion (screen units, module docstring), k1 NaN when nothing
    was found; strength: its `lens_strength` (magnification at 0.7 half-widths, minus 1);
    measured: True when the evidence suffices (`min_lines` straight edges, and resamples of
    the pieces agree within `max_interval`); lines: the number of straight pieces (counted once
    per frame they are in); reach: the 90th percentile of their distance from the middle
    (half-widths); interval: the 5-95% range of the strength over resamples of the pieces;
    per_frame: the strength each frame alone gives (NaN where a frame had too few edges);
    candidates: the pieces tried; reason: one plain sentence."""

    k1: float
    measured: bool
    lines: int
    reach: float
    interval: tuple[float, float]
    per_frame: list[float] = field(default_factory=list)
    candidates: int = 0
    reason: str = ""
    k2: float = 0.0
    strength: float = float("nan")

    def summary(self) -> dict:
        """JSON-able: every field (NaN as None)."""
        out = asdict(self)
        for key in ("k1", "reach", "strength"):
            out[key] = None if not np.isfinite(out[key]) else out[key]
        out["interval"] = [None if not np.isfinite(v) else v for v in self.interval]
        out["per_frame"] = [None if not np.isfinite(v) else v for v in self.per_frame]
        return out


def undistort_points(points: np.ndarray, k1: float, k2: float = 0.0) -> np.ndarray:
    """points (..., 2) normalised screen coordinates -> undistorted (..., 2) by the model's radial
    form with centre 0 and scale 1 (`lifter.model.undistort_screen`): u = d (g1(r) + k2 r^4),
    g1 = 1 + k1 r^2 (k1 >= 0) or 1 / (1 - k1 r^2) (k1 < 0)."""
    p = np.asarray(points, dtype=np.float64)
    r2 = (p * p).sum(-1, keepdims=True)
    radial = 1.0 + k1 * r2 if k1 >= 0 else 1.0 / (1.0 - k1 * r2)
    return p * (radial + k2 * r2 * r2)


def lens_strength(k1, k2=0.0, radius: float = 0.7):
    """How much the undistortion magnifies at `radius` half-widths from the middle, minus 1 (0:
    no lens; one number to compare lenses of different k1, k2). Scalars or arrays."""
    k1, k2 = np.asarray(k1, np.float64), np.asarray(k2, np.float64)
    r2 = radius * radius
    radial = np.where(k1 >= 0, 1.0 + k1 * r2, 1.0 / (1.0 - np.minimum(k1, 0.0) * r2))
    return radial + k2 * r2 * r2 - 1.0


def edge_pieces(gray: np.ndarray, config: LineConfig | None = None) -> list[np.ndarray]:
    """Candidate straight-edge pieces of one picture.

    gray: (H, W) uint8 (or (H, W, 3) BGR). Returns a list of (n, 2) float64 point sets in
    normalised screen coordinates of the full picture: long, thin pieces of edge of one
    direction (module docstring, steps 1-2)."""
    config = config or LineConfig()
    image = np.asarray(gray)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim != 2 or image.dtype != np.uint8 or min(image.shape) < 16:
        raise DistposeError(f"a picture must be an (H, W) uint8 image, got {image.shape} "
                            f"{image.dtype}")  # fmt: skip
    height, width = image.shape
    if width > config.work_width:
        size = (config.work_width, max(16, round(height * config.work_width / width)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    h, w = image.shape
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    # thresholds from the picture's own contrast: a blurred hand-held frame keeps its edges
    magnitude = np.hypot(gx, gy)
    high = max(float(np.percentile(magnitude, config.edge_percentile)), 20.0)
    edges = cv2.Canny(image, 0.4 * high / 4, high / 4, L2gradient=True) > 0  # Sobel ~ 4x Canny's
    # the gradient's direction, signed: the two sides of a stripe (a road marking, a frame)
    # fall in opposite bins and stay separate pieces
    angle = np.arctan2(gy, gx)
    bins = np.floor((angle + np.pi / 8) / (np.pi / 4)).astype(np.int32) % 8
    px_to_screen = 2.0 / w
    bridge = np.ones((3, 3), np.uint8)  # joins pieces of one edge broken by a pixel or two
    pieces = []
    for b in range(8):
        mask = (edges & (bins == b)).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(mask, bridge),
                                                                    connectivity=8)  # fmt: skip
        labels = np.where(mask > 0, labels, 0)
        for label in range(1, count):
            extent = max(stats[label, cv2.CC_STAT_WIDTH], stats[label, cv2.CC_STAT_HEIGHT])
            if extent * px_to_screen < config.min_length:
                continue
            ys, xs = np.nonzero(labels == label)
            if len(xs) < 3:
                continue
            pts = np.stack([xs * px_to_screen - 1.0, ys * px_to_screen - h / w], axis=1)
            lam = np.linalg.eigvalsh(np.cov(pts.T))  # ascending
            length = np.sqrt(12.0 * max(lam[1], 0.0))
            if length >= config.min_length and np.sqrt(max(lam[0], 0.0)) <= (
                config.max_thickness * length
            ):
                pieces.append(pts)
    return pieces


def _residuals(pieces: Sequence[np.ndarray], params: np.ndarray) -> np.ndarray:
    """(P, G) RMS distance (screen units) of each piece from its best line, undistorted by each
    (k1, k2) of params (G, 2), in the distorted picture's units: divided by the undistortion's
    magnification across the line at the piece's centre (|J n|, J the undistortion's Jacobian,
    n the line's normal), so that neither the magnification nor its anisotropy (radial vs
    tangential) favours one lens over another."""
    points = np.concatenate(pieces)
    ids = np.concatenate([np.full(len(p), i) for i, p in enumerate(pieces)])
    n = np.bincount(ids).astype(np.float64)
    centre = np.stack([np.bincount(ids, points[:, k]) for k in (0, 1)], 1) / n[:, None]
    r2 = (centre**2).sum(1)
    out = np.empty((len(pieces), len(params)))
    for j, (k1, k2) in enumerate(np.asarray(params, np.float64)):
        u = undistort_points(points, float(k1), float(k2))
        mx, my = (np.bincount(ids, u[:, k]) / n for k in (0, 1))
        dx, dy = u[:, 0] - mx[ids], u[:, 1] - my[ids]
        a, b, c = (np.bincount(ids, v) / n for v in (dx * dx, dx * dy, dy * dy))
        lam = 0.5 * (a + c) - np.sqrt(0.25 * (a - c) ** 2 + b * b)
        # the normal: the eigenvector of the smaller eigenvalue (the better-conditioned form)
        v1, v2 = np.stack([lam - c, b], 1), np.stack([b, lam - a], 1)
        normal = np.where((np.linalg.norm(v1, axis=1) >= np.linalg.norm(v2, axis=1))[:, None],
                          v1, v2)  # fmt: skip
        length = np.linalg.norm(normal, axis=1, keepdims=True)
        normal = np.where(length > 1e-15, normal / np.maximum(length, 1e-300),
                          np.where((a < c)[:, None], [[1.0, 0.0]], [[0.0, 1.0]]))  # fmt: skip
        # u = d G(r^2): J = G I + 2 G'(r^2) d d^T
        if k1 >= 0:
            g, slope = 1.0 + k1 * r2, k1 * np.ones_like(r2)
        else:
            g, slope = 1.0 / (1.0 - k1 * r2), k1 / (1.0 - k1 * r2) ** 2
        g, slope = g + k2 * r2 * r2, slope + 2.0 * k2 * r2
        jn = g[:, None] * normal + (2.0 * slope * (centre * normal).sum(1))[:, None] * centre
        out[:, j] = np.sqrt(np.maximum(lam, 0.0)) / np.linalg.norm(jn, axis=1)
    return out


def estimate_lens_from_lines(
    pictures: Sequence[np.ndarray],
    config: LineConfig | None = None,
    cancel: Callable[[], bool] | None = None,
) -> LineEstimate:
    """The radial lens (k1, k2, screen units) that makes the straight edges of `pictures`
    straight.

    pictures: frames of one camera, each (H, W) uint8 grey or (H, W, 3) BGR, all one size (a
    few, spread over the recording, so that a person in front of an edge in one frame does not
    hide it in all). cancel() is polled between frames and grid rows; cancelling raises
    DistposeError. Deterministic: the same pictures give the same estimate."""
    config = config or LineConfig()
    grid = np.asarray(config.grid_k1, np.float64)
    if len(grid) < 3:
        raise DistposeError("the straight-edge lens estimate needs at least 3 k1 values")
    sizes = {np.asarray(p).shape[:2] for p in pictures}
    if len(sizes) > 1:
        raise DistposeError(f"pictures of one camera must share a size, got {sorted(sizes)}")

    def check() -> None:
        if cancel is not None and cancel():
            raise DistposeError("cancelled")

    frame_pieces = []
    for picture in pictures:
        check()
        frame_pieces.append([_thin(p, config.max_points) for p in edge_pieces(picture, config)])
    work = next(iter(sizes))[1] if sizes else 0
    px = 2.0 / min(config.work_width, work) if work else 0.0  # one pixel, screen units
    candidates = [p for pieces in frame_pieces for p in pieces]
    frame_of = np.array([i for i, pieces in enumerate(frame_pieces) for _ in pieces], int)
    nothing = LineEstimate(float("nan"), False, 0, float("nan"), (float("nan"),) * 2,
                           [float("nan")] * len(frame_pieces), len(candidates))  # fmt: skip
    if not candidates:
        nothing.reason = "the picture has no long straight edges"
        return nothing
    # stage 1, k1 alone: only pieces straight somewhere on it can be lines (the rest cost the
    # cap at every lens and cannot move the minimum)
    params = np.stack([grid, np.zeros_like(grid)], 1)
    rms = _residuals(candidates, params) / px  # (P, G) pixels at work width
    keep = np.nonzero(rms.min(1) <= config.cap_px)[0]
    if len(keep) >= config.min_lines and len(config.grid_k2):
        # stage 2: (k1, k2) jointly, for lenses a single k1 cannot undo at every radius
        coarse = np.asarray(config.grid_k1_joint, np.float64)
        joint = np.array([(a, b) for b in config.grid_k2 if b != 0 for a in coarse], np.float64)
        rows = []
        for start in range(0, len(joint), len(coarse)):
            check()
            rows.append(
                _residuals([candidates[i] for i in keep], joint[start : start + len(coarse)])
            )
        params = np.concatenate([params, joint])
        rms = np.concatenate([rms[keep], np.concatenate(rows, 1) / px], 1)
        candidates, frame_of = [candidates[i] for i in keep], frame_of[keep]
    weights = np.array([len(p) for p in candidates], np.float64)

    def costs(sel) -> np.ndarray:
        return (weights[sel, None] * np.minimum(rms[sel], config.cap_px) ** 2).sum(0)

    every_piece = np.arange(len(candidates))
    if len(params) > len(grid):  # the joint stage ran: k2 must earn its extra freedom
        cost = costs(every_piece)
        if cost[len(grid) :].min() > (1.0 - config.k2_min_gain) * cost[: len(grid)].min():
            params, rms = params[: len(grid)], rms[:, : len(grid)]

    def best(sel) -> int:
        return int(np.argmin(costs(sel)))

    at = best(every_piece)
    k1, k2 = (float(v) for v in params[at])
    lines = rms[:, at] <= config.straight_px
    centres = np.array([np.linalg.norm(p.mean(0)) for p in candidates])
    per_frame = []
    for i in range(len(frame_pieces)):
        sel = np.nonzero(lines & (frame_of == i))[0]
        per_frame.append(float(lens_strength(*params[best(sel)])) if len(sel) >= config.min_lines
                         else float("nan"))  # fmt: skip
    found = int(lines.sum())
    reach = float(np.quantile(centres[lines], 0.9)) if found else float("nan")
    nothing.candidates = len(candidates)
    if found < config.min_lines:
        nothing.lines, nothing.reach = found, reach
        nothing.reason = (f"the picture has too few straight edges to measure a lens ({found}; "
                          f"at least {config.min_lines} needed)")  # fmt: skip
        return nothing
    rng = np.random.default_rng(config.seed)
    every = len(candidates)  # resampled as the estimate was made: all pieces, truncated
    boots = lens_strength(*params[[best(rng.integers(0, every, every))
                                   for _ in range(config.bootstrap)]].T)  # fmt: skip
    interval = (float(np.quantile(boots, 0.05)), float(np.quantile(boots, 0.95)))
    strength = float(lens_strength(k1, k2))
    estimate = LineEstimate(k1, True, found, reach, interval, per_frame, len(candidates), "",
                            k2, strength)  # fmt: skip
    if k1 <= grid.min() or k1 >= grid.max():
        # a minimum on the search bound is no minimum: the edges that chose it are not lines
        estimate.measured = False
        estimate.reason = (
            f"the picture's {found} straight edges ask for a lens at the end of the range "
            f"searched (k1 {k1:+.2f}): they are not the scene's straight lines")  # fmt: skip
    elif k2 != 0.0 and not min(config.grid_k2) < k2 < max(config.grid_k2):
        # nor on k2's (k2 is 0 unless the joint stage ran over grid_k2): the lens asked for is
        # beyond what k1 and k2 express (a barrel near its fold), cut short at the bound
        estimate.measured = False
        estimate.reason = (
            f"the picture's {found} straight edges ask for a lens at the end of the range "
            f"searched (k2 {k2:+.2f}): stronger than this correction can express")  # fmt: skip
    elif interval[1] - interval[0] > config.max_interval:
        estimate.measured = False
        estimate.reason = (
            f"the picture's {found} straight edges do not determine the lens: resamples of them "
            f"give a magnification at 0.7 half-widths from the middle of {interval[0]:+.1%} to "
            f"{interval[1]:+.1%} (long straight edges near the sides of the picture are what "
            "shows a lens)")  # fmt: skip
    else:
        estimate.reason = (f"{found} straight edges: k1 {k1:+.2f}, k2 {k2:+.2f} (magnification "
                           f"{strength:+.1%} at 0.7 half-widths, {interval[0]:+.1%} to "
                           f"{interval[1]:+.1%})")  # fmt: skip
    return estimate


def _thin(points: np.ndarray, most: int) -> np.ndarray:
    """At most `most` of a piece's points, evenly chosen (its line is as well measured)."""
    if len(points) <= most:
        return points
    return points[np.linspace(0, len(points) - 1, most).round().astype(int)]


class PictureSampler:
    """Frames of the camera's picture kept for `estimate_lens_from_lines`: every `every`-th
    frame offered, shrunk to grey at most `work_width` wide (about 0.5 MB each). recent=True
    keeps the last `keep` (a live buffer's span); recent=False keeps at most `keep` spread
    evenly over everything offered (a whole video: the stride doubles whenever it is full).
    Deterministic: the same frames offered give the same pictures."""

    def __init__(self, keep: int = 8, every: int = 60, recent: bool = True,
                 work_width: int = LineConfig.work_width):  # fmt: skip
        if keep < 1 or every < 1 or work_width < 16:
            raise DistposeError("a picture sampler keeps >= 1 frame, every >= 1, width >= 16")
        self.keep, self.every, self.recent, self.work_width = keep, every, recent, work_width
        self._stride = every
        self._offered = 0
        self._kept: list[tuple[int, np.ndarray]] = []

    def clear(self) -> None:
        self._stride, self._offered, self._kept = self.every, 0, []

    def wants_next(self) -> bool:
        """Whether the next frame offered will be kept (so a caller can skip preparing it)."""
        return self._offered % self._stride == 0

    def offer(self, image: np.ndarray | None) -> None:
        """image: (H, W, 3) BGR or (H, W) grey uint8, as captured (lens and all); None only
        for a frame `wants_next` declined (it is counted, not kept)."""
        index, self._offered = self._offered, self._offered + 1
        if index % self._stride:
            return
        if image is None:
            raise DistposeError("the picture sampler wanted this frame but got none")
        grey = np.asarray(image)
        if grey.ndim == 3:
            grey = cv2.cvtColor(grey, cv2.COLOR_BGR2GRAY)
        if grey.shape[1] > self.work_width:
            size = (
                self.work_width,
                max(16, round(grey.shape[0] * self.work_width / grey.shape[1])),
            )
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        self._kept.append((index, np.ascontiguousarray(grey)))
        if len(self._kept) > self.keep:
            if self.recent:
                self._kept.pop(0)
            else:
                self._stride *= 2
                self._kept = [(i, g) for i, g in self._kept if i % self._stride == 0]

    def pictures(self) -> list[np.ndarray]:
        """The kept frames, oldest first (a new list; the images are not copied)."""
        return [g for _, g in self._kept]
