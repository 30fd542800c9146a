"""Output safety, shared by every command that writes files (predict, track, train, evaluate,
synth, demo, and any new one): outputs never destroy inputs or earlier results.

- `refuse_overwriting_inputs(outputs, inputs)`: an output that is one of the command's own
  inputs (the same file, also through a symlink, `..` or a hard link) is refused before
  anything runs;
- `writable_folder(path)`: create the output folder, or say in one line why it cannot be;
- `OutputLock(target)`: one run at a time per output folder (or file). The lock file holds the
  PID of the run that owns it and is locked with flock(2), so the kernel releases it when that
  process ends in any way: a lock left by a killed run is taken over by the next run;
- `output_guard(out, ...)`: the three above for one command, in one `with` block.

What is written is published only when the run produced it (`atomic.Staging`, `atomic_open`,
`atomic_path`): a run that fails half-way leaves the earlier files exactly as they were.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .atomic import partial_path
from .errors import OutputError, TrajpredError, reason

LOCK_NAME = ".trajpred.lock"
MAX_LISTED = 10_000  # files of an input folder compared with the outputs, at most

PathLike = str | os.PathLike


def _identity(path: PathLike) -> tuple[int, int] | None:
    """(device, inode) of what `path` names after every link, or None if it does not exist."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def input_files(*specs: PathLike | None) -> list[Path]:
    """Files a command reads, from file names, folders (every file below, up to MAX_LISTED) and
    glob patterns; absent ones are skipped (the command reports them itself)."""
    out: list[Path] = []
    for spec in specs:
        if spec is None or not os.fspath(spec):
            continue
        path = Path(spec).expanduser()
        if path.is_dir():
            out.extend(p for _, p in zip(range(MAX_LISTED), path.rglob("*"), strict=False))
        elif path.exists():
            out.append(path)
        elif glob.has_magic(os.fspath(spec)):
            matches = glob.iglob(os.path.expanduser(os.fspath(spec)), recursive=True)
            out.extend(Path(m) for _, m in zip(range(MAX_LISTED), matches, strict=False))
    return out


def refuse_overwriting_inputs(
    outputs: Iterable[PathLike | None],
    inputs: Iterable[PathLike | None],
    folders: Iterable[PathLike] = (),
) -> None:
    """Raise one TrajpredError line if an output path, or the partial file it grows in
    (`atomic.partial_path`), is one of the inputs, or if an input lies anywhere below one of
    `folders` (output folders the command replaces as a whole, `atomic.StagedFolder`).
    Compared by (device, inode), so a symlink, a `..` or a hard link to an input counts as the
    input, and an input reached through a symlink into such a folder counts as inside it."""
    given: list[PathLike] = [path for path in inputs if path is not None]
    by_identity: dict[tuple[int, int], PathLike] = {}
    for path in given:
        key = _identity(path)
        if key is not None:
            by_identity.setdefault(key, path)
    _refuse_inputs_below(folders, given)
    written = [p for out in outputs if out is not None for p in (out, partial_path(out))]
    for out in written:
        key = _identity(out)
        if key is not None and key in by_identity:
            source = os.fspath(by_identity[key])
            shown = "" if os.fspath(out) == source else f" ({source})"
            raise TrajpredError(
                f"{os.fspath(out)}: is an input of this command{shown}; writing it would "
                f"destroy it, so nothing was run: choose another output"
            )


def _refuse_inputs_below(folders: Iterable[PathLike], inputs: list[PathLike]) -> None:
    replaced = {key: folder for folder in folders if (key := _identity(folder)) is not None}
    if not replaced:
        return
    for path in inputs:
        if _identity(path) is None:
            continue
        for parent in Path(os.path.realpath(path)).parents:
            key = _identity(parent)
            folder = None if key is None else replaced.get(key)
            if folder is not None:
                raise TrajpredError(  # the folder by name: the line stays under 300 chars
                    f"{os.fspath(path)}: is an input of this command, inside the folder "
                    f"{Path(folder).name}/ it replaces; nothing was run: copy it elsewhere or "
                    "choose another output"
                )


def writable_folder(path: PathLike) -> Path:
    """Create the output folder (and its parents) and prove it can hold new files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(path, "exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(path, f"cannot create the output folder ({reason(e)})") from None
    try:  # a new file says why not (read-only file system, permissions, quota)
        fd, probe = tempfile.mkstemp(prefix=".trajpred-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(path, f"output folder is not writable ({reason(e)})") from None
    return path


class OutputLock:
    """`with OutputLock(out_dir):` refuses to start while another run writes into out_dir;
    `file=True` locks one output file (its lock sits beside it) instead of a folder."""

    def __init__(self, target: PathLike, file: bool = False):
        self.target = Path(target)
        self.path = (
            self.target.with_name(f".{self.target.name}.lock") if file else self.target / LOCK_NAME
        )
        self._fd: int | None = None

    def acquire(self) -> None:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise OutputError(
                    self.path.parent, f"output folder is not writable ({reason(e)})"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                raise TrajpredError(
                    f"{self.target}: in use by another trajpred run (pid {holder}, lock "
                    f"{self.path.name}); wait for it to end or choose another output"
                ) from None
            # The run that held the lock may have removed its file between our open and our
            # lock: then we hold a lock on a file nobody else will see. Lock the current one.
            if _identity(self.path) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as e:
            os.close(fd)
            raise OutputError(self.path, f"cannot write ({reason(e)})") from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()  # still locked: no other run holds this file yet
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return str(int(os.pread(fd, 32, 0).decode().strip()))
    return "unknown"


@contextlib.contextmanager
def output_guard(
    out: PathLike,
    *,
    writes: Iterable[PathLike] = (),
    reads: Iterable[PathLike | None] = (),
    file: bool = False,
    replaces: Iterable[PathLike] = (),
) -> Iterator[Path]:
    """For a command that writes into the folder `out` (or, with file=True, the file `out`):
    refuse `out` and `writes` where they are among `reads` (and `reads` that lie below a folder
    of `replaces`, which the command replaces as a whole), create the folder, and hold the
    output lock while the block runs. What new commands (adapt, export, homography) call:

        with output_guard(args.out, writes=[...], reads=input_files(args.data)) as out_dir:
            ...
    """
    out = Path(out)
    refuse_overwriting_inputs([out, *writes], reads, replaces)
    writable_folder(out.parent if file else out)
    with OutputLock(out, file=file):
        yield out
