"""`distpose train MODE`: baseline / augmented / meta training on the synthetic mocap views."""

from __future__ import annotations

import argparse

from distpose_app.core import validate as v
from distpose_app.core.paths import CACHE_DIR, DEFAULT_ARCHIVE, DEFAULT_H36M

SOURCES = ("bandai", "h36m-virtual", "h36m-cameras")  # data.training_sets.SOURCES (no import)


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"filter widths must be like 3,3,3, not {text!r}"
        ) from None
    if not widths or any(w < 1 or w % 2 == 0 for w in widths):
        raise argparse.ArgumentTypeError(f"filter widths must be odd and positive: {text!r}")
    return widths


def _weights(text: str) -> dict[str, float]:
    from distpose_app.core.errors import DistposeError

    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise DistposeError(f"--source-weights: {item!r} is not name=number") from None
        if not (out[name.strip()] >= 0 and out[name.strip()] < float("inf")):
            raise DistposeError(f"--source-weights: {item!r} must be a finite number >= 0")
    return out


def _content_weights(items: list[str] | None) -> dict[str, float]:
    from distpose_app.core.errors import DistposeError

    out = {}
    for item in items or []:
        pattern, _, value = item.rpartition("=")
        try:
            out[pattern] = float(value)
        except ValueError:
            raise DistposeError(f"--content-weight: {item!r} is not PATTERN=number") from None
        if not pattern or not (0 <= out[pattern] < float("inf")):
            raise DistposeError(f"--content-weight: {item!r} needs a pattern and a number >= 0")
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("mode", choices=("baseline", "augmented", "meta"))
    p.add_argument("--out", help="run folder (default runs/<mode>); resumes from its last.pt")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out has a run")
    p.add_argument("--export", metavar="PT", help="copy the best checkpoint here at the end")
    g = p.add_argument_group("data")
    g.add_argument("--archive", default=str(DEFAULT_ARCHIVE), help="Bandai-Namco .tar.xz")
    g.add_argument("--h36m", default=str(DEFAULT_H36M), help="Human3.6M training subjects .npz")
    g.add_argument(
        "--sources",
        default=",".join(SOURCES),
        help=f"comma-separated mocap sources (default all: {','.join(SOURCES)}); with a "
        "Human3.6M source, validation is Human3.6M's held-out S8 through its real cameras",
    )
    g.add_argument(
        "--source-weights",
        default="bandai=0.35,h36m-cameras=0.4,h36m-virtual=0.25",
        help="share of windows per source, name=weight,... (default %(default)s); '' draws by "
        "frame count",
    )
    g.add_argument(
        "--content-weight",
        action="append",
        metavar="PATTERN=W",
        help="within its source, windows of views whose name matches the regular expression "
        "PATTERN are W times as likely (repeatable; names: Bandai '<file>/view<k>', e.g. "
        "'dataset-1_walk_normal_001/view0'; Human3.6M 'S1/Walking 1/cam0')",
    )
    g.add_argument(
        "--bodies",
        type=float,
        default=0.5,
        help="share of windows given another body size and build (default 0.5)",
    )
    g.add_argument("--views", type=v.positive_int, default=2, help="virtual webcams per file")
    g.add_argument("--cache", default=str(CACHE_DIR))
    g.add_argument(
        "--poses",
        choices=("standing", "mixed"),
        default="mixed",
        help="mixed (default): the mocap plus one edited variant per file (seated, crouching, "
        "bending forward, kneeling); standing: the mocap as recorded",
    )
    g.add_argument(
        "--no-masking",
        action="store_true",
        help="train on full views only (default: random unseen legs, lower body, arm, head)",
    )
    g.add_argument(
        "--closeup",
        type=v.probability,
        default=0.15,  # TrainConfig.closeup (imported lazily: torch)
        help="share of windows seen by a desk webcam's close-up (legs out of the image)",
    )
    g = p.add_argument_group("model")
    g.add_argument("--filter-widths", type=_widths, default=(3, 3, 3))
    g.add_argument("--channels", type=v.positive_int, default=256)
    g.add_argument("--widen", type=v.positive_int, default=0, metavar="C",
                   help="with --init: continue the model at C channels, computing the same "
                   "function at the start (Net2Net widening)")  # fmt: skip
    g.add_argument("--dropout", type=v.arg_float(0.0, 1.0, high_open=True), default=0.25)
    g.add_argument("--symmetric", action="store_true", help="look ahead (default: causal)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=v.positive_int, default=2000)
    g.add_argument("--batch", type=v.positive_int, default=128, help="windows per step")
    g.add_argument("--chunk", type=v.positive_int, default=16, help="output frames per window")
    g.add_argument("--lr", type=v.positive_float, default=1e-3)
    g.add_argument("--lr-final", type=v.positive_float, default=None,
                   help="the last step's learning rate (default --lr/10)")  # fmt: skip
    g.add_argument("--bone-loss", type=v.non_negative_float, default=1.0,
                   help="weight of the bone-length loss beside MPJPE (0: MPJPE alone)")  # fmt: skip
    g.add_argument("--noise-px", type=v.non_negative_float, default=1.0,
                   help="Gaussian 2D noise (--noise gauss)")  # fmt: skip
    g.add_argument(
        "--noise",
        choices=("detector", "gauss"),
        default="detector",
        help="detector (default): the noise model fitted on Human3.6M's real Stacked Hourglass "
        "detections (needs --h36m); gauss: Gaussian --noise-px",
    )
    g.add_argument("--noise-scale", type=v.non_negative_float, default=1.0,
                   help="detector noise scale factor")  # fmt: skip
    g.add_argument("--noise-bias", choices=("random", "fitted", "none"), default="random")
    g.add_argument(
        "--noise-residuals",
        type=v.probability,
        default=0.0,
        help="share of windows given windows of real detection residuals (Human3.6M's Stacked "
        "Hourglass, joints and frames correlated as a detector's) instead of the fitted "
        "model's error (default 0)",
    )
    g.add_argument("--noise-residual-subjects", default="S1,S5",  # TrainConfig's (lazy: torch)
                   help="whose detections give the residuals (default %(default)s)")  # fmt: skip
    g.add_argument("--seed", type=v.seed_int, default=0)
    g.add_argument("--threads", type=v.threads_int, help="torch CPU threads")
    g.add_argument("--device", default="cpu",
                   help="where the network trains: cpu (default), cuda or cuda:N")  # fmt: skip
    g.add_argument(
        "--workers",
        type=v.non_negative_int,
        default=0,
        help="processes drawing the batches (baseline, augmented), one core each; 0 (default): "
        "the training process draws them. With a GPU, use most of the cores",
    )
    g.add_argument("--val-every", type=v.positive_int, default=250)
    g = p.add_argument_group("meta (MAML)")
    g.add_argument(
        "--init",
        help="checkpoint to start from: required for meta (the augmented model); for baseline "
        "and augmented, continue training that model with a fresh optimiser and schedule",
    )
    g.add_argument("--tasks", type=v.positive_int, default=16, help="tasks per meta batch")
    g.add_argument(
        "--inner-steps",
        type=v.non_negative_int,
        default=1,
        help="0: plain fine-tuning under the meta settings (the ablation)",
    )
    g.add_argument("--inner-lr", type=v.positive_float, default=1e-2)
    g.add_argument(
        "--inner-params",
        choices=("bn", "last", "all", "lens"),
        default="bn",
        help="what the inner loop adapts: weights (bn, last, all) or the input lens (lens: "
        "the lens-space adaptation, chosen by its reprojection objective)",
    )
    g.add_argument("--inner-loss", choices=("iso", "supervised", "both"), default="iso")
    g.add_argument("--second-order", action="store_true")


def run(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    import torch

    from distpose_app.core.errors import DistposeError
    from distpose_app.data.training_sets import build_training_data
    from distpose_app.lifter import MODEL_FPS
    from distpose_app.training.loop import TrainConfig, train

    out = Path(args.out or f"runs/{args.mode}")
    v.check_folder("--out", out)
    v.check_folder("--cache", args.cache)
    v.check_input_file(args.archive, "mocap archive (--archive)")
    if args.init:
        v.check_input_file(args.init, "--init checkpoint")
    if args.export:
        v.check_output_file("--export", args.export)
        if out.is_dir() and any(v.same_file(args.export, out / f"{n}.pt")
                                for n in ("best", "last", "final")):  # fmt: skip
            raise DistposeError(f"--export {args.export} is a checkpoint of the run itself")
        if args.init and v.same_file(args.export, args.init):
            raise DistposeError(f"--export {args.export} would overwrite the --init checkpoint")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(
        mode=args.mode,
        filter_widths=args.filter_widths,
        channels=args.channels,
        dropout=args.dropout,
        causal=not args.symmetric,
        steps=args.steps,
        batch_windows=args.batch,
        chunk_frames=args.chunk,
        lr=args.lr,
        lr_final=args.lr / 10 if args.lr_final is None else args.lr_final,
        bone_loss=args.bone_loss,
        noise_px=args.noise_px,
        noise_scale=args.noise_scale,
        noise_bias=args.noise_bias,
        noise_residuals=args.noise_residuals,
        noise_residual_subjects=tuple(
            x.strip() for x in args.noise_residual_subjects.split(",") if x.strip()
        ),
        noise_residual_file=str(args.h36m) if args.noise_residuals else "",
        bodies=args.bodies,
        sources=tuple(s.strip() for s in args.sources.split(",") if s.strip()),
        source_weights=_weights(args.source_weights),
        content_weights=_content_weights(args.content_weight),
        masking=not args.no_masking,
        closeup=args.closeup,
        seed=args.seed,
        val_every=args.val_every,
        device=args.device,
        workers=args.workers,
        init=args.init or "",
        widen=args.widen,
        tasks_per_batch=args.tasks,
        inner_steps=args.inner_steps,
        inner_lr=args.inner_lr,
        inner_params=args.inner_params,
        inner_loss=args.inner_loss,
        second_order=args.second_order,
    )
    unknown = set(config.sources) - set(SOURCES)
    if unknown or not config.sources:
        raise DistposeError(f"--sources: choose from {','.join(SOURCES)}, not {args.sources!r}")
    # A subject without detections: refused before the noise fit and the data's loading.
    if config.noise_residuals:
        from distpose_app.data.detector_noise import check_detected_subjects

        check_detected_subjects(args.h36m, config.noise_residual_subjects)
    if args.noise == "detector":
        from distpose_app.data.detector_noise import fit_detector_noise

        config.noise_model = fit_detector_noise(args.h36m).to_dict()
    config.validate()
    train_set, val_set = build_training_data(
        args.archive,
        args.h36m,
        config.sources,
        args.views,
        args.cache,
        args.poses,
        MODEL_FPS,
        seed=args.seed,
    )
    print("training data:", train_set.describe(), "validation:", val_set.describe())
    best = train(config, train_set, val_set, out, resume=not args.no_resume)
    print(f"best checkpoint: {best}")
    if args.export:
        shutil.copyfile(best, args.export)
        print(f"exported to {args.export}")
    return 0
