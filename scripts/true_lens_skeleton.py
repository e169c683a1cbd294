"""Does the true lens make the lifted skeleton more or less consistent? The lens fit's last guard.

Adapt refuses a lens that makes the lifted skeleton's left/right bone symmetry worse by more
than 10% or its bone-length constancy by more than 15% (or 0.5 mm; `adapt.lens_fit`). This
prints, for each lens, both measures on `distpose evaluate`'s adaptation buffer (the held-out
styles through the 90° 1280x720 evaluation webcam, or the file given by --data, e.g. the Demo's
from `distpose data demo`; the first 20 s of the adaptation half, optional detector noise)
lifted as seen and with the TRUE lens undone, and what Adapt answers on that buffer. When the
true correction itself worsens them, the guard refuses right answers.

    python scripts/true_lens_skeleton.py --lens none strong fisheye brown:-0.6,0.25 --noise-px 2
    python scripts/true_lens_skeleton.py --data demo.npz --lens strong fisheye
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def buffers(data, lens_text: str, noise_px: float, seconds: float = 20.0):
    """(seen, true-lens undone) adaptation buffers (T, 17, 2) at the model's rate, built as
    `evaluation.protocol.evaluate_lens` builds its A buffer."""
    from distpose_app.evaluation import protocol as ev
    from distpose_app.lifter import MODEL_FPS

    imaging = ev.parse_imaging(lens_text)
    px = ev._noisy(data, ev.distorted_pixels(data, imaging), noise_px, seed=0)
    budget = int(round(seconds * data.fps))
    seen, ideal, taken = [], [], 0
    for s, a, b in ev._ranges(data)[1::2]:
        take = min(b - a, budget - taken)
        if take <= 0:
            break
        seen.append(ev.resample(ev._normalised(data, px, s, a, b)[:take], data.fps, MODEL_FPS))
        ideal.append(ev.resample(ev.oracle_input(data, px, imaging, s, a, b)[:take], data.fps,
                                 MODEL_FPS))  # fmt: skip
        taken += take
    return np.concatenate(seen), np.concatenate(ideal)


def main() -> int:
    import torch

    from distpose_app.adapt import adapt_model
    from distpose_app.adapt.lens_fit import _skeleton
    from distpose_app.cli.evaluate import held_out_data
    from distpose_app.core.paths import CACHE_DIR, DEFAULT_ARCHIVE
    from distpose_app.data.external import load_external
    from distpose_app.evaluation import protocol as ev
    from distpose_app.lifter.inference import lift_sequence
    from distpose_app.lifter.model import load_checkpoint

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="pretrained/meta.pt")
    p.add_argument("--lens", nargs="+", default=["none", "strong", "fisheye"])
    p.add_argument("--noise-px", type=float, default=0.0)
    p.add_argument("--data", help="an external .npz (default: the Bandai held-out styles)")
    args = p.parse_args()
    torch.set_num_threads(1)
    model, _ = load_checkpoint(args.weights)
    model.eval()
    data = load_external(args.data) if args.data else held_out_data(DEFAULT_ARCHIVE, CACHE_DIR)
    print("| lens | symmetry seen → true lens (mm) | constancy seen → true lens (mm) | Adapt |")
    print("|---|---|---|---|")
    for lens in args.lens:
        seen, ideal = buffers(data, lens, args.noise_px)
        a, b = (_skeleton(lift_sequence(model, x.astype(np.float32))) for x in (seen, ideal))
        whole = ev.parse_imaging(lens).keeps_whole_picture(data)  # as `distpose evaluate`
        res = adapt_model(model, seen, "lens", whole_picture=whole)
        cells = [f"{a[k]:.2f} → {b[k]:.2f} ({100 * (b[k] / a[k] - 1):+.1f}%)"
                 for k in ("symmetry_mm", "consistency_mm")]  # fmt: skip
        print(f"| `{lens}` | {cells[0]} | {cells[1]} | {res.reason} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
