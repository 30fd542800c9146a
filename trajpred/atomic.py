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
import signal
import tempfile
import threading
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


class StagedFolder:
    """A folder a command rewrites as a whole (adapt's train/): written under its hidden
    `partial_path` (`create()`), swapped in by `publish()` once the run's result is complete, or
    removed by `discard()`. Until `publish()` an earlier folder stays exactly as it was, and
    nothing new is visible; a run killed outright leaves only the hidden `.NAME.partial`, which
    the next `create()` clears. `publish()` renames the earlier folder to a hidden `.NAME.old`,
    the new one into place, then removes the old one; a run killed between those two renames
    leaves `.NAME.old`, which the next `create()` puts back. Hold the output's lock (and keep
    `paths` out of the command's inputs: `outputs.refuse_overwriting_inputs(folders=...)`)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.old = self.path.with_name(f".{self.path.name}.old")

    @property
    def paths(self) -> tuple[Path, Path, Path]:
        """Every name the folder lives under, earlier, new or on its way out."""
        return self.path, self.partial, self.old

    def create(self) -> Path:
        """A new, empty partial folder to write into; returns its path."""
        with writing(self.path):
            if _is_folder(self.old):
                if os.path.lexists(self.path):
                    _remove(self.old)
                else:  # a run killed in the middle of publish(): the earlier folder comes back
                    os.replace(self.old, self.path)
            if os.path.lexists(self.path) and not _is_folder(self.path):
                raise OutputError(self.path, "exists and is not a folder")
            _remove(self.partial)
            self.partial.mkdir(parents=True)
        return self.partial

    def publish(self) -> None:
        """Replace the folder with the partial one (two renames), then remove the earlier one."""
        with writing(self.path):
            if _is_folder(self.path):
                os.replace(self.path, self.old)
            os.replace(self.partial, self.path)
        with contextlib.suppress(OSError):
            _remove(self.old)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            _remove(self.partial)


def _is_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _remove(path: Path) -> None:
    """Remove a folder this module made (never what a symlink points to); absent: nothing."""
    if _is_folder(path):
        shutil.rmtree(path)
    elif path.is_symlink() or path.is_file():
        path.unlink()


class HoldInterrupt:
    """Ctrl-C inside the block is raised when it ends, so that what the block writes is never
    cut in half: a message to the writer process, files published together (only the main
    thread receives signals; elsewhere this does nothing)."""

    def __enter__(self) -> None:
        self.pending, self.previous = False, None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.getsignal(signal.SIGINT)
            if self.previous is not None:
                signal.signal(signal.SIGINT, self._hold)

    def _hold(self, signum, frame) -> None:
        self.pending = True

    def __exit__(self, kind, *_) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self.pending and kind is None:
            raise KeyboardInterrupt
