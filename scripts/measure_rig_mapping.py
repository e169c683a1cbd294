"""Fit `data.definitions.RigMapping` for the Bandai-Namco rig against Human3.6M's joint
definitions and print the residual (docs/mocap.md, "Joint definitions").

Body-frame statistics (`definitions.body_frame_statistics`) of Human3.6M's five training subjects
(every 10th frame) are averaged into the target; the rig's joints (every 10th frame of every
Bandai-Namco file, converted with the rig's own joints in the torso slots) are fitted to it.
Printed: the coefficients (paste into `data.mocap.BANDAI_MAPPING`), and per torso joint the mean
(lat, up, fwd) coordinates of Human3.6M, of the rig before and after mapping, in limb-scale units
(about 0.25 m) and in centimetres for a body of Human3.6M's mean size, and the knees' straightest
flexion (low percentiles over all frames) before and after.

    python scripts/measure_rig_mapping.py [--h36m FILE] [--archive FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distpose_app.core import paths  # noqa: E402
from distpose_app.core.skeleton import JOINT_NAMES  # noqa: E402
from distpose_app.data import definitions as D  # noqa: E402


def h36m_target(path: Path) -> tuple[dict, list[dict]]:
    from distpose_app.data.h36m import load_h36m

    data = load_h36m(path)
    per_subject = []
    for subject in np.unique(data.subject_of_frame):
        frames = data.world_3d[data.subject_of_frame == subject][::10]
        per_subject.append(D.body_frame_statistics(frames))
    target = {
        "mean": np.mean([s["mean"] for s in per_subject], axis=0),
        "std": np.mean([s["std"] for s in per_subject], axis=0),
        "thigh": float(np.mean([s["thigh"] for s in per_subject])),
        "hip_half_width": float(np.mean([s["hip_half_width"] for s in per_subject])),
        "scale_m": float(np.mean([s["scale_m"] for s in per_subject])),
        "knee_low": np.mean([s["knee_low"] for s in per_subject], axis=0),
    }
    return target, per_subject


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--h36m", default=str(paths.DEFAULT_H36M))
    p.add_argument("--archive", default=str(paths.DEFAULT_ARCHIVE))
    args = p.parse_args()
    from distpose_app.data.mocap import rig_sequences

    target, subjects = h36m_target(Path(args.h36m))
    rig, neck, head = rig_sequences(args.archive, paths.CACHE_DIR, step=10)
    mapping = D.fit_rig_mapping(rig, neck, head, target)
    mapped = D.apply_rig_mapping(rig, neck, head, mapping)
    before, after = D.body_frame_statistics(rig), D.body_frame_statistics(mapped)
    cm = 100 * target["scale_m"]
    print("BANDAI_MAPPING = RigMapping(")
    for k, v in mapping.to_dict().items():
        print(f"    {k}={tuple(round(x, 4) for x in v) if isinstance(v, tuple) else round(v, 4)},")
    print(")\n")
    scales = ", ".join(f"{s['scale_m']:.3f}" for s in subjects)
    print(f"limb scale: Human3.6M {target['scale_m']:.3f} m (subjects {scales}); "
          f"rig {before['scale_m']:.3f} m\n")  # fmt: skip
    print("| joint | Human3.6M (lat, up, fwd) | rig before | rig after | after - H36M, cm |")
    print("|---|---|---|---|---|")
    fmt = lambda v: "(" + ", ".join(f"{x:+.2f}" for x in v) + ")"  # noqa: E731
    for j in D.TORSO_JOINTS:
        diff = (after["mean"][j] - target["mean"][j]) * cm
        print(f"| {JOINT_NAMES[j]} | {fmt(target['mean'][j])} | {fmt(before['mean'][j])} | "
              f"{fmt(after['mean'][j])} | {fmt(diff)} |")  # fmt: skip
    print()
    print("| ratio (limb units) | Human3.6M | rig before | rig after |")
    print("|---|---|---|---|")
    for k in ("thigh", "hip_half_width"):
        print(f"| {k} | {target[k]:.3f} | {before[k]:.3f} | {after[k]:.3f} |")
    print()
    pct = ", ".join(f"p{q:g}" for q in D.KNEE_LOW_PERCENTILES)
    print(f"| knee flexion ({pct} over all frames, both knees), degrees | Human3.6M | rig before "
          "| rig after |")  # fmt: skip
    print("|---|---|---|---|")
    fmt_k = lambda v: ", ".join(f"{x:.1f}" for x in v)  # noqa: E731
    per = "; ".join(fmt_k(s["knee_low"]) for s in subjects)
    print(f"| all | {fmt_k(target['knee_low'])} (subjects {per}) | {fmt_k(before['knee_low'])} | "
          f"{fmt_k(after['knee_low'])} |")  # fmt: skip
    spread = np.mean([np.abs(s["mean"][list(D.TORSO_JOINTS)] - target["mean"][list(D.TORSO_JOINTS)])
                      for s in subjects]) * cm  # fmt: skip
    resid = np.abs(after["mean"] - target["mean"])[list(D.TORSO_JOINTS)].mean() * cm
    print(
        f"\nmean |after - H36M| over torso joints: {resid:.2f} cm "
        f"(Human3.6M's own subject-to-subject spread: {spread:.2f} cm)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
