"""A fake Human3.6M training file (the keys of ../shared/data/README-h36m.md) whose detections
are the projected ground truth plus noise from a known detector-noise model."""

from __future__ import annotations

import numpy as np

from distpose_app.data.detector_noise import (
    MPII_TO_H36M,
    SWAP_PAIRS,
    DetectorNoise,
    apply_swaps,
    project_h36m_lens,
    sample_noise,
)

J = 17


def make_model(**overrides) -> DetectorNoise:
    rng = np.random.default_rng(3)
    values = dict(
        bias_m=rng.uniform(-0.03, 0.03, (J, 2)),
        sigma_m=rng.uniform(0.010, 0.020, (J, 2)),
        outlier_prob=np.full(J, 0.05),
        outlier_sigma_m=np.full(J, 0.08),
        outlier_burst_frames=np.full(J, 3.0),
        ar_slow=np.full(J, 0.97),
        ar_fast=np.full(J, 0.5),
        slow_share=np.full(J, 0.7),
        swap_rate=np.full(len(SWAP_PAIRS), 0.03),
        swap_burst_frames=np.full(len(SWAP_PAIRS), 4.0),
        fps=30.0,
        source="test",
    )
    values.update(overrides)
    return DetectorNoise(**values)


# A wide, frontal T-ish pose (metres, z up): every left/right pair at least 0.3 m apart.
BASE_POSE = np.array([
    [0, 0, 1.0], [-0.15, 0, 1.0], [-0.2, 0, 0.55], [-0.25, 0, 0.1], [0.15, 0, 1.0],
    [0.2, 0, 0.55], [0.25, 0, 0.1], [0, 0, 1.25], [0, 0, 1.5], [0, 0, 1.6], [0, 0, 1.75],
    [0.2, 0, 1.5], [0.4, 0, 1.45], [0.6, 0, 1.4], [-0.2, 0, 1.5], [-0.4, 0, 1.45],
    [-0.6, 0, 1.4],
])  # fmt: skip


def _look_at(centre: np.ndarray) -> np.ndarray:
    """World -> camera rotation (OpenCV axes) for a camera at `centre` looking at (0, 0, 1)."""
    forward = np.array([0, 0, 1.0]) - centre
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def write_synthetic_h36m(path, model: DetectorNoise, frames=3000, sequences=3, seed=0,
                         subjects=(1,), detected=(1,)):  # fmt: skip
    """A file with the Human3.6M training file's keys: `sequences` takes per subject (actions
    alternate Walking, Sitting), 4 cameras per subject, and for the `detected` subjects
    detections = the ground truth through the lens, swapped and noised by `model` at 50 fps."""
    rng = np.random.default_rng(seed)
    yaws = np.radians([-40, -15, 15, 40])
    centres = np.stack([[4 * np.sin(y), -4 * np.cos(y), 1.4] for y in yaws])
    cam_r = np.stack([_look_at(c) for c in centres])
    f = np.tile([1150.0, 1148.0], (4, 1))
    c = np.tile([500.0, 505.0], (4, 1))
    k = np.tile([-0.2, 0.2, 0.0], (4, 1))
    p = np.tile([-0.001, 0.0005], (4, 1))
    world, seq, names, actions, seq_subject = [], [], [], [], []
    sh_keypoints, sh_seq, sh_cam, sh_start = [], [], [], [0]
    t = np.arange(frames) / 50.0
    for subject in subjects:
        for s in range(sequences):
            index = len(names)
            action = ("Walking", "Sitting")[s % 2]
            names.append(f"S{subject}/{action} {s // 2 + 1}" if s > 1 else f"S{subject}/{action}")
            actions.append(action)
            seq_subject.append(subject)
            sway = np.stack([0.3 * np.sin(0.3 * t + s), 0.3 * np.cos(0.2 * t), 0 * t], -1)
            pose = BASE_POSE[None] + sway[:, None]
            world.append(pose)
            seq.append(np.full(frames, index))
            if subject not in detected:
                continue
            for ci in range(4):
                x_cam = (pose - centres[ci]) @ cam_r[ci].T
                gt = project_h36m_lens(x_cam, f[ci], c[ci], k[ci], p[ci])
                m2px = (f[ci].mean() / x_cam[:, 0, 2])[None]
                swapped, _ = apply_swaps(model, rng, gt[None], fps=50.0)
                det = (swapped + sample_noise(model, rng, (1, frames), m2px, fps=50.0))[0]
                sh_keypoints.append(det[:, list(MPII_TO_H36M)])
                sh_seq.append(index)
                sh_cam.append(str(ci))
                sh_start.append(sh_start[-1] + frames)
    n_subjects = len(subjects)
    np.savez(
        path,
        world_3d=np.concatenate(world).astype(np.float32),
        sequence=np.concatenate(seq).astype(np.int32),
        sequence_names=np.array(names),
        subject=np.array(seq_subject, np.int32),
        action=np.array(actions),
        camera_subject=np.repeat(np.array(subjects, np.int32), 4),
        camera_id=np.tile(["0", "1", "2", "3"], n_subjects),
        camera_R=np.tile(cam_r, (n_subjects, 1, 1)),
        camera_T=np.tile(centres, (n_subjects, 1)),
        camera_f=np.tile(f, (n_subjects, 1)),
        camera_c=np.tile(c, (n_subjects, 1)),
        camera_k=np.tile(k, (n_subjects, 1)),
        camera_p=np.tile(p, (n_subjects, 1)),
        camera_size=np.tile([1000.0, 1010.0], (4 * n_subjects, 1)),
        sh_sequence=np.array(sh_seq, np.int32),
        sh_camera=np.array(sh_cam),
        sh_start=np.array(sh_start, np.int64),
        sh_keypoints=np.concatenate(sh_keypoints).astype(np.float32),
        fps=np.float32(50.0),
    )
    return path
