"""The `trajpred` console script: one parser, one subcommand per module in trajpred/commands.

Every user error (bad argument, bad file, bad config) ends as one line on stderr and exit
code 2; Ctrl-C ends with 130 after the command has closed its outputs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import TrajpredError

# Order shown in `trajpred --help`: the data flow, then the helpers around it.
COMMANDS = {
    "predict": "detect, track and forecast every object in a video (annotated video + CSV)",
    "track": "detect and track only; export tracks that `trajpred train` accepts",
    "train": "train the LSTM forecaster on labelled tracks",
    "adapt": "fit the forecaster to one camera from its own tracks (no labels needed)",
    "evaluate": "ADE/FDE of a checkpoint beside the constant-velocity baseline",
    "export": "export the forecaster as one ONNX or TorchScript file (edge devices)",
    "demo": "synthesize a scene and run the whole pipeline on it, offline, with scores",
    "synth": "generate a synthetic scene: video, ground-truth tracks, homography",
    "homography": "fit an image -> ground plane homography (metres) from point pairs",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line instead of usage + message."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="trajpred",
        description="Watch a video and say where every moving object will be next.",
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"trajpred {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name, summary in COMMANDS.items():
        module = importlib.import_module(f".commands.{name}", __package__)
        p = sub.add_parser(
            name, help=summary, description=module.__doc__, formatter_class=Formatter
        )
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args) or 0)
    except TrajpredError as e:
        print(f"trajpred {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"trajpred {args.command}: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
