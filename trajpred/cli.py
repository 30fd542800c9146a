"""The `trajpred` console script: one parser, one subcommand per module in trajpred/commands.

Every user error (bad argument, bad file, bad config, an output that cannot be written) ends
as one line on stderr and exit code 2. Ctrl-C ends with 130, and SIGTERM (how docker, systemd
and CI stop a process) with 143, both after the command has closed its outputs: SIGTERM runs
exactly the Ctrl-C path. Python warnings (ours and libraries') are one line each.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
import warnings
from collections.abc import Iterator

from . import __version__
from .errors import MAX_MESSAGE, TrajpredError, first_line

# Order shown in `trajpred --help`: the data flow, then the helpers around it.
COMMANDS = {
    "predict": "detect, track and forecast every object in a video (annotated video + CSV)",
    "track": "detect and track only; export tracks that `trajpred train` accepts",
    "train": "train the LSTM forecaster on labelled tracks",
    "adapt": "fit the forecaster to one camera from its own tracks (no labels needed)",
    "evaluate": "ADE/FDE of a checkpoint beside the constant-velocity baseline",
    "calibrate": "fit a checkpoint's uncertainty (r50/r90) on data it was not trained on",
    "export": "export the forecaster as one ONNX or TorchScript file (edge devices)",
    "summary": "add up a --ray run's index and CSVs: videos, frames, tracks, forecasts, failures",
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


def one_line(message: object, limit: int = MAX_MESSAGE) -> str:
    """A message as one line of at most `limit` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Terminated:
    """SIGTERM handled as Ctrl-C: the handler runs whatever SIGINT's handler is at that moment
    (so code that holds Ctrl-C back until a message is complete holds SIGTERM back too), and
    `main` exits with 143 instead of 130."""

    received = False

    @classmethod
    def handle(cls, signum, frame) -> None:
        cls.received = True
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:  # SIGINT ignored (e.g. started in the background by a shell): stop anyway
            raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_and_warnings(command: str) -> Iterator[None]:
    """SIGTERM -> the Ctrl-C path, and warnings as one line each, while a command runs."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _Terminated.handle) if main_thread else None
    _Terminated.received = False
    show = warnings.showwarning

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        print(f"trajpred {command}: warning: {one_line(message)}", file=sys.stderr)

    warnings.showwarning = one_line_warning
    try:
        yield
    finally:
        warnings.showwarning = show
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    name = f"trajpred {args.command}"
    with _signals_and_warnings(args.command):
        try:
            return int(args._module.run(args) or 0)
        except TrajpredError as e:
            print(f"{name}: error: {one_line(e)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(
                f"{name}: {'terminated' if _Terminated.received else 'interrupted'}",
                file=sys.stderr,
            )
            return 143 if _Terminated.received else 130
        except OSError as e:  # a file or device the commands did not name themselves
            where = f"{e.filename}: " if e.filename else ""
            print(
                f"{name}: error: {one_line(where + (e.strerror or first_line(e)))}", file=sys.stderr
            )
            return 2
        except MemoryError:
            print(f"{name}: error: out of memory; use smaller settings", file=sys.stderr)
            return 2


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
