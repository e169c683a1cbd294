"""`distpose`: the command-line interface. Each subcommand lives in distpose_app/cli/<name>.py
with `add_arguments(parser)` (cheap: no heavy imports) and `run(args) -> int`."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from distpose_app import __version__
from distpose_app.core.errors import DistposeError

# (name, module, one-line help); the order is the order shown by --help.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("data", "distpose_app.cli.data", "build or inspect the synthetic training dataset"),
    ("lens", "distpose_app.cli.lens", "describe a lens string and its corner displacement"),
    ("train", "distpose_app.cli.train", "train a lifter: baseline, augmented or meta (MAML)"),
    (
        "evaluate",
        "distpose_app.cli.evaluate",
        "score models and adaptations across lenses or pose families",
    ),
    (
        "adapt-calibrate",
        "distpose_app.cli.adapt_calibrate",
        "measure lens adaptation's bias for a model and store it in the checkpoint",
    ),
    ("process", "distpose_app.cli.process", "lift a video or camera to 3D, export BVH/CSV"),
    ("bench", "distpose_app.cli.bench", "measure every stage's speed on this machine"),
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments in one line and exits with code 2."""

    def error(self, message: str) -> NoReturn:  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="distpose",
        description="Camera-distortion-aware 3D human pose from one webcam.",
    )
    parser.add_argument("--version", action="version", version=f"distpose {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="log what happens to stderr (-vv: debug messages)",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module_name, help_text in COMMANDS:
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from distpose_app.core.logs import configure_logging

    configure_logging(args.verbose, stderr=True)
    try:
        return int(args._module.run(args) or 0)
    except DistposeError as exc:
        print(f"distpose {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the user named: missing, unreadable, disk full
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"distpose {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"distpose {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
