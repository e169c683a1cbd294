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

from pathlib import Path

import cv2
import numpy as np

from distpose_app.core.errors import DataFormatError, LensError
from distpose_app.lens.models import BrownConrady, Intrinsics, KannalaBrandt, Lens, NoLens

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
        values = [node.at(i).real() for i in range(node.size())]
        return np.asarray(values, dtype=np.float64)
    mat = node.mat()
    if mat is None:
        raise DataFormatError(f"{path}: {what} is neither a matrix nor a list of numbers")
    return np.asarray(mat, dtype=np.float64)


def load_opencv_calibration(
    path: str | Path, image_size: tuple[int, int] | None = None
) -> tuple[Intrinsics, Lens]:
    """Intrinsics (pixels) and lens of an OpenCV calibration file (.yml/.yaml/.xml/.json).

    image_size (width, height) in pixels overrides the file's; when neither gives one, the image
    is assumed centred on the principal point (width = 2 cx, height = 2 cy). Raises
    DataFormatError naming the file and the missing or malformed key, LensError when the
    coefficients describe a model we do not support (non-zero rational or thin-prism terms).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"calibration file {path} does not exist")
    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError) as exc:  # a parse error surfaces as either
        raise DataFormatError(f"{path}: not an OpenCV FileStorage file (YAML/JSON/XML)") from exc
    if not fs.isOpened():
        raise DataFormatError(f"{path}: not an OpenCV FileStorage file (YAML/JSON/XML)")
    try:
        k_node = _read_node(fs, _MATRIX_KEYS)
        if k_node is None:
            raise DataFormatError(
                f"{path}: no camera matrix (looked for {', '.join(_MATRIX_KEYS)})"
            )
        k = _node_array(k_node, "camera_matrix", path).reshape(-1)
        if k.size != 9:
            raise DataFormatError(f"{path}: camera_matrix has {k.size} values, expected 3x3")
        k = k.reshape(3, 3)
        fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
        if not (np.isfinite(k).all() and fx > 0 and fy > 0):
            raise DataFormatError(f"{path}: camera_matrix needs finite, positive fx and fy")

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
                image_size = (int(w_node.real()), int(h_node.real()))
            else:
                s_node = _read_node(fs, _SIZE_KEYS)
                if s_node is not None:
                    size = _node_array(s_node, "image_size", path).reshape(-1)
                    if size.size != 2:
                        raise DataFormatError(f"{path}: image_size must hold width and height")
                    image_size = (int(size[0]), int(size[1]))
    finally:
        fs.release()

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
