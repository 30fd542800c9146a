"""Atomic writes: write to a temporary file beside the target, then rename over it.

A reader (or a crash) never sees a half-written checkpoint, CSV or JSON file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file next to `path`; on success fsync and rename it to `path`."""
    path = Path(path)
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
    """A fresh temporary path beside `path`, for writers that need a file name (torch.save, cv2)."""
    path = Path(path)
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
