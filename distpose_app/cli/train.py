"""`distpose train MODE`: baseline / augmented / meta training on the synthetic mocap views."""

from __future__ import annotations

import argparse

from distpose_app.core import validate as v
from distpose_app.core.paths import CACHE_DIR, DEFAULT_ARCHIVE


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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("mode", choices=("baseline", "augmented", "meta"))
    p.add_argument("--out", help="run folder (default runs/<mode>); resumes from its last.pt")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out has a run")
    p.add_argument("--export", metavar="PT", help="copy the best checkpoint here at the end")
    g = p.add_argument_group("data")
    g.add_argument("--archive", default=str(DEFAULT_ARCHIVE), help="Bandai-Namco .tar.xz")
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
        default=0.1,
        help="share of windows seen by a desk webcam's close-up (legs out of the image)",
    )
    g = p.add_argument_group("model")
    g.add_argument("--filter-widths", type=_widths, default=(3, 3, 3))
    g.add_argument("--channels", type=v.positive_int, default=256)
    g.add_argument("--dropout", type=v.arg_float(0.0, 1.0, high_open=True), default=0.25)
    g.add_argument("--symmetric", action="store_true", help="look ahead (default: causal)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=v.positive_int, default=2000)
    g.add_argument("--batch", type=v.positive_int, default=128, help="windows per step")
    g.add_argument("--chunk", type=v.positive_int, default=16, help="output frames per window")
    g.add_argument("--lr", type=v.positive_float, default=1e-3)
    g.add_argument("--noise-px", type=v.non_negative_float, default=1.0)
    g.add_argument("--seed", type=v.seed_int, default=0)
    g.add_argument("--threads", type=v.threads_int, help="torch CPU threads")
    g.add_argument("--val-every", type=v.positive_int, default=250)
    g = p.add_argument_group("meta (MAML)")
    g.add_argument("--init", help="checkpoint to start from (the augmented model)")
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
    from distpose_app.data.synthetic import load_or_build
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
        lr_final=args.lr / 10,
        noise_px=args.noise_px,
        masking=not args.no_masking,
        closeup=args.closeup,
        seed=args.seed,
        val_every=args.val_every,
        init=args.init or "",
        tasks_per_batch=args.tasks,
        inner_steps=args.inner_steps,
        inner_lr=args.inner_lr,
        inner_params=args.inner_params,
        inner_loss=args.inner_loss,
        second_order=args.second_order,
    )
    config.validate()
    train_set = load_or_build(
        args.archive, "train", args.views, cache_dir=args.cache, poses=args.poses
    )
    val_set = load_or_build(args.archive, "val", 1, cache_dir=args.cache, poses=args.poses)
    best = train(config, train_set, val_set, out, resume=not args.no_resume)
    print(f"best checkpoint: {best}")
    if args.export:
        shutil.copyfile(best, args.export)
        print(f"exported to {args.export}")
    return 0
