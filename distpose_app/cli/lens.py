"""`distpose lens SPEC`: parse a lens string and describe what it does to a camera's image."""

from __future__ import annotations

import argparse

from distpose_app.core import validate as v


def _size(text: str) -> tuple[int, int]:
    """'1920x1080' → (1920, 1080); argparse turns the ValueError into a one-line error."""
    w, sep, h = text.lower().partition("x")
    try:
        size = int(w), int(h)
    except ValueError:
        size = (0, 0)
    if not sep or min(size) <= 0 or max(size) > 100_000:
        raise argparse.ArgumentTypeError(f"image size {text!r} is not WIDTHxHEIGHT, e.g. 1920x1080")
    return size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "spec",
        metavar="SPEC",
        help="none, brown:k1[,k2,k3,p1,p2], fisheye[:k1,k2,k3,k4], mild, moderate, strong, "
        "pincushion or fisheye",
    )
    parser.add_argument(
        "--hfov",
        type=v.hfov_degrees,
        default=90.0,
        help="horizontal field of view, degrees (default 90)",
    )
    parser.add_argument(
        "--size", type=_size, default=(1920, 1080), help="image WIDTHxHEIGHT (default 1920x1080)"
    )


def run(args: argparse.Namespace) -> int:
    from distpose_app.lens import models as L
    from distpose_app.lens.strings import parse_lens

    width, height = args.size
    k = L.Intrinsics.from_hfov(args.hfov, width, height)
    # Folding is reported below rather than refused, so only syntax is checked here.
    lens = parse_lens(args.spec, max_radius=None)
    radius = k.corner_radius
    shift = L.corner_displacement(lens, args.hfov, width, height)
    monotonic = L.is_monotonic(lens, radius)
    fold = lens.fold_radius()
    print(f"lens:                {lens}")
    print(f"spec:                {lens.spec()}")
    print(
        f"camera:              {width}x{height}, {args.hfov:g} deg horizontal FOV, "
        f"corner radius {radius:.4f} (normalised)"
    )
    print(
        f"corner displacement: {100 * shift:.2f} % of the diagonal "
        f"({shift * (width**2 + height**2) ** 0.5:.1f} px)"
    )
    where = "never" if fold == float("inf") else f"at r = {fold:.4f}"
    verdict = "yes" if monotonic else "NO (folds the image)"
    print(f"monotonic over FOV:  {verdict}; radial fold {where}")
    return 0
