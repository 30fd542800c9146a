"""Atomic writes: write to a temporary file beside the target, then rename over it.

A reader (or a crash) never sees a half-written checkpoint, CSV or JSON file, and a write that
fails (full disk, read-only file system) leaves the earlier file as it was and ends as one
`OutputError` that names the file. Three shapes, one mechanism:

- `atomic_open(path)` / `write_text` / `write_json`: a file written in one go;
- `atomic_path(path)`: a temporary name for writers that want a path (torch.save, OpenCV,
  matplotlib);
- `Staging`: files that grow while a command runs (a video, per-frame CSV rows) under hidden
  partial names, published together only when the run has produced them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import OutputError, first_line, reason


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file next to `path`; on success fsync and rename it to `path`."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, mode, **kwargs) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, _umask_mode())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """An OSError inside (disk full, read-only file system, quota, I/O error) becomes one
    OutputError that names `path`: the file the user has to do something about."""
    try:
        yield
    except OSError as e:
        raise OutputError(path, f"cannot write ({reason(e)})") from None


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, errors: tuple[type[BaseException], ...] = (OSError,)
) -> Iterator[Path]:
    """A fresh temporary path beside `path` for writers that need a file name; when the block
    ends it is fsynced and renamed to `path`. If the block raises, the temporary file is
    removed and `path` is left as it was; `errors` (e.g. torch.save's RuntimeError on a full
    disk) become one OutputError that names `path`."""
    path = Path(path)
    with writing(path):
        tmp = temp_path_for(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except errors as e:
        why = reason(e) if isinstance(e, OSError) else _why_not_written(tmp, first_line(e, 120))
        raise OutputError(path, f"cannot write ({why})") from None
    finally:
        tmp.unlink(missing_ok=True)


def _why_not_written(tmp: Path, otherwise: str) -> str:
    """Libraries that write through their own streams (torch.save) report a full disk only as
    a failed write: say "No space left on device" when the file system is full, "File too
    large" when the file reached the process's size limit, else what the library said."""
    with contextlib.suppress(OSError):
        if shutil.disk_usage(tmp.parent).free < 64 * 1024:
            return os.strerror(errno.ENOSPC)
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and tmp.stat().st_size >= limit:
            return os.strerror(errno.EFBIG)
    return otherwise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", newline="") as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _umask_mode() -> int:
    """0666 less the process umask: mkstemp creates 0600 files, outputs should not be."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_path_for(path: str | os.PathLike) -> Path:
    """A fresh temporary path beside `path`, for writers that need a file name (torch.save, cv2).
    A folder that cannot hold it is one OutputError naming `path` (the file the user named),
    not the temporary name."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
        )
        os.close(fd)
        os.chmod(tmp, _umask_mode())
    return Path(tmp)


def partial_path(path: str | os.PathLike) -> Path:
    """Where a file written progressively (a video, per-frame CSV rows) grows before `publish`:
    a hidden name beside it, keeping the suffix so writers that pick a format by it still can."""
    path = Path(path)
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def publish(partial: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move a finished progressive file into place in one rename: an earlier `path` stays intact
    until then, and a run killed outright leaves only the hidden partial file."""
    with open(partial, "rb+") as f:
        os.fsync(f.fileno())
    os.chmod(partial, _umask_mode())
    os.replace(partial, path)


class Staging:
    """Files that grow while a command runs, each under its hidden `partial_path` until
    `publish()` moves them all into place; `discard()` removes them instead. A run that fails
    (or stops before it produced anything) discards, so every file an earlier run left stays
    exactly as it was; a run killed outright leaves only hidden `.*.partial.*` files."""

    def __init__(self) -> None:
        self._pairs: list[tuple[Path, Path]] = []

    def stage(self, path: str | os.PathLike) -> Path:
        """The partial path to write `path` under."""
        partial = partial_path(path)
        self._pairs.append((partial, Path(path)))
        return partial

    @contextlib.contextmanager
    def file(self, path: str | os.PathLike) -> Iterator[Path]:
        """The partial path to write `path` under, for a block whose write errors name `path`."""
        try:
            yield self.stage(path)
        except OutputError as e:
            raise OutputError(path, e.problem) from None

    def publish(self) -> None:
        pairs, self._pairs = self._pairs, []
        for partial, final in pairs:
            if partial.exists():
                with writing(final):
                    publish(partial, final)

    def discard(self) -> None:
        pairs, self._pairs = self._pairs, []
        for partial, _ in pairs:
            if partial.is_file():  # not whatever else may sit under that name
                with contextlib.suppress(OSError):
                    partial.unlink()
