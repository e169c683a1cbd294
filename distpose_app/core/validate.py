"""Checks on user-supplied numbers and paths, shared by the CLI, the app and the file readers:
each failure is a DistposeError with one line naming the option or file and the value at fault
(the CLI prints it and exits with code 2; the app shows it in a dialog).

Two forms: `check_*` functions raise DistposeError, and `arg_*` factories wrap the same checks
as argparse `type=` callables, so a bad option is refused while the arguments are parsed,
before any data or model loads.
"""

from __future__ import annotations

import argparse
import math
import os
import stat
from collections.abc import Callable
from pathlib import Path

from distpose_app.core.errors import DistposeError

# Largest thread count worth asking torch for; more is a typo, not a machine.
MAX_THREADS = 1024
# Horizontal fields of view a pinhole camera model can describe sensibly, degrees: below 1° the
# focal length overflows pixel arithmetic, at 180° it is zero.
HFOV_RANGE_DEG = (1.0, 179.0)


# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------
def _must(name: str, text: str) -> DistposeError:
    return DistposeError(f"{name} must {text}".strip())


def check_number(
    name: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> float | int:
    """`value` as a finite float (or int when `integer`) within [low, high] (open ends with
    low_open / high_open); DistposeError naming `name` otherwise. NaN and infinities are never
    accepted: they turn results into silent garbage."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise _must(name, f"be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise _must(name, f"be a finite number, got {value}")
    if integer:
        if isinstance(value, float) and not number.is_integer():
            raise _must(name, f"be a whole number, got {value}")
        number = int(value) if isinstance(value, int) else int(number)
    if low is not None and (number <= low if low_open else number < low):
        raise _must(name, f"be {'>' if low_open else '>='} {low:g}, got {value}")
    if high is not None and (number >= high if high_open else number > high):
        raise _must(name, f"be {'<' if high_open else '<='} {high:g}, got {value}")
    return number


def _argtype(kind: type, label: str, **limits) -> Callable[[str], float | int]:
    """An argparse type: parse `kind` from the text, then `check_number` with `limits`."""

    def parse(text: str):
        try:
            value = kind(text)
        except (TypeError, ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {label}, got {text!r}") from None
        try:
            return check_number("", value, integer=kind is int, **limits)
        except DistposeError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = label.replace(" ", "_")  # argparse names the type in some messages
    return parse


def arg_float(low: float | None = None, high: float | None = None, **open_ends) -> Callable:
    """argparse type: a finite float within [low, high] (low_open / high_open for open ends)."""
    return _argtype(float, "a number", low=low, high=high, **open_ends)


def arg_int(low: int | None = None, high: int | None = None) -> Callable:
    """argparse type: an integer within [low, high]."""
    return _argtype(int, "an integer", low=low, high=high)


# The common cases, named for what they mean.
positive_float = arg_float(0.0, low_open=True)
non_negative_float = arg_float(0.0)
positive_int = arg_int(1)
non_negative_int = arg_int(0)
threads_int = arg_int(1, MAX_THREADS)
seed_int = arg_int(0, 2**63 - 1)  # numpy seeds are non-negative
hfov_degrees = arg_float(*HFOV_RANGE_DEG)
probability = arg_float(0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------
def check_input_file(path: str | os.PathLike, what: str = "file") -> Path:
    """An existing regular file we can read (not a folder, fifo or device: those block or make
    no sense as input). Returns it as a Path; DistposeError naming it otherwise."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DistposeError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise DistposeError(f"{what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise DistposeError(f"{what} {path} is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise DistposeError(f"{what} {path} is not a regular file (a fifo or a device?)")
    if not os.access(path, os.R_OK):
        raise DistposeError(f"{what} {path} cannot be read (permission denied)")
    return path


def check_output_file(option: str, path: str | os.PathLike) -> Path:
    """A file we may create or replace: its folder exists and it is not a folder itself."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise DistposeError(f"{option}: folder {folder} does not exist")
    if path.is_dir():
        raise DistposeError(f"{option}: {path} is a folder, not a file")
    if path.exists() and not path.is_file():
        raise DistposeError(f"{option}: {path} is not a regular file")
    return path


def check_folder(option: str, path: str | os.PathLike) -> Path:
    """A folder that exists or can be created: nothing that is not a folder is in its way
    (neither at the path nor at any parent)."""
    path = Path(path)
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                which = "" if part == path else f" (its parent {part} is a file)"
                raise DistposeError(f"{option}: {path} is not a folder{which}")
            break
    return path


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when a and b name one file: the same resolved path, or (both existing) the same
    inode, which also catches hard links and symlinks."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.abspath(os.path.realpath(a)) == os.path.abspath(os.path.realpath(b))


def opencv_path(path: str | os.PathLike) -> str:
    """The path as a string OpenCV can take: OpenCV's Python binding encodes names as UTF-8 and
    crashes on names that are not (undecodable bytes, which Python keeps as surrogates), so such
    a name raises DistposeError here instead of reaching OpenCV."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise DistposeError(
            f"{shown}: the file name is not valid UTF-8, which OpenCV cannot open; rename it"
        ) from None
    if "\0" in text:
        raise DistposeError(f"{text!r}: the file name holds a NUL character")
    return text
