"""Human3.6M sequences as evaluation files in the external `.npz` format: every (sequence,
camera) of the chosen training subjects, with ground-truth, noisy or real detected 2D."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from distpose_app.core.errors import DataFormatError, DistposeError
from distpose_app.core.skeleton import NUM_JOINTS
from distpose_app.data.detector_noise import (
    MPII_TO_H36M,
    DetectorNoise,
    apply_swaps,
    fit_detector_noise,
    sample_noise,
    undistort_h36m_lens,
)
from distpose_app.data.external import ExternalData

INPUTS = ("gt", "sh")
NOISES = ("none", "sh")
# The standard test subjects are not in the training file and must never be used here.
FORBIDDEN_SUBJECTS = (9, 11)


def parse_subjects(items) -> list[int]:
    """'S8', 's8' or '8' (also comma-separated) -> [8]. Refuses S9 and S11."""
    out = []
    for item in items:
        for part in str(item).split(","):
            text = part.strip().upper().removeprefix("S")
            if not text.isdigit():
                raise DistposeError(f"subject {part!r}: use S1, S5, S6, S7 or S8")
            subject = int(text)
            if subject in FORBIDDEN_SUBJECTS:
                raise DistposeError(f"S{subject} is a Human3.6M test subject: never used here")
            out.append(subject)
    return list(dict.fromkeys(out))


def sequence_action(name: str) -> str:
    """'S8/Walking 1/cam0' -> 'Walking' (the action, without the take number)."""
    parts = str(name).split("/")
    return re.sub(r"\s+\d+$", "", parts[1] if len(parts) > 1 else parts[0])


def build_h36m_external(
    h36m_path: str | Path,
    subjects,
    input_2d: str = "gt",
    noise: str = "none",
    noise_scale: float = 1.0,
    noise_model: DetectorNoise | None = None,
    seed: int = 0,
    stride: int = 1,
    progress: Callable[[str], None] | None = None,
) -> tuple[ExternalData, dict]:
    """Every (sequence, camera) of `subjects` as one external-format sequence.

    positions_3d: camera-frame joints (X_cam = R (X_world - T), metres, OpenCV axes);
    keypoints_2d in pixels of an ideal pinhole with the camera's f and c (the format's
    "undistorted image"): input_2d "gt" projects the ground truth; "sh" takes the real Stacked
    Hourglass detections (S1 and S5 only), undistorted with the calibrated lens in Human3.6M's
    own convention, mapped to H36M-17 with Spine NaN (unseen). noise "sh" adds the detector-noise
    model (left/right swaps, then bias + heavy-tailed, time-correlated error; `noise_model`, or
    fitted on the file's detections) to ground-truth 2D, its spread times noise_scale.
    stride keeps every stride-th frame (fps = 50 / stride). names: '<subject>/<take>/cam<k>'.
    Returns the data and a dict describing what was built (for the caller to print)."""
    if input_2d not in INPUTS:
        raise DistposeError(f"unknown input {input_2d!r}: use {' or '.join(INPUTS)}")
    if noise not in NOISES:
        raise DistposeError(f"unknown noise {noise!r}: use {' or '.join(NOISES)}")
    if noise != "none" and input_2d != "gt":
        raise DistposeError("detector noise is added to ground-truth 2D only (--input gt)")
    if stride < 1:
        raise DistposeError(f"stride must be at least 1, got {stride}")
    subjects = parse_subjects(subjects)
    path = Path(h36m_path)
    if not path.is_file():
        raise DistposeError(f"Human3.6M file not found: {path}")
    if noise == "sh" and noise_model is None:
        if progress:
            progress("fitting the detector-noise model on the file's detections")
        noise_model = fit_detector_noise(path)
    with np.load(path, allow_pickle=False) as d:
        world, sequence, names = d["world_3d"], d["sequence"], d["sequence_names"]
        seq_subject = d["subject"]
        cams = {key: d[f"camera_{key}"] for key in ("subject", "id", "R", "T", "f", "c", "k",
                                                    "p", "size")}  # fmt: skip
        fps = float(d["fps"]) if "fps" in d.files else 50.0
        sh = None
        if input_2d == "sh":
            sh = {key: d[f"sh_{key}"] for key in ("sequence", "camera", "start", "keypoints")}
    missing = sorted(set(subjects) - set(seq_subject.tolist()))
    if missing:
        raise DistposeError(f"subjects {missing} are not in {path.name}")
    if sh is not None:
        has = set(seq_subject[sh["sequence"]].tolist())
        if set(subjects) - has:
            raise DistposeError(f"no detections for S{sorted(set(subjects) - has)} (S1, S5 only)")

    rng = np.random.default_rng(seed)
    out_fps = fps / stride
    order = np.argsort(sequence, kind="stable")
    first = np.searchsorted(sequence[order], np.arange(len(names) + 1))
    pos, kps, seq_ids, intr, sizes, out_names = [], [], [], [], [], []
    for s in np.flatnonzero(np.isin(seq_subject, subjects)):
        rows = order[first[s] : first[s + 1]][::stride]
        cam_rows = np.flatnonzero(cams["subject"] == seq_subject[s])
        for k, ci in enumerate(cam_rows):
            f, c = cams["f"][ci].astype(float), cams["c"][ci].astype(float)
            x_cam = (world[rows].astype(float) - cams["T"][ci]) @ cams["R"][ci].T
            if sh is not None:
                match = np.flatnonzero((sh["sequence"] == s) & (sh["camera"] == cams["id"][ci]))
                if len(match) != 1:
                    continue
                a, b = sh["start"][match[0]], sh["start"][match[0] + 1]
                det = sh["keypoints"][a:b][::stride]
                n = min(len(det), len(rows))
                x_cam = x_cam[:n]
                kp = np.full((n, NUM_JOINTS, 2), np.nan)
                kp[:, list(MPII_TO_H36M)] = undistort_h36m_lens(
                    det[:n], f, c, cams["k"][ci], cams["p"][ci]
                )
            else:
                kp = x_cam[..., :2] / x_cam[..., 2:] * f + c
                if noise == "sh":
                    m2px = f.mean() / x_cam[None, :, 0, 2]
                    kp, _ = apply_swaps(noise_model, rng, kp[None], fps=out_fps)
                    kp = kp[0] + sample_noise(noise_model, rng, (1, len(kp[0])), m2px,
                                              scale=noise_scale, fps=out_fps)[0]  # fmt: skip
            if np.any(x_cam[..., 2] <= 0):
                raise DataFormatError(f"{path}: {names[s]} has joints behind camera {k}")
            seq_ids.append(np.full(len(x_cam), len(out_names), np.int32))
            pos.append(x_cam.astype(np.float32))
            kps.append(kp.astype(np.float32))
            intr.append([f[0], f[1], c[0], c[1]])
            sizes.append(cams["size"][ci])
            out_names.append(f"{names[s]}/cam{k}")
    if not out_names:
        raise DistposeError(f"no sequences for subjects {subjects} in {path.name}")
    data = ExternalData(
        positions_3d=np.concatenate(pos),
        sequence=np.concatenate(seq_ids),
        fps=out_fps,
        intrinsics=np.array(intr, dtype=np.float64),
        image_size=np.array(sizes).round().astype(np.int64),
        keypoints_2d=np.concatenate(kps),
        names=np.array(out_names),
    )
    info = {
        "subjects": [f"S{s}" for s in subjects],
        "input": input_2d,
        "noise": noise,
        "noise_scale": noise_scale if noise != "none" else None,
        "sequences": len(out_names),
        "frames": int(len(data.sequence)),
        "fps": out_fps,
        "actions": sorted({sequence_action(n) for n in out_names}),
    }
    return data, info
