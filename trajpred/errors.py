"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import os

MAX_MESSAGE = 300  # characters of a library's message that one of our lines quotes at most


class TrajpredError(Exception):
    """A problem with the user's input (file, argument, config) rather than a bug."""


class InputError(TrajpredError):
    """A file that cannot be used, named with the line where the problem is."""

    def __init__(self, path: str | os.PathLike, problem: str, line: int | None = None):
        where = f"{os.fspath(path)}:{line}" if line is not None else os.fspath(path)
        super().__init__(f"{where}: {problem}")
        self.path = os.fspath(path)
        self.line = line
        self.problem = problem


class OutputError(InputError):
    """A file that could not be written (full disk, read-only file system, ...), named."""


def first_line(e: BaseException, limit: int = 160) -> str:
    """The first non-empty line of an exception's message (its type name when it has none), at
    most `limit` characters: what a one-line error quotes of a library's exception."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    text = lines[0] if lines else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def reason(e: OSError) -> str:
    """Why an OS call failed, in words ("No space left on device"), without the file name."""
    return e.strerror or first_line(e)
