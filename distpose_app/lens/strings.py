"""Lens strings (`none`, `brown:k1,...`, `fisheye:...`, `division:lambda`, presets): `parse_lens`,
the inverse of `Lens.spec`, and the named `PRESETS` (docs/lenses.md gives their measured corner
displacements)."""

from __future__ import annotations

import math

from distpose_app.core.errors import LensError
from distpose_app.lens.models import (
    BrownConrady,
    Division,
    EquidistantFisheye,
    KannalaBrandt,
    Lens,
    NoLens,
    check_coefficients,
    is_monotonic,
)

# Radius (normalised camera units) over which parse_lens checks for folding when the caller gives
# no field of view: r = 0.5 is a 47° horizontal FOV at 16:9; a lens folding inside it is useless.
DEFAULT_CHECK_RADIUS = 0.5

PRESETS: dict[str, Lens] = {
    # Barrel presets: about 3 %, 8 %, 15 % of the diagonal at the corners of a 90° 16:9 camera
    # (measured values in docs/lenses.md); the k2 > 0 in `strong` keeps it monotonic over 90°.
    "mild": BrownConrady(k1=-0.046),
    "moderate": BrownConrady(k1=-0.135, k2=0.01),
    "strong": BrownConrady(k1=-0.31, k2=0.062),
    "pincushion": BrownConrady(k1=0.08),
    "fisheye": EquidistantFisheye(),
}

_SYNTAX = (
    "expected 'none', 'brown:k1[,k2,k3,p1,p2]', 'fisheye[:k1,k2,k3,k4]', 'division:lambda' or a "
    "preset (" + ", ".join(PRESETS) + ")"
)


def _parse_values(name: str, rest: str, most: int, names: str) -> list[float]:
    parts = [p.strip() for p in rest.split(",")] if rest.strip() else []
    if len(parts) > most:
        raise LensError(f"{name} takes at most {most} values ({names}), got {len(parts)}")
    values = []
    for i, p in enumerate(parts, start=1):
        try:
            v = float(p)
        except ValueError:
            raise LensError(f"{name} value {i} ({p!r}) is not a number") from None
        if not math.isfinite(v):
            raise LensError(f"{name} value {i} ({p!r}) is not finite")
        values.append(v)
    check_coefficients(name, values)
    return values + [0.0] * (most - len(values))


def parse_lens(text: str, max_radius: float | None = DEFAULT_CHECK_RADIUS) -> Lens:
    """Lens from a user string: `none`, `brown:k1,k2,k3,p1,p2` (fewer values allowed, missing
    ones are 0), `fisheye:k1,k2,k3,k4` (`fisheye` or `fisheye:` alone is the equidistant fisheye),
    `division:lambda` (Fitzgibbon's division model), or a preset name (`PRESETS`). Case and
    spaces are ignored. Raises LensError naming the problem, also when the lens folds within
    ideal radius `max_radius` (None: no check)."""
    if not isinstance(text, str) or not text.strip():
        raise LensError(f"empty lens string; {_SYNTAX}")
    s = "".join(text.split()).lower()
    name, colon, rest = s.partition(":")
    if name == "none":
        if rest:
            raise LensError("'none' takes no values")
        lens: Lens = NoLens()
    elif name == "brown":
        if not rest:
            raise LensError("brown needs 1 to 5 values: brown:k1[,k2,k3,p1,p2]")
        lens = BrownConrady(*_parse_values("brown", rest, 5, "k1,k2,k3,p1,p2"))
    elif name == "fisheye" and colon:
        values = _parse_values("fisheye", rest, 4, "k1,k2,k3,k4")
        lens = KannalaBrandt(*values) if rest else EquidistantFisheye()
    elif name == "division":
        if not rest:
            raise LensError("division needs its one value: division:lambda")
        lens = Division(*_parse_values("division", rest, 1, "lambda"))
    elif name in PRESETS:
        if colon:
            raise LensError(f"preset '{name}' takes no values")
        lens = PRESETS[name]
    else:
        raise LensError(f"unknown lens {name!r}; {_SYNTAX}")
    if max_radius is not None and not is_monotonic(lens, max_radius):
        raise LensError(
            f"lens {text.strip()!r} folds the image: it stops being monotonic at r = "
            f"{min(lens.fold_radius(), max_radius):.3g} (normalised), inside r = {max_radius:.3g}"
        )
    return lens
