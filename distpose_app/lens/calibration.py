"""Reading an OpenCV camera calibration (camera matrix + distortion coefficients) as written by
`cv2.FileStorage` (YAML or JSON), e.g. by OpenCV's `camera_calibration` sample, into our
`Intrinsics` and `Lens`.

Key names vary between tools, so the usual spellings are accepted: `camera_matrix`/`cameraMatrix`
/`K`, `distortion_coefficients`/`dist_coeffs`/`distCoeffs`/`D`, `image_width` + `image_height`
or `image_size`/`imageSize`. A fisheye calibration (`cv2.fisheye`, Kannala–Brandt k1..k4) is
recognised by a non-zero `fisheye_model` (what the OpenCV sample writes) or a `model` string
containing "fisheye"; otherwise the coefficients are OpenCV's (k1, k2, p1, p2[, k3[, k4, k5, k6
...]]) Brown–Conrady vector.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from distpose_app.core.errors import DataFormatError, LensError
from distpose_app.lens.models import (
    BrownConrady,
    Intrinsics,
    KannalaBrandt,
    Lens,
    NoLens,
    check_coefficients,
)

_MATRIX_KEYS = ("camera_matrix", "cameraMatrix", "K", "intrinsics")
_DIST_KEYS = ("distortion_coefficients", "dist_coeffs", "distCoeffs", "D", "distortion")
_SIZE_KEYS = ("image_size", "imageSize", "image_resolution")


def _read_node(fs: cv2.FileStorage, names: tuple[str, ...]) -> cv2.FileNode | None:
    for name in names:
        node = fs.getNode(name)
        if not node.empty() and not node.isNone():
            return node
    return None


def _node_array(node: cv2.FileNode, what: str, path: Path) -> np.ndarray:
    """A FileNode holding an `opencv-matrix` or a plain sequence of numbers -> float64 array."""
    if node.isSeq():
        if node.size() > _MAX_VALUES:
            raise DataFormatError(f"{path}: {what} has {node.size()} values, far too many")
        values = [node.at(i).real() for i in range(node.size())]
        return np.asarray(values, dtype=np.float64)
    mat = node.mat()
    if mat is None:
        raise DataFormatError(f"{path}: {what} is neither a matrix nor a list of numbers")
    return np.asarray(mat, dtype=np.float64)


# A calibration file is a few hundred bytes with a handful of small matrices nested two levels
# deep. OpenCV's parser recurses on nesting (a 100,000-level file crashes the process) and
# allocates `rows x cols` before it checks the data, so the text is screened first.
MAX_CALIBRATION_BYTES = 1_000_000
_MAX_NESTING = 32
_MAX_VALUES = 64  # matrix rows/cols, list lengths: a 3x3 matrix and up to 14 coefficients
_MAX_IMAGE_SIDE = 100_000  # pixels


def _nesting_depth(text: str) -> int:
    """Deepest nesting of `[`/`{` (YAML flow style, JSON) or XML elements in `text`, ignoring
    quoted strings and comments well enough for a safety bound (it may overestimate)."""
    depth = deepest = 0
    quote = None
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "<":
            if text.startswith("</", i):
                depth -= 1
            elif not text.startswith(("<?", "<!"), i):
                close = text.find(">", i)
                if close < 0:
                    break
                if text[close - 1] != "/":
                    depth += 1
                i = close
        deepest = max(deepest, depth)
        i += 1
    return deepest


def _screen_text(path: Path) -> str:
    """The file's text after the checks OpenCV's parser needs first (size, encoding, nesting,
    matrix sizes); DataFormatError naming the file otherwise."""
    try:
        size = path.stat().st_size
        if size > MAX_CALIBRATION_BYTES:
            raise DataFormatError(f"{path}: {size} bytes is too large for a calibration file")
        data = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if b"\0" in data:
        raise DataFormatError(f"{path}: binary data, not an OpenCV calibration file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataFormatError(f"{path}: not UTF-8 text, not an OpenCV calibration file") from None
    if not text.strip():
        raise DataFormatError(f"{path}: the file is empty")
    if _nesting_depth(text) > _MAX_NESTING:
        raise DataFormatError(f"{path}: nested more than {_MAX_NESTING} levels deep")
    for match in re.finditer(r"\b(rows|cols)\b\W{0,4}?(-?\d+)", text):
        if not 0 < int(match.group(2)) <= _MAX_VALUES:
            raise DataFormatError(f"{path}: a matrix with {match.group(1)} = {match.group(2)}")
    return text


def _open_storage(text: str, path: Path) -> cv2.FileStorage:
    """cv2.FileStorage over the text in memory (so the file name never reaches OpenCV)."""
    head = text.lstrip()
    if not head.startswith(("%YAML", "{", "<")):
        text = "%YAML:1.0\n---\n" + text  # OpenCV reads headerless YAML only from a .yml path
    try:
        fs = cv2.FileStorage(text, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    except (cv2.error, SystemError):  # a parse error surfaces as either
        fs = None
    if fs is None or not fs.isOpened():
        raise DataFormatError(f"{path}: not an OpenCV FileStorage file (YAML/JSON/XML)")
    return fs


def _image_side(value: float, path: Path) -> int:
    if not (np.isfinite(value) and 0 < value <= _MAX_IMAGE_SIDE and value == int(value)):
        raise DataFormatError(f"{path}: image size {value} is not a whole number of pixels "
                              f"in 1..{_MAX_IMAGE_SIDE}")  # fmt: skip
    return int(value)


def load_opencv_calibration(
    path: str | Path, image_size: tuple[int, int] | None = None
) -> tuple[Intrinsics, Lens]:
    """Intrinsics (pixels) and lens of an OpenCV calibration file (.yml/.yaml/.xml/.json).

    image_size (width, height) in pixels overrides the file's; when neither gives one, the image
    is assumed centred on the principal point (width = 2 cx, height = 2 cy). Raises
    DataFormatError naming the file and the missing or malformed key, LensError when the
    coefficients describe a model we do not support (non-zero rational or thin-prism terms) or
    are out of range. The file is untrusted: its size, nesting and matrix sizes are checked
    before OpenCV parses it, and OpenCV's own errors become DataFormatError.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"calibration file {path} does not exist")
    fs = _open_storage(_screen_text(path), path)
    try:
        return _read_calibration(fs, path, image_size)
    except (cv2.error, SystemError, ValueError, OverflowError, TypeError) as exc:
        if isinstance(exc, DataFormatError | LensError):
            raise
        detail = " ".join(str(exc).split())
        detail = detail.rsplit("error:", 1)[-1].strip()[:120]
        raise DataFormatError(f"{path}: malformed calibration ({detail})") from None
    finally:
        fs.release()


def _read_calibration(
    fs: cv2.FileStorage, path: Path, image_size: tuple[int, int] | None
) -> tuple[Intrinsics, Lens]:
    k_node = _read_node(fs, _MATRIX_KEYS)
    if k_node is None:
        raise DataFormatError(f"{path}: no camera matrix (looked for {', '.join(_MATRIX_KEYS)})")
    k = _node_array(k_node, "camera_matrix", path).reshape(-1)
    if k.size != 9:
        raise DataFormatError(f"{path}: camera_matrix has {k.size} values, expected 3x3")
    k = k.reshape(3, 3)
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    if not (np.isfinite(k).all() and fx > 0 and fy > 0):
        raise DataFormatError(f"{path}: camera_matrix needs finite, positive fx and fy")
    if max(abs(fx), abs(fy), abs(cx), abs(cy)) > 10 * _MAX_IMAGE_SIDE:
        raise DataFormatError(f"{path}: camera_matrix values up to {np.abs(k).max():.3g} px")

    d_node = _read_node(fs, _DIST_KEYS)
    d = np.zeros(0) if d_node is None else _node_array(d_node, "distortion", path).reshape(-1)
    if not np.isfinite(d).all():
        raise DataFormatError(f"{path}: distortion coefficients are not finite")

    fisheye = False
    f_node = _read_node(fs, ("fisheye_model", "fisheye"))
    if f_node is not None:
        fisheye = bool(f_node.real()) if f_node.isInt() or f_node.isReal() else False
    m_node = _read_node(fs, ("model", "distortion_model"))
    if m_node is not None and m_node.isString():
        fisheye = fisheye or "fisheye" in m_node.string().lower()

    if image_size is None:
        w_node, h_node = fs.getNode("image_width"), fs.getNode("image_height")
        if not w_node.empty() and not h_node.empty():
            image_size = (_image_side(w_node.real(), path), _image_side(h_node.real(), path))
        else:
            s_node = _read_node(fs, _SIZE_KEYS)
            if s_node is not None:
                size = _node_array(s_node, "image_size", path).reshape(-1)
                if size.size != 2:
                    raise DataFormatError(f"{path}: image_size must hold width and height")
                image_size = (_image_side(size[0], path), _image_side(size[1], path))

    if image_size is None:
        image_size = (max(1, int(2 * cx + 0.5)), max(1, int(2 * cy + 0.5)))
    width, height = image_size
    if width <= 0 or height <= 0:
        raise DataFormatError(f"{path}: image size {width}x{height} is not positive")
    intrinsics = Intrinsics(float(fx), float(fy), float(cx), float(cy), int(width), int(height))
    return intrinsics, lens_from_opencv_coeffs(d, fisheye=fisheye)


def lens_from_opencv_coeffs(coeffs: np.ndarray, fisheye: bool = False) -> Lens:
    """Lens from an OpenCV distortion vector: `cv2.fisheye`'s (k1, k2, k3, k4) when `fisheye`,
    else `cv2.projectPoints`' (k1, k2, p1, p2[, k3[, k4, k5, k6, s1..s4, tx, ty]]); terms beyond
    k3 must be zero (the rational and thin-prism models are not supported: LensError)."""
    d = np.asarray(coeffs, dtype=np.float64).reshape(-1)
    check_coefficients("the calibration's distortion", d.tolist())
    if fisheye:
        if d.size > 4:
            raise LensError(f"a fisheye calibration has 4 coefficients, got {d.size}")
        return KannalaBrandt(*np.pad(d, (0, 4 - d.size)).tolist())
    if d.size > 5 and np.any(d[5:] != 0):
        raise LensError(
            "the calibration uses OpenCV's rational or thin-prism model (non-zero coefficients "
            "after k3), which distpose does not support; recalibrate with k1, k2, p1, p2, k3"
        )
    d = np.pad(d[:5], (0, max(0, 5 - d.size)))
    k1, k2, p1, p2, k3 = d.tolist()
    if not np.any(d):
        return NoLens()
    return BrownConrady(k1=k1, k2=k2, k3=k3, p1=p1, p2=p2)
