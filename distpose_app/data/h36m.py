"""Human3.6M's training subjects as a mocap source: world poses for the virtual webcams, and the
views of its 4 real, calibrated cameras per subject.

Reads `h36m-train-s1-s5-s6-s7-s8.npz` (../shared/data/README-h36m.md): 17 joints on Human3.6M's
own definitions, metres, world z up, 50 fps. The file is treated as untrusted: no pickles, every
array's shape and type checked. S9 and S11 (the standard test subjects) are not in it and never
used; `VALIDATION_SUBJECT` (S8) is held out for model selection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distpose_app.core.errors import DataFormatError, DistposeError
from distpose_app.data.mocap import MocapSequence, resample

TRAIN_SUBJECTS = (1, 5, 6, 7)
VALIDATION_SUBJECT = 8
ALL_SUBJECTS = (1, 5, 6, 7, 8)
# Human3.6M's world is z up; the project's mocap world is y up (x, y, z) -> (x, z, -y).
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


@dataclass
class H36MData:
    """The file's contents. world_3d (N, 17, 3) float32 metres, z up; sequence (N,) index into
    sequence_names (S,); subject (S,) int; action (S,) str; fps; cameras: camera_subject (C,),
    camera_R (C, 3, 3) world -> camera, camera_T (C, 3) camera centre (metres), camera_f,
    camera_c (C, 2) pixels, camera_size (C, 2) width, height; camera_k (C, 3), camera_p (C, 2)."""

    world_3d: np.ndarray
    sequence: np.ndarray
    sequence_names: np.ndarray
    subject: np.ndarray
    action: np.ndarray
    fps: float
    camera_subject: np.ndarray
    camera_R: np.ndarray
    camera_T: np.ndarray
    camera_f: np.ndarray
    camera_c: np.ndarray
    camera_size: np.ndarray
    camera_k: np.ndarray
    camera_p: np.ndarray
    arrays: dict

    @property
    def subject_of_frame(self) -> np.ndarray:
        return self.subject[self.sequence]

    def sequence_frames(self, s: int) -> np.ndarray:
        return np.flatnonzero(self.sequence == s)


_SHAPES = {
    "world_3d": (None, 17, 3),
    "sequence": (None,),
    "sequence_names": (None,),
    "subject": (None,),
    "action": (None,),
    "camera_subject": (None,),
    "camera_R": (None, 3, 3),
    "camera_T": (None, 3),
    "camera_f": (None, 2),
    "camera_c": (None, 2),
    "camera_size": (None, 2),
    "camera_k": (None, 3),
    "camera_p": (None, 2),
}


def load_h36m(path: str | Path) -> H36MData:
    """Read and check the Human3.6M training file. Missing file -> DistposeError; a malformed
    one -> DataFormatError naming the key."""
    path = Path(path)
    if not path.is_file():
        raise DistposeError(f"Human3.6M file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{path}: not a readable .npz ({exc})") from exc
    for key, shape in _SHAPES.items():
        if key not in arrays:
            raise DataFormatError(f"{path}: missing key {key!r}")
        value = arrays[key]
        if value.ndim != len(shape) or any(s is not None and s != v
                                           for s, v in zip(shape, value.shape)):  # fmt: skip
            raise DataFormatError(f"{path}: {key} has shape {value.shape}, expected {shape}")
    n, s = len(arrays["world_3d"]), len(arrays["sequence_names"])
    seq = arrays["sequence"].astype(np.int64)
    if len(seq) != n or n == 0 or seq.min() < 0 or seq.max() >= s:
        raise DataFormatError(f"{path}: sequence ids out of range")
    if not np.isfinite(arrays["world_3d"]).all():
        raise DataFormatError(f"{path}: world_3d holds NaN or infinite values")
    if not set(np.unique(arrays["subject"]).tolist()) <= set(ALL_SUBJECTS):
        # S9 and S11 are the test subjects: a file holding them must not be trained on.
        raise DataFormatError(f"{path}: subjects {np.unique(arrays['subject'])} are not the "
                              f"training subjects {ALL_SUBJECTS}")  # fmt: skip
    fps = float(arrays.get("fps", 50.0))
    if not 1.0 <= fps <= 1000.0:
        raise DataFormatError(f"{path}: fps {fps} out of range")
    return H36MData(
        world_3d=arrays["world_3d"].astype(np.float32),
        sequence=seq,
        sequence_names=arrays["sequence_names"].astype(str),
        subject=arrays["subject"].astype(np.int64),
        action=arrays["action"].astype(str),
        fps=fps,
        camera_subject=arrays["camera_subject"].astype(np.int64),
        camera_R=arrays["camera_R"].astype(np.float64),
        camera_T=arrays["camera_T"].astype(np.float64),
        camera_f=arrays["camera_f"].astype(np.float64),
        camera_c=arrays["camera_c"].astype(np.float64),
        camera_size=arrays["camera_size"].astype(np.float64),
        camera_k=arrays["camera_k"].astype(np.float64),
        camera_p=arrays["camera_p"].astype(np.float64),
        arrays=arrays,
    )


def _check_subjects(subjects) -> tuple[int, ...]:
    subjects = tuple(int(s) for s in subjects)
    bad = set(subjects) - set(ALL_SUBJECTS)
    if bad:
        raise DistposeError(f"Human3.6M subjects {sorted(bad)} are not training subjects "
                            f"{ALL_SUBJECTS}")  # fmt: skip
    return subjects


def mocap_sequences(data: H36MData, subjects, fps: float) -> list[MocapSequence]:
    """World poses of `subjects` as MocapSequence (positions (F, 17, 3) float32 metres, y up,
    resampled to `fps`), named "S1/Walking 1", dataset "h36m", content = action, style = "S1"."""
    out = []
    for s in range(len(data.sequence_names)):
        if int(data.subject[s]) not in _check_subjects(subjects):
            continue
        world = data.world_3d[data.sequence_frames(s)].astype(np.float64) @ Z_UP_TO_Y_UP.T
        out.append(MocapSequence(
            name=str(data.sequence_names[s]), dataset="h36m", content=str(data.action[s]),
            style=f"S{int(data.subject[s])}",
            positions=resample(world, data.fps, fps).astype(np.float32), fps=float(fps),
        ))  # fmt: skip
    return out


@dataclass
class CameraViews:
    """Views of sequences through real cameras, in the training-data layout: positions_3d
    (N, 17, 3) float32 metres camera coordinates (x right, y down, z forward); sequence (N,)
    view index; intrinsics (V, 4) fx, fy, cx, cy pixels; image_size (V, 2) width, height;
    names (V,) "S1/Walking 1/cam0"; lens (V, 5) the calibrated radial k1..k3 and tangential
    p1, p2 (Human3.6M's own tangential convention); fps."""

    positions_3d: np.ndarray
    sequence: np.ndarray
    intrinsics: np.ndarray
    image_size: np.ndarray
    names: np.ndarray
    lens: np.ndarray
    fps: float

    def __len__(self) -> int:
        return len(self.sequence)


def camera_views(data: H36MData, subjects, fps: float) -> CameraViews:
    """Every sequence of `subjects` through each of its subject's 4 calibrated cameras
    (X_cam = R (X_world - T)), resampled to `fps`."""
    cols: dict[str, list] = {k: [] for k in ("p3", "seq", "K", "size", "names", "lens")}
    for s in range(len(data.sequence_names)):
        subject = int(data.subject[s])
        if subject not in _check_subjects(subjects):
            continue
        world = resample(data.world_3d[data.sequence_frames(s)].astype(np.float64), data.fps, fps)
        for k, c in enumerate(np.flatnonzero(data.camera_subject == subject)):
            cam = (world - data.camera_T[c]) @ data.camera_R[c].T
            cols["p3"].append(cam.astype(np.float32))
            cols["seq"].append(np.full(len(cam), len(cols["K"]), np.int32))
            cols["K"].append(np.concatenate([data.camera_f[c], data.camera_c[c]]))
            cols["size"].append(data.camera_size[c].astype(np.int32))
            cols["names"].append(f"{data.sequence_names[s]}/cam{k}")
            cols["lens"].append(np.concatenate([data.camera_k[c], data.camera_p[c]]))
    if not cols["K"]:
        raise DistposeError(f"no Human3.6M sequences for subjects {tuple(subjects)}")
    return CameraViews(
        positions_3d=np.concatenate(cols["p3"]),
        sequence=np.concatenate(cols["seq"]),
        intrinsics=np.array(cols["K"], np.float64),
        image_size=np.array(cols["size"], np.int32),
        names=np.array(cols["names"]),
        lens=np.array(cols["lens"], np.float64),
        fps=float(fps),
    )
