"""`distpose evaluate`: score the shipped models (and their adaptations) across lenses."""

from __future__ import annotations

import argparse

from distpose_app.paths import CACHE_DIR, DEFAULT_ARCHIVE, PRETRAINED_DIR

# The held-out set is seen through one webcam (90° horizontal FOV, 1280x720): a lens string then
# means one physical camera, as it does for a user, and the presets are defined at that FOV.
EVAL_HFOV_DEG = 90.0
EVAL_SIZE = (1280, 720)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from distpose_app.evaluate import METHODS

    p.add_argument("--data", help="external-format .npz (default: the held-out mocap split)")
    lenses = p.add_mutually_exclusive_group()
    lenses.add_argument("--lens", nargs="+", help="lens strings (default: the presets)")
    lenses.add_argument(
        "--lenses",
        choices=("in", "out"),
        help="in: the presets, inside the training sampler; out: beyond it",
    )
    p.add_argument(
        "--noise-px",
        type=float,
        default=0.0,
        help="detector-like 2D noise, pixels (larger on fast joints)",
    )
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--input-2d", choices=("projected", "detections"), default="projected")
    p.add_argument("--json", default="evaluation.json", help="results file")
    p.add_argument("--plot", help="PNG plot (default: the --json path with .png)")
    p.add_argument("--weights-dir", default=str(PRETRAINED_DIR))
    p.add_argument("--adapt-seconds", type=float, default=20.0, help="ISO buffer length")
    p.add_argument("--fewshot-k", type=int, default=50, help="labelled frames for few-shot")
    p.add_argument("--max-sequences", type=int, default=0, help="use only the first N (0: all)")
    p.add_argument("--archive", default=str(DEFAULT_ARCHIVE))
    p.add_argument("--cache", default=str(CACHE_DIR))
    p.add_argument("--threads", type=int, help="torch CPU threads")


def load_models(weights_dir, names) -> dict:
    """The trained models found in weights_dir as <name>.pt, in eval mode; missing ones skipped."""
    from pathlib import Path

    from distpose_app.model import load_checkpoint

    models, meta = {}, {}
    for name in names:
        path = Path(weights_dir) / f"{name}.pt"
        if path.is_file():
            models[name], meta[name] = load_checkpoint(path)
            models[name].eval()
    return models, meta


def held_out_data(archive, cache, max_sequences: int = 0):
    """The test split seen through one 90° 1280x720 webcam, in the external format."""
    import numpy as np

    from distpose_app.dataset import CameraConfig, load_or_build

    camera = CameraConfig(hfov_deg=(EVAL_HFOV_DEG, EVAL_HFOV_DEG), image_sizes=(EVAL_SIZE,))
    data = load_or_build(archive, "test", 1, seed=1, camera=camera, cache_dir=cache).to_external()
    if max_sequences:
        keep = data.sequence < max_sequences
        data.positions_3d, data.sequence = data.positions_3d[keep], data.sequence[keep]
        data.intrinsics = data.intrinsics[:max_sequences]
        data.image_size = data.image_size[:max_sequences]
        if data.keypoints_2d is not None:
            data.keypoints_2d = data.keypoints_2d[keep]
        data.names = None if data.names is None else np.asarray(data.names)[:max_sequences]
    return data


def _sampler_check(meta: dict, lenses: dict) -> dict:
    """{lens string: inside the lens sampler stored in the augmented/meta checkpoint}."""
    from distpose_app.lens import LensSampler

    stored = next((m["lens_sampler"] for m in meta.values()
                   if m.get("lens_sampler", {}).get("families")), None)  # fmt: skip
    if stored is None:
        return {}
    sampler = LensSampler.from_description(stored)
    return {text: bool(sampler.contains(lens)) for text, lens in lenses.items()}


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    import torch

    from distpose_app import evaluate as ev
    from distpose_app.adapt import IsoConfig
    from distpose_app.dataset import load_external
    from distpose_app.errors import DistposeError
    from distpose_app.lens import parse_lens

    if args.threads:
        torch.set_num_threads(args.threads)
    lens_texts = args.lens or list(ev.LENS_SETS[args.lenses or "in"])
    lenses = {t: parse_lens(t, max_radius=None) for t in lens_texts}  # fail fast on a typo
    if args.noise_px < 0:
        raise DistposeError(f"--noise-px must be >= 0, got {args.noise_px}")
    needed = sorted({ev.METHOD_MODEL[m] for m in args.methods})
    models, meta = load_models(args.weights_dir, needed)
    if not models:
        raise DistposeError(f"no model weights ({', '.join(needed)}.pt) in {args.weights_dir}")
    sampler_inside = _sampler_check(meta, lenses)
    if args.lenses == "out" and any(sampler_inside.values()):
        inside = [t for t, v in sampler_inside.items() if v]
        raise DistposeError(f"'out' lenses inside the training sampler: {inside}")
    if args.data:
        data, source = load_external(args.data), args.data
    else:
        data = held_out_data(args.archive, args.cache, args.max_sequences)
        source = "held-out Bandai-Namco styles (elderly, old), one 90° 1280x720 webcam"
    meta_iso = None
    if "meta" in meta and meta["meta"].get("adaptation"):
        a = meta["meta"]["adaptation"]
        meta_iso = IsoConfig(steps=a["inner_steps"], lr=a["inner_lr"], params=a["inner_params"],
                             optimizer="sgd", anchor_weight=0.0)  # fmt: skip
    start = time.perf_counter()
    rows = ev.evaluate(
        models, data, tuple(lens_texts), tuple(args.methods),
        progress=lambda lens: print(f"evaluating lens {lens} ...", flush=True),
        input_2d=args.input_2d, adapt_seconds=args.adapt_seconds, fewshot_k=args.fewshot_k,
        meta_iso_config=meta_iso, noise_px=args.noise_px,
    )  # fmt: skip
    table = ev.markdown_table(rows)
    print(table)
    gaps = ev.gap_closed(rows)
    if gaps:
        print("share of the augmented -> oracle gap closed: " + ", ".join(
            f"{g['lens']} {g['method']} {100 * g['gap_closed']:.0f}%" for g in gaps))  # fmt: skip
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "data": source,
        "frames_total": int(len(data.sequence)),
        "noise_px": args.noise_px,
        "inside_training_sampler": sampler_inside,
        "gap_closed": gaps,
        "seconds": time.perf_counter() - start,
        "models": {k: v.get("train_config", {}) for k, v in meta.items()},
        "results": rows,
    }
    out.write_text(json.dumps(payload, indent=2, default=float))
    plot = args.plot or str(out.with_suffix(".png"))
    ev.plot(rows, plot)
    print(f"wrote {out} and {plot}")
    return 0
