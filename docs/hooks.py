"""mkdocs hook: the command-line reference, rendered from trajpred's own argparse parsers.

docs/reference/cli.md holds the marker `<!-- cli-reference -->`; at build time it is replaced
by `trajpred --help` and every `trajpred COMMAND --help`, exactly as the console script prints
them (trajpred/cli.py's `build_parser`), so the help and the documentation have one source.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

MARKER = "<!-- cli-reference -->"
ROOT = Path(__file__).resolve().parents[1]


def cli_reference() -> str:
    """Markdown: the top-level help, then one section per subcommand, in `trajpred --help`'s
    order, each its summary and its full `--help` text."""
    sys.path.insert(0, str(ROOT))  # this checkout's trajpred, not another installed one
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: fix the width
    from trajpred.cli import COMMANDS, build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    parts = ["## trajpred", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, summary in COMMANDS.items():
        text = subparsers[name].format_help().rstrip()
        parts += [f"## trajpred {name}", "", f"{summary[0].upper()}{summary[1:]}.", ""]
        parts += ["```text", text, "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, cli_reference())
