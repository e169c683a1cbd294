"""Does lens-space ISO (`distpose_app.adapt.lens_fit`) work? Measure it on the held-out mocap.

Protocol as `evaluate.evaluate_lens`: per lens, 2D through the 90° 1280x720 evaluation webcam and
the lens, detector-like noise; adapt on the A half (odd sequences, first 20 s), score MPJPE on the
E half (even sequences). Prints per lens: the model unadapted, lens-adapted, the oracle (baseline
fed the truly undistorted 2D, as `distpose evaluate`), the share of the gap closed, seconds. With
--landscape LENS: the objective's terms and the A buffer's true MPJPE over a k1 grid.

    .venv/bin/python scripts/lens_adapt_probe.py --max-sequences 120 --landscape brown:-0.6,0.25
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distpose_app.adapt import lens_fit as la  # noqa: E402
from distpose_app.lifter.inference import lift_sequence  # noqa: E402
from distpose_app.cli.evaluate import held_out_data, load_models  # noqa: E402
from distpose_app.core import metrics  # noqa: E402
from distpose_app.evaluation import protocol as ev  # noqa: E402

ARCHIVE = "../shared/data/bandai-namco-motion.tar.xz"
LENSES = ("none", "strong", "brown:-0.6,0.25", "brown:0.3", "fisheye:-0.15",
          "brown:-0.3,0.05,0,0.008,-0.008", "division:-0.3")  # fmt: skip


def lens_inputs(data, lens_text: str, noise_px: float, seed: int, adapt_seconds: float):
    """Normalised 2D of the E sequences (observed and truly undistorted), the A buffer's 2D and
    root-relative 3D (metres), built as `evaluate.evaluate_lens` builds them."""
    px = ev._noisy(data, ev.distorted_pixels(data, lens_text), noise_px, seed)
    seqs = ev._ranges(data)
    gt = data.positions_3d - data.positions_3d[..., :1, :]
    e_obs = [ev._normalised(data, px, s, a, b) for s, a, b in seqs[0::2]]
    e_ideal = [ev.oracle_input(data, px, lens_text, s, a, b) for s, a, b in seqs[0::2]]
    e_gt = [gt[a:b] for _, a, b in seqs[0::2]]
    budget, buf, buf_gt = int(round(adapt_seconds * data.fps)), [], []
    for s, a, b in seqs[1::2]:
        take = min(b - a, budget - sum(len(x) for x in buf))
        if take <= 0:
            break
        buf.append(ev._normalised(data, px, s, a, b)[:take])
        buf_gt.append(gt[a : a + take])
    return e_obs, e_ideal, e_gt, buf, buf_gt


def validation_buffers(noise_px: float, count: int, seconds: float = 20.0) -> list[np.ndarray]:
    """`count` lens-free 2D buffers (N, 17, 2) normalised, from the validation split (not the
    test split) through the evaluation webcam, with the same detector-like noise: what
    `distpose adapt-calibrate` uses, on the recorded (standing) poses."""
    from distpose_app.cli.adapt_calibrate import validation_buffers as buffers

    return buffers(ARCHIVE, ".cache", noise_px, count, seconds, poses="standing")


def score(model, sequences, gt, transform=None) -> float:
    """MPJPE (mm) of `model` over the sequences (each lifted whole), 2D optionally transformed."""
    preds = [lift_sequence(model, kp if transform is None else transform(kp)) for kp in sequences]
    return 1000 * metrics.mpjpe(np.concatenate(preds), np.concatenate(gt))


def landscape(model, buf, buf_gt, config, k1s) -> None:
    print(f"objective landscape over k1 (k2 = 0); focal {config.focal:.3f}")
    print("  k1     " + "  ".join(f"{t:>12s}" for t in la.TERMS) + "   A-MPJPE mm")
    objective = la._Objective(model, np.concatenate(buf).astype(np.float32), config)
    for k1 in k1s:
        lens = la.ScreenLens(k1=float(k1))
        with torch.no_grad():
            terms = objective.terms(lens.params_tensor())
        mm = score(model, buf, buf_gt, lens.undistort)
        print(f"  {k1:+.2f}  " + "  ".join(f"{float(terms[t]):12.5f}" for t in la.TERMS)
              + f"   {mm:8.1f}")  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-sequences", type=int, default=120)
    p.add_argument("--lenses", nargs="+", default=list(LENSES))
    p.add_argument("--model", default="augmented")
    p.add_argument("--noise-px", type=float, default=2.0)
    p.add_argument("--hfov", type=float, default=85.0, help="lifter's assumed hfov, degrees")
    p.add_argument("--terms", default="reprojection=1", help="term=weight,...")
    p.add_argument("--fit", default="k1")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--k1-offset", type=float, help="the objective's bias (default: calibrate)")
    p.add_argument("--calibration-buffers", type=int, default=7)
    p.add_argument("--landscape", help="print the objective over a k1 grid for this lens")
    p.add_argument("--no-adapt", action="store_true", help="only the landscape")
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    models, _ = load_models("pretrained", sorted({args.model, "baseline"}))
    model, oracle_model = models[args.model], models["baseline"]
    data = held_out_data(ARCHIVE, ".cache", args.max_sequences)
    weights = {k: float(v) for k, v in (t.split("=") for t in args.terms.split(","))}
    config = la.LensAdaptConfig(
        focal=la.focal_from_hfov(args.hfov), weights=weights, fit=tuple(args.fit.split(",")),
        steps=args.steps, lr=args.lr,
    )  # fmt: skip
    if args.k1_offset is None:
        start = time.perf_counter()
        buffers = validation_buffers(args.noise_px, args.calibration_buffers)
        config.k1_offset = la.calibrate_k1_offset(model, buffers, config)
        print(f"k1 offset {config.k1_offset:+.3f} from {len(buffers)} validation buffers "
              f"({time.perf_counter() - start:.1f} s)")  # fmt: skip
    else:
        config.k1_offset = args.k1_offset
    print(
        f"{len(data.sequence)} frames, {data.num_sequences} sequences; model {args.model}; "
        f"noise {args.noise_px} px; terms {weights}; fit {config.fit}; hfov {args.hfov}"
    )
    if args.landscape:
        e_obs, e_ideal, e_gt, buf, buf_gt = lens_inputs(data, args.landscape, args.noise_px, 0, 20)
        landscape(model, buf, buf_gt, config, np.round(np.arange(-0.8, 0.81, 0.1), 2))
    if args.no_adapt:
        return 0
    rows = []
    print("| lens | unadapted | lens-adapted | oracle | own oracle | gap closed (own) | k1, k2 "
          "| accepted | s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for text in args.lenses:
        e_obs, e_ideal, e_gt, buf, buf_gt = lens_inputs(data, text, args.noise_px, 0, 20)
        start = time.perf_counter()
        res = la.lens_adapt(model, np.concatenate(buf), config)
        seconds = time.perf_counter() - start
        plain = score(model, e_obs, e_gt)
        adapted = score(model, e_obs, e_gt, res.lens.undistort)
        oracle = score(oracle_model, e_ideal, e_gt)
        own = score(model, e_ideal, e_gt)
        gap, own_gap = plain - oracle, plain - own
        share = (plain - adapted) / gap if abs(gap) >= 0.5 else float("nan")
        own_share = (plain - adapted) / own_gap if abs(own_gap) >= 0.5 else float("nan")
        row = {
            "lens": text,
            "unadapted": plain,
            "adapted": adapted,
            "oracle": oracle,
            "own_oracle": own,
            "gap_closed": share,
            "gap_closed_own": own_share,
            "seconds": seconds,
            **res.summary(),
        }
        rows.append(row)
        print(f"| {text} | {plain:.1f} | {adapted:.1f} | {oracle:.1f} | {own:.1f} | "
              f"{100 * share:.0f}% ({100 * own_share:.0f}%) | "
              f"{res.lens.k1:+.2f}, {res.lens.k2:+.2f} | {res.accepted} | {seconds:.2f} |",
              flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
