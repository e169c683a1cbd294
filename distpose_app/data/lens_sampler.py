"""Random lenses for training (`LensSampler`): the families and coefficient ranges synthetic
webcam views are drawn from, with the fold and corner-shift rejection."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from distpose_app.core.errors import LensError
from distpose_app.lens.models import BrownConrady, KannalaBrandt, Lens, NoLens, is_monotonic

Ranges = dict[str, tuple[float, float]]


def _barrel() -> Ranges:
    return {
        "k1": (-0.5, 0.0),
        "k2": (0.0, 0.1),
        "k3": (-0.02, 0.0),
        "p1": (-0.002, 0.002),
        "p2": (-0.002, 0.002),
    }


def _pincushion() -> Ranges:
    return {
        "k1": (0.0, 0.15),
        "k2": (0.0, 0.05),
        "k3": (0.0, 0.0),
        "p1": (-0.002, 0.002),
        "p2": (-0.002, 0.002),
    }


def _fisheye() -> Ranges:
    return {"k1": (-0.05, 0.1), "k2": (-0.02, 0.02), "k3": (-0.01, 0.01), "k4": (-0.005, 0.005)}


@dataclass(frozen=True)
class LensSampler:
    """Random lenses for training. A family is drawn with the probabilities below, then each
    coefficient uniformly and independently from its range; a lens that folds within the
    requested radius is redrawn within the same family (so wide FOVs get weaker barrel, never a
    folding one). Families: none (ideal pinhole), barrel and pincushion (Brown–Conrady), fisheye
    (Kannala–Brandt with small k)."""

    p_none: float = 0.2
    p_barrel: float = 0.45
    p_pincushion: float = 0.15
    p_fisheye: float = 0.2
    barrel: Ranges = field(default_factory=_barrel)
    pincushion: Ranges = field(default_factory=_pincushion)
    fisheye: Ranges = field(default_factory=_fisheye)
    # Brown lenses may also not move the corner radius by more than this fraction (0.4: at most
    # 20 % of the image diagonal): polynomials that stay monotonic at 120° can otherwise throw
    # the corners by more than the whole diagonal, which no real webcam does.
    max_corner_shift: float = 0.4
    max_tries: int = 10000

    def __post_init__(self) -> None:
        p = np.array([self.p_none, self.p_barrel, self.p_pincushion, self.p_fisheye])
        if (p < 0).any() or not math.isclose(p.sum(), 1.0, abs_tol=1e-9):
            raise LensError(f"lens sampler probabilities {p.tolist()} must be ≥ 0 and sum to 1")

    def _family_names(self) -> tuple[str, ...]:
        return ("none", "barrel", "pincushion", "fisheye")

    def _draw(self, rng: np.random.Generator, family: str) -> Lens:
        if family == "none":
            return NoLens()
        ranges: Ranges = getattr(self, family)
        values = [rng.uniform(lo, hi) for lo, hi in ranges.values()]
        return KannalaBrandt(*values) if family == "fisheye" else BrownConrady(*values)

    def sample(self, rng: np.random.Generator, max_radius: float) -> Lens:
        """One lens that stays monotonic within ideal radius `max_radius` (normalised camera
        units, e.g. `Intrinsics.corner_radius`). Deterministic given the generator's state."""
        probs = [self.p_none, self.p_barrel, self.p_pincushion, self.p_fisheye]
        family = self._family_names()[rng.choice(4, p=probs)]
        for _ in range(self.max_tries):
            lens = self._draw(rng, family)
            if isinstance(lens, BrownConrady):
                shift = abs(lens._radial(max_radius)[0] / max_radius - 1.0)
                if shift > self.max_corner_shift:
                    continue
            if is_monotonic(lens, max_radius):
                return lens
        return NoLens()  # no admissible lens of this family at this FOV

    def describe(self) -> dict[str, Any]:
        """JSON-able description of the distribution (stored in model metadata)."""
        fams: dict[str, Any] = {"none": {"p": self.p_none, "model": "none"}}
        for name, model in (("barrel", "brown"), ("pincushion", "brown"), ("fisheye", "fisheye")):
            fams[name] = {
                "p": getattr(self, f"p_{name}"),
                "model": model,
                "uniform": {k: [lo, hi] for k, (lo, hi) in getattr(self, name).items()},
            }
        return {
            "families": fams,
            "max_corner_shift": self.max_corner_shift,
            "rejection": "redraw within the family until monotonic over the camera's corner "
            "radius R and, for Brown, |r_d(R)/R - 1| <= max_corner_shift",
        }

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> LensSampler:
        """Inverse of `describe`."""
        f = d["families"]

        def ranges(name: str) -> Ranges:
            return {k: (float(lo), float(hi)) for k, (lo, hi) in f[name]["uniform"].items()}

        return cls(
            p_none=f["none"]["p"],
            p_barrel=f["barrel"]["p"],
            p_pincushion=f["pincushion"]["p"],
            p_fisheye=f["fisheye"]["p"],
            barrel=ranges("barrel"),
            pincushion=ranges("pincushion"),
            fisheye=ranges("fisheye"),
            max_corner_shift=float(d.get("max_corner_shift", 0.4)),
        )

    def contains(self, lens: Lens, tol: float = 1e-12) -> bool:
        """True when `lens` lies inside the sampled support (ignoring the monotonic rejection):
        its model is a family with p > 0 and every coefficient is within that family's range."""

        def inside(family: str) -> bool:
            ranges: Ranges = getattr(self, family)
            return getattr(self, f"p_{family}") > 0 and all(
                lo - tol <= lens.params[k] <= hi + tol for k, (lo, hi) in ranges.items()
            )

        if isinstance(lens, NoLens):
            return self.p_none > 0 or self.contains(BrownConrady(), tol)
        if isinstance(lens, KannalaBrandt):
            return inside("fisheye")
        if isinstance(lens, BrownConrady):
            return inside("barrel") or inside("pincushion")
        return False
