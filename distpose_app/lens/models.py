"""Pinhole intrinsics and lens distortion models (Brown-Conrady, Kannala-Brandt, division), their
inverses, projection of points and pixels through a lens, and the fold (monotonicity) check.

Distortion acts on *normalised camera coordinates* `(x/z, y/z)` of an ideal pinhole, shape
`(..., 2)`, in OpenCV's conventions exactly:

- Brown–Conrady (`cv2.projectPoints`): with r² = x² + y²,
  `x_d = x·(1 + k1 r² + k2 r⁴ + k3 r⁶) + 2 p1 x y + p2 (r² + 2x²)`,
  `y_d = y·(1 + k1 r² + k2 r⁴ + k3 r⁶) + p1 (r² + 2y²) + 2 p2 x y`.
  (VideoPose3D's `project_to_2d` uses Human3.6M's different tangential form; we do not.)
- Kannala–Brandt (`cv2.fisheye`): θ = atan(r), θ_d = θ (1 + k1 θ² + k2 θ⁴ + k3 θ⁶ + k4 θ⁸),
  `(x_d, y_d) = (θ_d / r) · (x, y)`. All k = 0 is the ideal equidistant fisheye.
- Division (Fitzgibbon 2001, one parameter): `(x, y) = (x_d, y_d) / (1 + λ r_d²)`, r_d the
  distorted radius. No OpenCV model; the training sampler never draws it (an "out" lens).

Pixels are `K @ distorted`. Numpy functions work in float64; the `*_torch` functions keep the
input's dtype and device and are differentiable. torch is imported lazily so that the CLI stays
quick to start.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from distpose_app.core.errors import LensError
from distpose_app.core.validate import HFOV_RANGE_DEG

if TYPE_CHECKING:
    import torch

_NEWTON_ITERS = 60
# Largest |coefficient| a lens string or calibration may hold. Real lenses stay within about
# ±10 (OpenCV calibrations of wide lenses reach a few units in k3); beyond this the polynomials
# overflow within the image and the fold and undistortion maths fail.
MAX_COEFFICIENT = 1000.0


def check_coefficients(name: str, values) -> None:
    """LensError unless every coefficient is finite and within ±MAX_COEFFICIENT."""
    for i, v in enumerate(values, start=1):
        if not (math.isfinite(v) and abs(v) <= MAX_COEFFICIENT):
            raise LensError(f"{name} coefficient {i} ({v:g}) is outside ±{MAX_COEFFICIENT:g}: "
                            "no real lens has it")  # fmt: skip


# --------------------------------------------------------------------------------------------
# Intrinsics
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics: focal lengths fx, fy and principal point cx, cy in pixels; image width
    and height in pixels. Pixel (0, 0) is the top-left corner of the top-left pixel."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def matrix(self) -> np.ndarray:
        """The (3, 3) camera matrix K, pixels."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @classmethod
    def from_hfov(
        cls,
        hfov_deg: float,
        width: int,
        height: int,
        cx: float | None = None,
        cy: float | None = None,
    ) -> Intrinsics:
        """Square-pixel intrinsics whose ideal pinhole sees `hfov_deg` degrees across `width`
        pixels; the principal point defaults to the image centre (width/2, height/2)."""
        lo, hi = HFOV_RANGE_DEG
        if not lo <= hfov_deg <= hi:
            raise LensError(f"horizontal field of view {hfov_deg}° is not in [{lo:g}°, {hi:g}°]")
        if width <= 0 or height <= 0:
            raise LensError(f"image size {width}x{height} is not positive")
        f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(
            f,
            f,
            width / 2.0 if cx is None else float(cx),
            height / 2.0 if cy is None else float(cy),
            int(width),
            int(height),
        )

    @classmethod
    def from_array(cls, k, size) -> Intrinsics:
        """From the arrays datasets store: k (4,) fx, fy, cx, cy and size (2,) width, height."""
        fx, fy, cx, cy = (float(v) for v in k)
        return cls(fx, fy, cx, cy, int(size[0]), int(size[1]))

    @property
    def hfov_deg(self) -> float:
        """Horizontal field of view of the ideal pinhole through the principal point, degrees."""
        return math.degrees(
            math.atan(self.cx / self.fx) + math.atan((self.width - self.cx) / self.fx)
        )

    @property
    def corner_radius(self) -> float:
        """Radius in normalised camera coordinates of the farthest image corner: the range over
        which a lens must stay monotonic for this camera."""
        xs = (np.array([0.0, self.width]) - self.cx) / self.fx
        ys = (np.array([0.0, self.height]) - self.cy) / self.fy
        return float(np.hypot(*np.meshgrid(xs, ys)).max())

    def to_normalized(self, px: np.ndarray) -> np.ndarray:
        """Pixels (..., 2) → normalised camera coordinates (..., 2)."""
        px = np.asarray(px, dtype=np.float64)
        return (px - [self.cx, self.cy]) / [self.fx, self.fy]

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """Normalised camera coordinates (..., 2) → pixels (..., 2)."""
        xy = np.asarray(xy, dtype=np.float64)
        return xy * [self.fx, self.fy] + [self.cx, self.cy]


# --------------------------------------------------------------------------------------------
# Lenses
# --------------------------------------------------------------------------------------------
def _fmt(v: float) -> str:
    """Shortest string that parses back to exactly v ('0' rather than '0.0')."""
    s = repr(float(v))
    return s[:-2] if s.endswith(".0") else s


def _first_positive_root(coeffs_low_to_high: list[float]) -> float:
    """Smallest real positive root of a polynomial given lowest degree first, or inf."""
    c = np.trim_zeros(np.asarray(coeffs_low_to_high, dtype=np.float64), "b")
    if len(c) <= 1:
        return math.inf
    roots = np.roots(c[::-1])
    real = roots[(np.abs(roots.imag) <= 1e-9 * np.maximum(1.0, np.abs(roots))) & (roots.real > 0)]
    return float(real.real.min()) if len(real) else math.inf


class Lens(ABC):
    """A distortion model on normalised camera coordinates (x/z, y/z) of shape (..., 2)."""

    @abstractmethod
    def distort(self, xy: np.ndarray) -> np.ndarray:
        """Ideal normalised coordinates (..., 2) → distorted normalised coordinates (..., 2)."""

    @abstractmethod
    def undistort(self, xy: np.ndarray) -> np.ndarray:
        """Distorted normalised coordinates (..., 2) → ideal ones (..., 2); NaN where no ideal
        point inside the lens's monotonic range maps there."""

    @abstractmethod
    def distort_torch(self, xy: torch.Tensor) -> torch.Tensor:
        """Differentiable `distort` on a tensor (..., 2), same dtype and device."""

    @abstractmethod
    def undistort_torch(self, xy: torch.Tensor) -> torch.Tensor:
        """Differentiable `undistort` on a tensor (..., 2): solved without gradient, then one
        Newton step with gradient (so d/dxy is the inverse Jacobian). Points outside the
        monotonic range are clamped to its edge instead of NaN."""

    @abstractmethod
    def spec(self) -> str:
        """The lens string that `parse_lens` turns back into an equal lens."""

    @property
    def params(self) -> dict[str, float]:
        """Named coefficients: the dataclass fields in order (empty for NoLens)."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]  # every concrete Lens is a dataclass

    @property
    def is_identity(self) -> bool:
        """True when distort is the identity map."""
        return all(v == 0.0 for v in self.params.values()) and not isinstance(self, KannalaBrandt)

    @abstractmethod
    def fold_radius(self) -> float:
        """Radius r (normalised ideal units) where the radial map r → r_d first stops increasing
        (inf if never). Ignores tangential terms; see `is_monotonic`."""


@dataclass(frozen=True)
class NoLens(Lens):
    """The ideal pinhole: no distortion."""

    def distort(self, xy: np.ndarray) -> np.ndarray:
        return np.array(xy, dtype=np.float64)

    def undistort(self, xy: np.ndarray) -> np.ndarray:
        return np.array(xy, dtype=np.float64)

    def distort_torch(self, xy: torch.Tensor) -> torch.Tensor:
        return xy.clone()

    def undistort_torch(self, xy: torch.Tensor) -> torch.Tensor:
        return xy.clone()

    def spec(self) -> str:
        return "none"

    def fold_radius(self) -> float:
        return math.inf

    def __str__(self) -> str:
        return "no distortion (ideal pinhole)"


@dataclass(frozen=True)
class BrownConrady(Lens):
    """Brown–Conrady radial k1, k2, k3 and tangential p1, p2, OpenCV's convention. Note OpenCV's
    coefficient vector order is (k1, k2, p1, p2, k3): see `opencv_coeffs`."""

    k1: float = 0.0
    k2: float = 0.0
    k3: float = 0.0
    p1: float = 0.0
    p2: float = 0.0

    def opencv_coeffs(self) -> np.ndarray:
        """(5,) distCoeffs for cv2: k1, k2, p1, p2, k3."""
        return np.array([self.k1, self.k2, self.p1, self.p2, self.k3])

    def spec(self) -> str:
        return "brown:" + ",".join(_fmt(v) for v in self.params.values())

    def __str__(self) -> str:
        return "Brown-Conrady " + ", ".join(f"{k}={_fmt(v)}" for k, v in self.params.items())

    @property
    def has_tangential(self) -> bool:
        return self.p1 != 0.0 or self.p2 != 0.0

    def _radial(self, r: Any) -> Any:
        """r_d(r) = r (1 + k1 r² + k2 r⁴ + k3 r⁶) and its derivative, numpy or torch."""
        s = r * r
        f = r * (1.0 + s * (self.k1 + s * (self.k2 + s * self.k3)))
        df = 1.0 + s * (3.0 * self.k1 + s * (5.0 * self.k2 + s * 7.0 * self.k3))
        return f, df

    def fold_radius(self) -> float:
        # d r_d / d r = 1 + 3 k1 s + 5 k2 s² + 7 k3 s³ with s = r².
        s = _first_positive_root([1.0, 3.0 * self.k1, 5.0 * self.k2, 7.0 * self.k3])
        return math.sqrt(s)

    def _distort_xy(self, x: Any, y: Any) -> tuple[Any, Any]:
        s = x * x + y * y
        radial = 1.0 + s * (self.k1 + s * (self.k2 + s * self.k3))
        xd = x * radial + 2.0 * self.p1 * x * y + self.p2 * (s + 2.0 * x * x)
        yd = y * radial + self.p1 * (s + 2.0 * y * y) + 2.0 * self.p2 * x * y
        return xd, yd

    def _jacobian(self, x: Any, y: Any) -> tuple[Any, Any, Any, Any]:
        """Entries (dxd/dx, dxd/dy, dyd/dx, dyd/dy) of the distortion's 2x2 Jacobian."""
        s = x * x + y * y
        radial = 1.0 + s * (self.k1 + s * (self.k2 + s * self.k3))
        dradial = self.k1 + s * (2.0 * self.k2 + s * 3.0 * self.k3)  # d radial / d s
        a = radial + 2.0 * x * x * dradial + 2.0 * self.p1 * y + 6.0 * self.p2 * x
        b = 2.0 * x * y * dradial + 2.0 * self.p1 * x + 2.0 * self.p2 * y
        c = 2.0 * x * y * dradial + 2.0 * self.p1 * x + 2.0 * self.p2 * y
        d = radial + 2.0 * y * y * dradial + 6.0 * self.p1 * y + 2.0 * self.p2 * x
        return a, b, c, d

    def jacobian_det(self, xy: np.ndarray) -> np.ndarray:
        """Determinant of d(distorted)/d(ideal) at ideal points (..., 2) → (...)."""
        xy = np.asarray(xy, dtype=np.float64)
        a, b, c, d = self._jacobian(xy[..., 0], xy[..., 1])
        return a * d - b * c

    def distort(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack(self._distort_xy(xy[..., 0], xy[..., 1]), axis=-1)

    def distort_torch(self, xy: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.stack(self._distort_xy(xy[..., 0], xy[..., 1]), dim=-1)

    def _newton2d(self, x: Any, y: Any, xd: Any, yd: Any) -> tuple[Any, Any]:
        """One Newton step of distort(x, y) = (xd, yd); numpy or torch."""
        fx, fy = self._distort_xy(x, y)
        ex, ey = fx - xd, fy - yd
        a, b, c, d = self._jacobian(x, y)
        det = a * d - b * c
        return x - (d * ex - b * ey) / det, y - (a * ey - c * ex) / det

    def undistort(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        r_d = np.hypot(xy[..., 0], xy[..., 1])
        fold = self.fold_radius()
        r, reachable = _solve_radial_np(self._radial, r_d, fold)
        scale = np.where(r_d > 0, r / np.where(r_d > 0, r_d, 1.0), 1.0)
        x, y = xy[..., 0] * scale, xy[..., 1] * scale
        if not self.has_tangential:
            return np.where(reachable[..., None], np.stack([x, y], axis=-1), np.nan)
        # The radial solution (clamped at the fold) is an excellent start; full 2D Newton
        # absorbs p1, p2. Near the fold the Jacobian is nearly singular, hence many iterations.
        xd, yd = xy[..., 0], xy[..., 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            for _ in range(100):
                xn, yn = self._newton2d(x, y, xd, yd)
                step = np.abs(np.stack([xn - x, yn - y]))
                x, y = xn, yn
                if not (step > 1e-15 * np.maximum(1.0, np.abs(x))).any():
                    break
            ex, ey = self._distort_xy(x, y)
            ok = (np.hypot(ex - xd, ey - yd) <= 1e-10) & (np.hypot(x, y) < fold)
        return np.where(ok[..., None], np.stack([x, y], axis=-1), np.nan)

    def undistort_torch(self, xy: torch.Tensor) -> torch.Tensor:
        import torch

        xd, yd = xy[..., 0], xy[..., 1]
        with torch.no_grad():
            r_d = torch.hypot(xd, yd)
            r = _solve_radial_torch(self._radial, r_d, self.fold_radius())
            scale = torch.where(r_d > 0, r / torch.where(r_d > 0, r_d, 1.0), 1.0)
            x, y = xr, yr = xd * scale, yd * scale
            eps = torch.finfo(xy.dtype).eps
            if self.has_tangential:
                for _ in range(100):
                    xn, yn = self._newton2d(x, y, xd, yd)
                    # Keep the previous iterate where the step degenerates (at the fold).
                    good = torch.isfinite(xn) & torch.isfinite(yn)
                    step = torch.where(good, (xn - x).abs() + (yn - y).abs(), 0.0)
                    x, y = torch.where(good, xn, x), torch.where(good, yn, y)
                    if not float(step.max()) > 4 * eps:
                        break
            # Converged away from the fold: safe for the final, differentiable Newton step.
            ex, ey = self._distort_xy(x, y)
            a, b, c, d = self._jacobian(x, y)
            ok = (torch.hypot(ex - xd, ey - yd) <= 64 * eps * (1 + r_d)) & (a * d - b * c > 1e-3)
            ok &= torch.hypot(x, y) < self.fold_radius()  # beyond: a folded-over preimage
            x0, y0 = torch.where(ok, x, 0.0), torch.where(ok, y, 0.0)
        # One Newton step with gradient: at the root it has the implicit-function derivative
        # (the inverse Jacobian). Unreachable points get the radial solution clamped at the
        # fold, without gradient.
        xn, yn = self._newton2d(x0, y0, xd, yd)
        return torch.stack([torch.where(ok, xn, xr), torch.where(ok, yn, yr)], dim=-1)


@dataclass(frozen=True)
class KannalaBrandt(Lens):
    """Kannala–Brandt fisheye as `cv2.fisheye`: θ_d = θ (1 + k1 θ² + k2 θ⁴ + k3 θ⁶ + k4 θ⁸)."""

    k1: float = 0.0
    k2: float = 0.0
    k3: float = 0.0
    k4: float = 0.0

    def opencv_coeffs(self) -> np.ndarray:
        """(4,) D for cv2.fisheye: k1, k2, k3, k4."""
        return np.array([self.k1, self.k2, self.k3, self.k4])

    def spec(self) -> str:
        return "fisheye:" + ",".join(_fmt(v) for v in self.params.values())

    def __str__(self) -> str:
        return "Kannala-Brandt fisheye " + ", ".join(
            f"{k}={_fmt(v)}" for k, v in self.params.items()
        )

    def _theta_d(self, t: Any) -> Any:
        """θ_d(θ) and its derivative, numpy or torch."""
        s = t * t
        f = t * (1.0 + s * (self.k1 + s * (self.k2 + s * (self.k3 + s * self.k4))))
        df = 1.0 + s * (
            3.0 * self.k1 + s * (5.0 * self.k2 + s * (7.0 * self.k3 + s * 9.0 * self.k4))
        )
        return f, df

    def theta_fold(self) -> float:
        """Incidence angle θ (radians) where θ_d stops increasing, capped at π/2 (the plane z=0,
        beyond which normalised coordinates do not exist)."""
        s = _first_positive_root([1.0, 3 * self.k1, 5 * self.k2, 7 * self.k3, 9 * self.k4])
        return min(math.sqrt(s), math.pi / 2)

    def fold_radius(self) -> float:
        t = self.theta_fold()
        return math.inf if t >= math.pi / 2 else math.tan(t)

    def distort(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        r = np.hypot(xy[..., 0], xy[..., 1])
        theta_d, _ = self._theta_d(np.arctan(r))
        # θ_d / r → 1 as r → 0.
        scale = np.where(r > 1e-12, theta_d / np.where(r > 1e-12, r, 1.0), 1.0)
        return xy * scale[..., None]

    def distort_torch(self, xy: torch.Tensor) -> torch.Tensor:
        import torch

        r = torch.linalg.vector_norm(xy, dim=-1)
        small = r <= 1e-12
        r_safe = torch.where(small, torch.ones_like(r), r)  # keeps gradients finite at r = 0
        theta_d, _ = self._theta_d(torch.atan(r_safe))
        scale = torch.where(small, torch.ones_like(r), theta_d / r_safe)
        return xy * scale[..., None]

    def undistort(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        theta_d = np.hypot(xy[..., 0], xy[..., 1])
        theta, reachable = _solve_radial_np(self._theta_d, theta_d, self.theta_fold())
        theta = np.where(reachable, theta, np.nan)
        with np.errstate(invalid="ignore", over="ignore"):
            r = np.where(theta < math.pi / 2, np.tan(theta), np.nan)
        scale = np.where(theta_d > 1e-12, r / np.where(theta_d > 1e-12, theta_d, 1.0), 1.0)
        return xy * scale[..., None]

    def undistort_torch(self, xy: torch.Tensor) -> torch.Tensor:
        import torch

        theta_d = torch.linalg.vector_norm(xy, dim=-1)
        with torch.no_grad():
            # Stay a hair inside π/2 so tan() is finite for clamped points.
            theta = _solve_radial_torch(self._theta_d, theta_d, min(self.theta_fold(), 1.5707))
            f, df = self._theta_d(theta)
            eps = torch.finfo(xy.dtype).eps
            ok = ((f - theta_d).abs() <= 64 * eps * (1 + theta_d)) & (df > 1e-3)
            df = torch.where(ok, df, 1.0)
        # One differentiable Newton step in θ (d θ / d θ_d = 1 / θ_d'(θ)), then r = tan θ.
        theta = torch.where(ok, theta - (f - theta_d) / df, theta)
        small = theta_d <= 1e-12
        td_safe = torch.where(small, 1.0, theta_d)
        scale = torch.where(small, 1.0, torch.tan(theta) / td_safe)
        return xy * scale[..., None]


@dataclass(frozen=True)
class EquidistantFisheye(KannalaBrandt):
    """The ideal equidistant fisheye r_d = θ (Kannala–Brandt with all k = 0)."""

    k1: float = field(default=0.0, init=False)
    k2: float = field(default=0.0, init=False)
    k3: float = field(default=0.0, init=False)
    k4: float = field(default=0.0, init=False)

    def spec(self) -> str:
        return "fisheye"

    def __str__(self) -> str:
        return "equidistant fisheye (r_d = theta)"


@dataclass(frozen=True)
class Division(Lens):
    """Fitzgibbon's one-parameter division model (CVPR 2001): with r_d² = x_d² + y_d²,
    `(x, y) = (x_d, y_d) / (1 + λ r_d²)`. λ < 0 is barrel, λ > 0 pincushion.

    Both directions are closed form: undistort is the definition; distort solves the quadratic
    λ r r_d² − r_d + r = 0 for its small root, written r_d = 2 r / (1 + √(1 − 4 λ r²)) so that it
    stays exact at λ = 0. For λ > 0 the map r → r_d ends at r = 1 / (2√λ) (r_d = 1/√λ), the fold;
    for λ < 0 it never folds but the whole plane lands inside r_d < 1/√(−λ)."""

    lam: float = 0.0

    @property
    def params(self) -> dict[str, float]:
        return {"lambda": self.lam}

    def spec(self) -> str:
        return f"division:{_fmt(self.lam)}"

    def __str__(self) -> str:
        return f"division model lambda={_fmt(self.lam)}"

    def fold_radius(self) -> float:
        return 0.5 / math.sqrt(self.lam) if self.lam > 0 else math.inf

    def _distorted_edge2(self) -> float:
        """Largest r_d² that an ideal point maps to (inf when none bounds it)."""
        return 1.0 / abs(self.lam) if self.lam != 0 else math.inf

    def distort(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        disc = 1.0 - 4.0 * self.lam * np.sum(xy * xy, axis=-1)
        with np.errstate(invalid="ignore"):
            scale = np.where(disc >= 0, 2.0 / (1.0 + np.sqrt(np.maximum(disc, 0.0))), np.nan)
        return xy * scale[..., None]

    def undistort(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        s = np.sum(xy * xy, axis=-1)
        # λ > 0: beyond r_d = 1/√λ lies the folded branch; λ < 0: r_d ≥ 1/√(−λ) is the image of
        # infinity and beyond. Neither has an ideal point inside the monotonic range.
        ok = s < self._distorted_edge2() if self.lam < 0 else s <= self._distorted_edge2()
        with np.errstate(divide="ignore", invalid="ignore"):
            out = xy / (1.0 + self.lam * s)[..., None]
        return np.where(ok[..., None], out, np.nan)

    def distort_torch(self, xy: torch.Tensor) -> torch.Tensor:
        import torch

        disc = torch.clamp(1.0 - 4.0 * self.lam * (xy * xy).sum(-1), min=1e-12)
        return xy * (2.0 / (1.0 + torch.sqrt(disc)))[..., None]

    def undistort_torch(self, xy: torch.Tensor) -> torch.Tensor:
        import torch

        s = (xy * xy).sum(-1)
        if self.lam == 0:
            return xy.clone()
        # Clamp to the edge of the monotonic range (just inside the pole for λ < 0).
        s_max = self._distorted_edge2() * (1.0 if self.lam > 0 else 0.99)
        over = s > s_max
        shrink = torch.where(over, torch.sqrt(s_max / torch.where(over, s, 1.0)), 1.0)
        s = torch.clamp(s, max=s_max)
        return xy * (shrink / (1.0 + self.lam * s))[..., None]


def _solve_radial_np(fn, target: np.ndarray, hi_limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Solve fn(r)[0] = target for r in [0, hi_limit] where fn is increasing: Newton steps
    safeguarded by bisection on a bracket. Returns r (hi_limit where unreachable) and a mask of
    targets that are reachable (target ≤ fn(hi_limit))."""
    target = np.asarray(target, dtype=np.float64)
    if math.isinf(hi_limit):
        # fn increases without bound: grow the bracket until it holds the root.
        hi = np.maximum(target, 1.0)
        for _ in range(200):
            f_hi, _ = fn(hi)
            short = f_hi < target
            if not short.any():
                break
            hi = np.where(short, hi * 2.0, hi)
        reachable = np.ones(target.shape, dtype=bool)
    else:
        hi = np.full(target.shape, hi_limit)
        f_hi, _ = fn(hi_limit)
        reachable = target <= f_hi
    lo = np.zeros(target.shape)
    r = np.clip(target, lo, hi)
    for _ in range(_NEWTON_ITERS):
        f, df = fn(r)
        err = f - target
        hi = np.where(err > 0, r, hi)
        lo = np.where(err <= 0, r, lo)
        with np.errstate(divide="ignore", invalid="ignore"):
            r_new = r - err / df
        bad = ~np.isfinite(r_new) | (r_new <= lo) | (r_new >= hi)
        r_new = np.where(bad, 0.5 * (lo + hi), r_new)
        done = np.abs(r_new - r) <= 1e-16 * np.maximum(1.0, r)
        r = r_new
        if done.all():
            break
    return r, reachable


def _solve_radial_torch(fn, target: torch.Tensor, hi_limit: float) -> torch.Tensor:
    """Torch twin of `_solve_radial_np` without gradient; clamps unreachable targets to the
    bracket's edge rather than returning NaN."""
    import torch

    if math.isinf(hi_limit):
        hi = torch.clamp(target, min=1.0)
        for _ in range(200):
            short = fn(hi)[0] < target
            if not bool(short.any()):
                break
            hi = torch.where(short, hi * 2.0, hi)
    else:
        hi = torch.full_like(target, hi_limit)
    lo = torch.zeros_like(target)
    r = torch.minimum(target, hi)
    for i in range(_NEWTON_ITERS):
        f, df = fn(r)
        err = f - target
        hi = torch.where(err > 0, r, hi)
        lo = torch.where(err <= 0, r, lo)
        r_new = r - err / df
        bad = ~torch.isfinite(r_new) | (r_new <= lo) | (r_new >= hi)
        r_new = torch.where(bad, 0.5 * (lo + hi), r_new)
        step = (r_new - r).abs().max() if r.numel() else 0.0
        r = r_new
        if i % 4 == 3 and not float(step) > 4 * torch.finfo(r.dtype).eps:
            break
    return r


# --------------------------------------------------------------------------------------------
# Pixels and projection
# --------------------------------------------------------------------------------------------
def project_points(points_cam: np.ndarray, intrinsics: Intrinsics, lens: Lens) -> np.ndarray:
    """Camera-frame points (..., 3), metres, z > 0 (x right, y down, z forward) → pixels (..., 2)
    through the lens. Equals cv2.projectPoints / cv2.fisheye.projectPoints with rvec = tvec = 0."""
    p = np.asarray(points_cam, dtype=np.float64)
    return intrinsics.to_pixels(lens.distort(p[..., :2] / p[..., 2:3]))


def distort_pixels(px: np.ndarray, intrinsics: Intrinsics, lens: Lens) -> np.ndarray:
    """Where an ideal-pinhole pixel (..., 2) lands through the lens, pixels (..., 2), same K."""
    return intrinsics.to_pixels(lens.distort(intrinsics.to_normalized(px)))


def undistort_pixels(px: np.ndarray, intrinsics: Intrinsics, lens: Lens) -> np.ndarray:
    """Distorted-image pixels (..., 2) → ideal-pinhole pixels (..., 2) with the same K."""
    return intrinsics.to_pixels(lens.undistort(intrinsics.to_normalized(px)))


def _k_torch(px: torch.Tensor, intrinsics: Intrinsics) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    f = torch.tensor([intrinsics.fx, intrinsics.fy], dtype=px.dtype, device=px.device)
    c = torch.tensor([intrinsics.cx, intrinsics.cy], dtype=px.dtype, device=px.device)
    return f, c


def project_points_torch(
    points_cam: torch.Tensor, intrinsics: Intrinsics, lens: Lens
) -> torch.Tensor:
    """Differentiable `project_points`: (..., 3) metres → (..., 2) pixels."""
    f, c = _k_torch(points_cam, intrinsics)
    return lens.distort_torch(points_cam[..., :2] / points_cam[..., 2:3]) * f + c


def undistort_pixels_torch(px: torch.Tensor, intrinsics: Intrinsics, lens: Lens) -> torch.Tensor:
    """Differentiable `undistort_pixels`: (..., 2) pixels → (..., 2) pixels."""
    f, c = _k_torch(px, intrinsics)
    return lens.undistort_torch((px - c) / f) * f + c


# --------------------------------------------------------------------------------------------
# Monotonicity, displacement
# --------------------------------------------------------------------------------------------
def is_monotonic(lens: Lens, max_radius: float, grid: int = 64) -> bool:
    """True when the lens does not fold the image within ideal radius `max_radius` (normalised
    camera units, e.g. `Intrinsics.corner_radius`): r_d strictly increasing in r on
    [0, max_radius] (exact, from the derivative polynomial's roots) and, with tangential terms,
    the Jacobian determinant > 0 on a grid x grid lattice over that disc."""
    if not lens.fold_radius() > max_radius:
        return False
    if isinstance(lens, BrownConrady) and lens.has_tangential:
        t = np.linspace(-max_radius, max_radius, grid)
        xy = np.stack(np.meshgrid(t, t), axis=-1).reshape(-1, 2)
        xy = xy[np.hypot(xy[:, 0], xy[:, 1]) <= max_radius]
        if not (lens.jacobian_det(xy) > 0).all():
            return False
    return True


def corner_displacement(
    lens: Lens, hfov_deg: float = 90.0, width: int = 1920, height: int = 1080
) -> float:
    """Fraction of the image diagonal by which the lens moves the image corners: the largest
    |distorted corner − ideal corner| in pixels over the four corners, divided by the diagonal in
    pixels, for a centred square-pixel camera of `hfov_deg` horizontal FOV and width x height."""
    k = Intrinsics.from_hfov(hfov_deg, width, height)
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], dtype=np.float64)
    moved = np.linalg.norm(distort_pixels(corners, k, lens) - corners, axis=-1)
    return float(moved.max() / math.hypot(width, height))
