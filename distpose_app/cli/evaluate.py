"""`distpose evaluate`: score the shipped models (and their adaptations) across lenses, or, with
`--poses`, per pose family with and without masked joints."""

from __future__ import annotations

import argparse

from distpose_app.core import validate as v
from distpose_app.core.paths import CACHE_DIR, DEFAULT_ARCHIVE, PRETRAINED_DIR

# The held-out set is seen through one webcam (90° horizontal FOV, 1280x720): a lens string then
# means one physical camera, as it does for a user, and the presets are defined at that FOV.
EVAL_HFOV_DEG = 90.0
EVAL_SIZE = (1280, 720)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from distpose_app.evaluation.protocol import (
        ADAPT_MODELS,
        ADAPTATIONS,
        METHODS,
        MODELS,
        POSE_MASKS,
    )

    p.add_argument("--data", help="external-format .npz (default: the held-out mocap split)")
    lenses = p.add_mutually_exclusive_group()
    lenses.add_argument(
        "--lens",
        nargs="+",
        help="lens strings, optionally with @pp=dx,dy (principal point off-centre, fractions of "
        "the image) and @hfov=degrees (default: the presets; with --poses one lens, 'none')",
    )
    lenses.add_argument(
        "--lenses",
        choices=("in", "out"),
        help="in: the presets, inside the training sampler; out: beyond it",
    )
    p.add_argument(
        "--noise-px",
        type=v.non_negative_float,
        default=0.0,
        help="detector-like 2D noise, pixels (larger on fast joints)",
    )
    p.add_argument(
        "--drop-prob",
        type=v.arg_float(0.0, 1.0, high_open=True),
        default=0.0,
        help="chance that each joint of each frame goes unseen (dropped detections)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        help=f"methods: {', '.join(METHODS)}, or <model>+<variant> (e.g. augmented+truelens)",
    )
    p.add_argument(
        "--adapt",
        nargs="+",
        choices=ADAPTATIONS,
        default=[],
        help="also score these adaptations of every --adapt-models model, as <model>+<variant>",
    )
    p.add_argument("--adapt-models", nargs="+", choices=MODELS, default=list(ADAPT_MODELS))
    p.add_argument(
        "--poses",
        action="store_true",
        help="score per pose family (standing, seated, crouching, bending forward, kneeling) "
        "with and without masked joints, instead of the lens table",
    )
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                   help="models scored by --poses")  # fmt: skip
    p.add_argument("--masks", nargs="+", default=None,
                   help="joint groups masked by --poses (masking.MASK_GROUPS; default "
                   f"{' '.join(POSE_MASKS[1:])}, none with --group-by action)")  # fmt: skip
    p.add_argument("--group-by", choices=("family", "action"), default=None,
                   help="per-group table: family = pose families (as --poses); action = "
                   "Human3.6M actions from names '<subject>/<action> <take>/<camera>' (needs "
                   "--data, e.g. from `distpose data h36m-external`)")  # fmt: skip
    p.add_argument("--input-2d", choices=("projected", "detections"), default="projected")
    p.add_argument("--json", help="results file (default: evaluation.json, evaluation-poses.json)")
    p.add_argument("--plot", help="PNG plot (default: the --json path with .png)")
    p.add_argument("--weights-dir", default=str(PRETRAINED_DIR))
    p.add_argument("--adapt-seconds", type=v.arg_float(0.0, 3600.0, low_open=True), default=20.0,
                   help="ISO buffer length, seconds")  # fmt: skip
    p.add_argument("--fewshot-k", type=v.positive_int, default=50,
                   help="labelled frames for few-shot")  # fmt: skip
    p.add_argument(
        "--max-sequences",
        type=v.non_negative_int,
        default=0,
        help="use only the first N sequences (with --poses: of each family; 0: all)",
    )
    p.add_argument("--archive", default=str(DEFAULT_ARCHIVE))
    p.add_argument("--cache", default=str(CACHE_DIR))
    p.add_argument("--threads", type=v.threads_int, help="torch CPU threads")


def load_models(weights_dir, names) -> tuple[dict, dict]:
    """({name: model in eval mode}, {name: metadata}) of the trained models found in weights_dir
    as <name>.pt; missing ones skipped."""
    from pathlib import Path

    from distpose_app.lifter.model import load_checkpoint

    models, meta = {}, {}
    for name in names:
        path = Path(weights_dir) / f"{name}.pt"
        if path.is_file():
            models[name], meta[name] = load_checkpoint(path)
            models[name].eval()
    return models, meta


def subset_sequences(data, keep):
    """`data` (data.external.ExternalData) reduced to the sequences `keep` (ids, in their order),
    renumbered 0..len(keep)-1; names, intrinsics and image sizes follow."""
    import numpy as np

    keep = np.asarray(keep, dtype=np.int64)
    new_id = np.full(data.num_sequences, -1, dtype=np.int64)
    new_id[keep] = np.arange(len(keep))
    frames = new_id[data.sequence] >= 0
    data.positions_3d, data.sequence = data.positions_3d[frames], new_id[data.sequence[frames]]
    data.intrinsics, data.image_size = data.intrinsics[keep], data.image_size[keep]
    if data.keypoints_2d is not None:
        data.keypoints_2d = data.keypoints_2d[frames]
    data.names = None if data.names is None else np.asarray(data.names)[keep]
    return data


def held_out_data(archive, cache, max_sequences: int = 0, poses: str = "standing"):
    """The test split seen through one 90° 1280x720 webcam, in the external format. poses:
    data.synthetic.POSE_SETS ("all": every edited family of every held-out file beside the recorded
    motion). max_sequences: keep the first N sequences, of each family with poses="all"."""
    import numpy as np

    from distpose_app.data.cameras import CameraConfig
    from distpose_app.data.synthetic import load_or_build

    camera = CameraConfig(hfov_deg=(EVAL_HFOV_DEG, EVAL_HFOV_DEG), image_sizes=(EVAL_SIZE,))
    data = load_or_build(archive, "test", 1, seed=1, camera=camera, cache_dir=cache,
                         poses=poses).to_external()  # fmt: skip
    if max_sequences:
        if poses == "standing" or data.names is None:
            keep = np.arange(min(max_sequences, data.num_sequences))
        else:
            from distpose_app.evaluation.protocol import sequence_families

            fam = sequence_families(data)
            keep = np.sort(np.concatenate([np.flatnonzero(fam == f)[:max_sequences]
                                           for f in dict.fromkeys(fam)]))  # fmt: skip
        data = subset_sequences(data, keep)
    return data


def _sampler_check(meta: dict, lenses) -> dict:
    """{imaging string: inside the lens sampler stored in the augmented/meta checkpoint}. An
    off-centre principal point (@pp) is never inside (training keeps it centred); @hfov is
    inside only within training's field-of-view range (data.cameras.CameraConfig)."""
    from distpose_app.data.cameras import CameraConfig
    from distpose_app.data.lens_sampler import LensSampler
    from distpose_app.evaluation.protocol import parse_imaging

    stored = next((m["lens_sampler"] for m in meta.values()
                   if m.get("lens_sampler", {}).get("families")), None)  # fmt: skip
    if stored is None:
        return {}
    sampler = LensSampler.from_description(stored)
    lo, hi = CameraConfig().hfov_deg
    out = {}
    for text in lenses:
        im = parse_imaging(text)
        camera_inside = im.pp_offset == (0.0, 0.0) and (
            im.hfov_deg is None or lo <= im.hfov_deg <= hi
        )
        out[text] = bool(camera_inside and sampler.contains(im.lens))
    return out


def check_paths(args: argparse.Namespace) -> None:
    """Fail in one line, before anything loads, when an input is missing or an output would
    land on a folder, on an input, or on another output (the .md and .png beside --json)."""
    from pathlib import Path

    from distpose_app.core.errors import DistposeError
    from distpose_app.evaluation.protocol import MODELS

    v.check_folder("--cache", args.cache)
    if args.data:
        v.check_input_file(args.data, "--data file")
    per_group = args.poses or getattr(args, "group_by", None)
    group = getattr(args, "group_by", None) or "family"
    default = f"evaluation-{'poses' if group == 'family' else group}.json"
    out = Path(args.json or (default if per_group else "evaluation.json"))
    outputs = {"--json": out}
    if per_group:
        outputs["the table beside --json"] = out.with_suffix(".md")
    else:
        outputs["--plot"] = Path(args.plot or out.with_suffix(".png"))
    for option, path in outputs.items():
        v.check_output_file(option, path)
    names = list(outputs.items())
    for i, (option, path) in enumerate(names):
        for other, path2 in names[i + 1 :]:
            if v.same_file(path, path2):
                raise DistposeError(f"{option} and {other} are one file: {path}")
        inputs = [("--data", args.data), ("--archive", args.archive)]
        inputs += [(f"--weights-dir {m}.pt", Path(args.weights_dir) / f"{m}.pt")
                   for m in MODELS]  # fmt: skip
        for name, source in inputs:
            if source and v.same_file(path, source):
                raise DistposeError(f"{option} {path} would overwrite the input {name}")


def _write_json(path, payload) -> None:
    """`payload` as indented JSON at `path` (folder created), atomically."""
    import json
    from pathlib import Path

    from distpose_app.core.fileio import write_atomic

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(payload, indent=2, default=float))


def _ratio(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def run_poses(args: argparse.Namespace) -> int:
    """`distpose evaluate --poses` / `--group-by`: the per-family (docs/pose_edit.md) or
    per-action table."""
    import time
    from pathlib import Path

    from distpose_app.core.errors import DistposeError
    from distpose_app.data.external import load_external
    from distpose_app.evaluation import protocol as ev

    group_by = args.group_by or "family"
    if group_by == "action" and not args.data:
        raise DistposeError("--group-by action needs --data (a Human3.6M external file)")
    masks = args.masks
    if masks is None:
        masks = list(ev.POSE_MASKS[1:]) if group_by == "family" else []
    if args.lenses or (args.lens and len(args.lens) != 1):
        raise DistposeError("--poses takes at most one --lens (default: none)")
    lens_text = args.lens[0] if args.lens else "none"
    ev.parse_imaging(lens_text)  # fail fast on a typo
    models, meta = load_models(args.weights_dir, args.models)
    if not models:
        raise DistposeError(f"no model weights ({', '.join(args.models)}.pt) in {args.weights_dir}")
    if args.data:
        data, source = load_external(args.data), args.data
    else:
        data = held_out_data(args.archive, args.cache, args.max_sequences, poses="all")
        source = ("held-out Bandai-Namco styles (elderly, old) and their pose edits, "
                  "one 90° 1280x720 webcam")  # fmt: skip
    start = time.perf_counter()
    rows = ev.evaluate_poses(
        models, data, lens_text, tuple(masks), input_2d=args.input_2d,
        noise_px=args.noise_px, progress=lambda what: print(f"lifting {what} ...", flush=True),
        group_by=group_by,
    )  # fmt: skip
    table = ev.pose_markdown_table(rows)
    print(table)
    targets = ev.pose_targets(rows) if group_by == "family" else []
    for t in targets:
        fam, legs = (
            t["worst_seated_crouching_vs_standing"],
            t["worst_upper_legs_masked_vs_unmasked"],
        )
        print(f"{t['model']}: worst seated/crouching MPJPE x standing {_ratio(fam)} (target <= "
              f"{ev.FAMILY_RATIO_TARGET}); worst upper body, legs masked x unmasked "
              f"{_ratio(legs)} (target <= {ev.MASKED_UPPER_RATIO_TARGET})")  # fmt: skip
    out = Path(args.json or f"evaluation-{'poses' if group_by == 'family' else group_by}.json")
    _write_json(out, {
        "data": source, "lens": lens_text, "group_by": group_by, "masks": ["none", *masks],
        "input_2d": args.input_2d,
        "frames_total": int(len(data.sequence)), "noise_px": args.noise_px,
        "seconds": time.perf_counter() - start, "targets": targets,
        "models": {k: v.get("train_config", {}) for k, v in meta.items()},
        "results": rows,
    })  # fmt: skip
    out.with_suffix(".md").write_text(table + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import torch

    from distpose_app.adapt.iso import IsoConfig
    from distpose_app.core.errors import DistposeError
    from distpose_app.data.external import load_external
    from distpose_app.evaluation import protocol as ev

    check_paths(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.poses or args.group_by:
        return run_poses(args)
    lens_texts = args.lens or list(ev.LENS_SETS[args.lenses or "in"])
    for t in lens_texts:
        ev.parse_imaging(t)  # fail fast on a typo
    adapted = ev.adapted_methods(args.adapt, args.adapt_models)
    methods = tuple(dict.fromkeys([*args.methods, *adapted]))
    needed = sorted({ev.method_model(m) for m in methods})
    models, meta = load_models(args.weights_dir, needed)
    if not models:
        raise DistposeError(f"no model weights ({', '.join(needed)}.pt) in {args.weights_dir}")
    sampler_inside = _sampler_check(meta, lens_texts)
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
        models, data, tuple(lens_texts), methods,
        progress=lambda lens: print(f"evaluating lens {lens} ...", flush=True),
        input_2d=args.input_2d, adapt_seconds=args.adapt_seconds, fewshot_k=args.fewshot_k,
        meta_iso_config=meta_iso, noise_px=args.noise_px, drop_prob=args.drop_prob,
    )  # fmt: skip
    table = ev.markdown_table(rows)
    print(table)
    gaps = ev.gap_closed(rows)
    if gaps:
        print("share of the augmented -> oracle gap closed: " + ", ".join(
            f"{g['lens']} {g['method']} {100 * g['gap_closed']:.0f}%" for g in gaps))  # fmt: skip
    out = Path(args.json or "evaluation.json")
    _write_json(out, {
        "data": source,
        "frames_total": int(len(data.sequence)),
        "noise_px": args.noise_px,
        "drop_prob": args.drop_prob,
        "inside_training_sampler": sampler_inside,
        "gap_closed": gaps,
        "seconds": time.perf_counter() - start,
        "models": {k: v.get("train_config", {}) for k, v in meta.items()},
        "results": rows,
    })  # fmt: skip
    plot = args.plot or str(out.with_suffix(".png"))
    ev.plot(rows, plot)
    print(f"wrote {out} and {plot}")
    return 0
