"""The external `.npz` format of labelled 3D poses with cameras, which `distpose evaluate` and
users read: `ExternalData`, atomic save and validating load (docs/data.md describes the keys).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distpose_app.core.errors import DataFormatError
from distpose_app.core.fileio import savez_atomic
from distpose_app.core.skeleton import NUM_JOINTS
from distpose_app.data.splits import sequence_bounds


@dataclass
class ExternalData:
    """Labelled 3D poses with cameras, as read from / written to the external `.npz` format.

    positions_3d (N, 17, 3) float metres, camera coordinates (x right, y down, z forward);
    sequence (N,) int in [0, S), each sequence's frames contiguous, in time order; fps in [1, 1000];
    intrinsics (S, 4) fx, fy, cx, cy pixels; image_size (S, 2) int width, height pixels;
    keypoints_2d (N, 17, 2) float pixels (detections on undistorted images; NaN x and y: the
    joint is unseen) or None;
    names (S,) str or None; lens: a lens spec string when keypoints_2d went through a lens;
    whole_picture: every sequence is a camera's whole picture (its centre the lens's, nothing
    cropped or pasted: the Demo), so lens adaptation need not weigh shifts of the centre.
    """

    positions_3d: np.ndarray
    sequence: np.ndarray
    fps: float
    intrinsics: np.ndarray
    image_size: np.ndarray
    keypoints_2d: np.ndarray | None = None
    names: np.ndarray | None = None
    lens: str | None = None
    whole_picture: bool = False

    @property
    def num_sequences(self) -> int:
        return len(self.intrinsics)

    def sequence_slices(self) -> list[slice]:
        """Frame range of every sequence, indexed by sequence number."""
        out = [slice(0, 0)] * self.num_sequences
        starts, ends = sequence_bounds(self.sequence)
        for a, b in zip(starts, ends, strict=True):
            out[int(self.sequence[a])] = slice(int(a), int(b))
        return out


def save_external(
    path: str | Path,
    positions_3d: np.ndarray,
    sequence: np.ndarray,
    fps: float,
    intrinsics: np.ndarray,
    image_size: np.ndarray,
    keypoints_2d: np.ndarray | None = None,
    names: np.ndarray | None = None,
    lens: str | None = None,
    whole_picture: bool = False,
) -> None:
    """Write the external format atomically (shapes and units as in `ExternalData`), validating
    it first so that a file written here always loads."""
    raw = {
        "positions_3d": positions_3d,
        "sequence": sequence,
        "fps": fps,
        "intrinsics": intrinsics,
        "image_size": image_size,
        "keypoints_2d": keypoints_2d,
        "names": names,
        "lens": lens,
        "whole_picture": True if whole_picture else None,  # absent means False
    }
    # Validate what the caller gave before any cast, so that e.g. 640.5 pixels is not rounded.
    arrays = {k: np.asarray(v) for k, v in raw.items() if v is not None}
    _validate(arrays, str(path))
    savez_atomic(path, arrays)


def write_external(path: str | Path, data: ExternalData) -> None:
    """`save_external` of an ExternalData."""
    save_external(
        path,
        data.positions_3d,
        data.sequence,
        data.fps,
        data.intrinsics,
        data.image_size,
        data.keypoints_2d,
        data.names,
        data.lens,
        data.whole_picture,
    )


REQUIRED_KEYS = ("positions_3d", "sequence", "fps", "intrinsics", "image_size")
FPS_RANGE = (1.0, 1000.0)  # Hz: from time-lapse webcams to high-speed cameras
MIN_DEPTH_M = 0.05  # a joint nearer the camera than this is a broken file, not a person
OPTIONAL_KEYS = ("keypoints_2d", "names", "lens", "whole_picture")  # any other key is ignored


def _fail(path: str, key: str, problem: str) -> DataFormatError:
    return DataFormatError(f"{path}: key '{key}': {problem}")


def _check_float(path: str, key: str, value: np.ndarray, shape: tuple) -> None:
    """Float (or int) array of `shape` (None = any length), all finite."""
    if value.dtype.kind not in "fiu":
        raise _fail(path, key, f"dtype {value.dtype} is not numeric")
    if value.ndim != len(shape) or any(
        s is not None and s != v for s, v in zip(shape, value.shape, strict=False)
    ):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise _fail(path, key, f"shape {value.shape}, expected {want}")
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        bad = int(np.sum(~np.isfinite(value)))
        raise _fail(path, key, f"{bad} values are NaN or infinite")


def _validate(arrays: dict[str, np.ndarray], path: str) -> None:
    """Raise DataFormatError naming the key and the problem unless `arrays` follows the format."""
    for key in REQUIRED_KEYS:
        if key not in arrays:
            raise _fail(path, key, "missing (required: " + ", ".join(REQUIRED_KEYS) + ")")
    p3 = arrays["positions_3d"]
    _check_float(path, "positions_3d", p3, (None, NUM_JOINTS, 3))
    if p3.dtype.kind != "f":
        raise _fail(path, "positions_3d", f"dtype {p3.dtype}, expected float (metres)")
    n = len(p3)
    if n == 0:
        raise _fail(path, "positions_3d", "no frames")
    if np.abs(p3).max() > 100:
        raise _fail(path, "positions_3d", f"values up to {np.abs(p3).max():.0f}: not metres?")
    if np.median(p3[..., 2]) <= 0:
        raise _fail(path, "positions_3d", "median z <= 0: not camera coordinates (z forward)?")
    near = int(np.sum(p3[..., 2] < MIN_DEPTH_M))
    if near:  # projecting them divides by ~0: pixels near infinity, errors of 10^11 mm
        raise _fail(path, "positions_3d", f"{near} joints closer than {MIN_DEPTH_M} m to the "
                    "camera (z): they cannot be projected")  # fmt: skip

    fps = arrays["fps"]
    if fps.dtype.kind not in "fiu" or fps.size != 1:
        raise _fail(path, "fps", f"expected one number, got {fps.dtype} of shape {fps.shape}")
    rate = float(fps.reshape(()))
    if not FPS_RANGE[0] <= rate <= FPS_RANGE[1]:  # NaN fails too
        raise _fail(path, "fps", f"{rate} is not a frame rate in {FPS_RANGE[0]:g} to "
                    f"{FPS_RANGE[1]:g} Hz")  # fmt: skip

    intrinsics = arrays["intrinsics"]
    _check_float(path, "intrinsics", intrinsics, (None, 4))
    s = len(intrinsics)
    if s == 0:
        raise _fail(path, "intrinsics", "no sequences")
    if np.any(intrinsics[:, :2] <= 0):
        raise _fail(path, "intrinsics", "focal lengths fx, fy must be positive (pixels)")
    size = arrays["image_size"]
    _check_float(path, "image_size", size, (s, 2))
    if size.dtype.kind == "f" and np.any(size != np.round(size)):
        raise _fail(path, "image_size", "width and height must be whole pixels")
    if np.any(size <= 0):
        raise _fail(path, "image_size", "width and height must be positive")

    seq = arrays["sequence"]
    if seq.dtype.kind not in "iu":
        raise _fail(path, "sequence", f"dtype {seq.dtype}, expected integers")
    if seq.shape != (n,):
        raise _fail(path, "sequence", f"shape {seq.shape}, expected ({n},) like positions_3d")
    if seq.min() < 0 or seq.max() >= s:
        raise _fail(
            path, "sequence", f"values {seq.min()}..{seq.max()} out of range [0, {s}) (intrinsics)"
        )
    run_values = seq[np.concatenate([[0], np.flatnonzero(np.diff(seq)) + 1])]
    if len(np.unique(run_values)) != len(run_values):
        counts = np.bincount(run_values)
        raise _fail(
            path, "sequence", f"frames of sequence {int(np.argmax(counts))} are not contiguous"
        )
    if len(run_values) != s:
        missing = sorted(set(range(s)) - set(run_values.tolist()))[:5]
        raise _fail(path, "sequence", f"sequences {missing} have no frames")

    if "keypoints_2d" in arrays:
        kp = arrays["keypoints_2d"]
        # NaN marks an unseen joint (a detector's missing output): both coordinates or none.
        seen = ~np.isnan(kp).any(-1) if kp.dtype.kind == "f" else np.ones(kp.shape[:-1], bool)
        if kp.dtype.kind == "f" and np.any(np.isnan(kp).any(-1) != np.isnan(kp).all(-1)):
            raise _fail(path, "keypoints_2d", "a joint has one coordinate NaN: NaN x and y "
                        "together mark an unseen joint")  # fmt: skip
        _check_float(path, "keypoints_2d", np.where(seen[..., None], kp, 0), (n, NUM_JOINTS, 2))
        if not seen.any():
            raise _fail(path, "keypoints_2d", "every value is NaN: no joint is seen")
    if "names" in arrays and arrays["names"].shape != (s,):
        raise _fail(path, "names", f"shape {arrays['names'].shape}, expected ({s},)")
    if "whole_picture" in arrays:
        flag = arrays["whole_picture"]
        if flag.dtype.kind != "b" or flag.size != 1:
            raise _fail(path, "whole_picture", f"expected one boolean, got {flag.dtype} of "
                        f"shape {flag.shape}")  # fmt: skip


def load_external(path: str | Path) -> ExternalData:
    """Read and validate an external-format `.npz` (see ExternalData and docs/data.md).

    Any breach raises DataFormatError naming the key and the problem."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a .npy (one array) renamed .npz
            raise DataFormatError(f"{path}: one .npy array, not an .npz archive of named arrays")
        with loaded as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DataFormatError):
            raise
        detail = " ".join(str(exc).split())[:160]
        raise DataFormatError(f"{path}: not a readable .npz file ({detail})") from None
    _validate(arrays, str(path))
    return ExternalData(
        positions_3d=arrays["positions_3d"].astype(np.float64),
        sequence=arrays["sequence"].astype(np.int64),
        fps=float(arrays["fps"].reshape(())),
        intrinsics=arrays["intrinsics"].astype(np.float64),
        image_size=arrays["image_size"].astype(np.int64),
        keypoints_2d=arrays["keypoints_2d"].astype(np.float64)
        if "keypoints_2d" in arrays
        else None,
        names=arrays["names"] if "names" in arrays else None,
        lens=str(arrays["lens"]) if "lens" in arrays else None,
        whole_picture=bool(arrays.get("whole_picture", False)),  # validated: one boolean
    )
