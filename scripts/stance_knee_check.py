"""Where the bent stance knee comes from: knee flexion at mid-stance in the training mocap and
in the lifter's output on the held-out Human3.6M subject.

Mid-stance (3D, y up): a frame where the two ankles are horizontally closest within +-`window`
frames (the swing foot passing the stance foot) while one is at least 3 cm lower; the stance
leg is the lower ankle; flexion is `core.skeleton.knee_flexion` (0 = straight). Prints
the median (10th-90th percentile) for Human3.6M's walking of the training subjects (world
poses), the Bandai-Namco walks mapped to Human3.6M's definitions (per style), and, for each
`--weights`, the lifted S8 walking through its 4 cameras from ground-truth 2D against its own
ground truth (needs `distpose data h36m-external --subjects S8 --input gt --out S8_GT`).

    python scripts/stance_knee_check.py --s8 .cache/eval/s8_gt.npz --weights pretrained/meta.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_LEGS = ((1, 2, 3), (4, 5, 6))  # (hip, knee, ankle) right, left in the H36M-17 order


def mid_stance(poses: np.ndarray, up: int, window: int) -> list[tuple[int, int]]:
    """(frame, leg index 0 = right / 1 = left) events of a walk; poses (T, 17, 3) metres with
    axis `up` pointing up (use -1 times a y-down axis)."""
    horizontal = [a for a in range(3) if a != up]
    gap = np.linalg.norm(poses[:, 3][:, horizontal] - poses[:, 6][:, horizontal], axis=-1)
    events = []
    for j in range(window, len(poses) - window):
        low = poses[j, 3, up] - poses[j, 6, up]
        if gap[j] == gap[j - window : j + window + 1].min() and abs(low) > 0.03:
            events.append((j, 0 if low < 0 else 1))
    return events


def stance_flexion(poses: np.ndarray, events) -> list[float]:
    """Flexion (degrees) of the stance leg at each (frame, leg) event, measured on `poses`
    (T, 17, 3) metres (the events may come from another pose track of the same frames)."""
    from distpose_app.evaluation.plausibility import knee_flexion

    flex = np.degrees(knee_flexion(poses))
    return [float(flex[j, leg]) for j, leg in events]


def summary(values: list[float]) -> str:
    if not values:
        return "no events"
    v = np.asarray(values)
    return (f"{np.median(v):5.1f}° ({np.percentile(v, 10):.1f}-{np.percentile(v, 90):.1f}), "
            f"{len(v)} events")  # fmt: skip


def main() -> int:
    from distpose_app.core.paths import CACHE_DIR, DEFAULT_ARCHIVE, SHARED
    from distpose_app.data.h36m import load_h36m, mocap_sequences
    from distpose_app.data.mocap import load_bandai

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--h36m", default=str(SHARED / "data" / "h36m-train-s1-s5-s6-s7-s8.npz"))
    p.add_argument("--archive", default=str(DEFAULT_ARCHIVE))
    p.add_argument("--cache", default=str(CACHE_DIR))
    p.add_argument("--s8", help="S8 ground-truth external .npz (distpose data h36m-external)")
    p.add_argument("--weights", nargs="*", default=[])
    p.add_argument("--window", type=int, default=5, help="frames either side (at 30 fps)")
    args = p.parse_args()

    h36m = [s for s in mocap_sequences(load_h36m(args.h36m), (1, 5, 6, 7), 30.0)
            if s.content.startswith("Walking")]  # fmt: skip
    values = []
    for s in h36m:
        values += stance_flexion(s.positions, mid_stance(s.positions, 1, args.window))
    print(f"Human3.6M S1, S5, S6, S7 walking (ground truth): {summary(values)}")
    by_style: dict[str, list[float]] = {}
    for s in load_bandai(args.archive, args.cache, progress=False):
        if s.content == "walk":
            events = mid_stance(s.positions, 1, args.window)
            by_style.setdefault(s.style, []).extend(stance_flexion(s.positions, events))
    everything = [v for vs in by_style.values() for v in vs]
    print(f"Bandai-Namco walks, Human3.6M definitions: {summary(everything)}")
    for style in sorted(by_style):
        print(f"    {style:14s} {summary(by_style[style])}")
    if args.s8 and args.weights:
        lifted_s8(args.s8, args.weights, args.window)
    return 0


def lifted_s8(path: str, weights: list[str], window: int) -> None:
    """The stance knee of S8's walking, ground truth and lifted from ground-truth 2D."""
    import torch

    from distpose_app.data.external import load_external
    from distpose_app.evaluation.protocol import lift
    from distpose_app.lens.screen import normalize_screen_coordinates
    from distpose_app.lifter.model import load_checkpoint

    torch.set_num_threads(2)
    data = load_external(path)
    walks = [i for i, n in enumerate(data.names) if str(n).split("/")[1].startswith("Walking")]
    models = {w: load_checkpoint(w)[0].eval() for w in weights}
    truth: list[float] = []
    lifted: dict[str, list[float]] = {w: [] for w in weights}
    for i in walks:
        frames = data.sequence == i
        gt = data.positions_3d[frames]
        up = gt * np.array([1.0, -1.0, 1.0])  # camera y is down
        events = mid_stance(up, 1, int(round(window * data.fps / 30.0)))
        truth += stance_flexion(gt, events)
        w, h = data.image_size[i]
        kp = data.keypoints_2d[frames]
        screen = normalize_screen_coordinates(kp, w, h)
        for name, model in models.items():
            lifted[name] += stance_flexion(lift(model, screen, data.fps), events)
    print(f"S8 walking, 4 cameras, ground truth: {summary(truth)}")
    for name in weights:
        print(f"S8 walking lifted from ground-truth 2D by {name}: {summary(lifted[name])}")


if __name__ == "__main__":
    sys.exit(main())
