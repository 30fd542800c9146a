"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import os


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
