"""What runs on a Ray worker for `--ray` (the driver's side is trajpred/ray_runs.py): one video
file as a task (`run_video`), one stream as a long-lived actor (`StreamRunner`), and the actor
that adds up their progress (`Progress`).

Each attempt writes into its own hidden staging folder in OUT; the finished files are moved
into place only when the video is complete, so no attempt writes over another's or a finished
video's. The models are loaded once per worker process and config, and kept for its next video.

Test hook: TRAJPRED_TEST_KILL_AT_FRAME=N:MARKER (read by the driver, acted on only here) makes
the first task that reaches frame N, while the file MARKER does not exist, create MARKER and
SIGKILL its own worker process: a worker that dies mid-video, once (tests/test_ray.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import TrajpredError
from .video import VideoReader, VideoSource

STAGING_PREFIX = ".ray-staging-"
KILL_HOOK = "TRAJPRED_TEST_KILL_AT_FRAME"


def video_key(video: VideoSource) -> str:
    """How runs.csv names a video: a file's absolute path, a stream's URL."""
    return video.uri if video.is_stream else os.path.abspath(video.uri)


def task_threads(num_cpus: float) -> int:
    """A task's torch threads: its CPUs less one for the writer process, 1 to 8, as a local run
    on a CPU gets (ultralytics: the machine's CPUs less one, at most 8). More threads than
    that, with the writer process beside them, slow the detector down a lot on a small node."""
    return max(1, min(8, round(num_cpus) - 1))


class Progress:
    """A Ray actor the tasks report to: frames done and expected per video (an attempt that
    runs again starts its video's count over; a stream's expected frames are those done)."""

    def __init__(self) -> None:
        self.total: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def start(self, key: str, total: int) -> None:
        self.total[key], self.done[key] = total, 0

    def set(self, key: str, frames: int) -> None:
        self.done[key] = frames
        self.total[key] = max(self.total.get(key, 0), frames)

    def end(self, key: str) -> None:
        """The video is over (done or failed): the bar counts all its frames as settled."""
        self.done[key] = self.total.get(key, 0)

    def snapshot(self) -> tuple[int, int]:
        return sum(self.total.values()), sum(self.done.values())


class _ReportingReader(VideoReader):
    """A VideoReader that reports frames read to the progress actor (at most twice a second),
    stops early when `stop` is set (a stream the driver stops), and carries out the test hook
    that kills its worker."""

    def __init__(
        self,
        video: VideoSource,
        fps,
        progress,
        kill_at: str | None,
        stop: threading.Event | None = None,
    ):
        super().__init__(video, fps)
        self._key, self._progress, self._kill_at, self._stop = (
            video_key(video),
            progress,
            kill_at,
            stop,
        )
        if progress is not None:
            progress.start.remote(self._key, self.info.n_frames or 0)

    def __iter__(self) -> Iterator:
        last = time.monotonic()
        n = 0
        for n, frame in enumerate(super().__iter__(), 1):
            if self._kill_at:
                _maybe_kill(self._kill_at, n)
            yield frame
            if self._stop is not None and self._stop.is_set():
                break
            if self._progress is not None and time.monotonic() - last > 0.5:
                self._progress.set.remote(self._key, n)
                last = time.monotonic()
        if self._progress is not None:
            self._progress.set.remote(self._key, n)


def _maybe_kill(spec: str, frame: int) -> None:
    """TRAJPRED_TEST_KILL_AT_FRAME=N:MARKER: at frame N, once (MARKER absent), SIGKILL itself."""
    at, _, marker = spec.partition(":")
    if not marker or not at.isdigit() or frame != int(at):
        return
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


_cache: dict[str, Any] = {}


def _pipeline(config, command: str):
    """The pipeline (models loaded once per worker process and config) and, for predict, its
    writer process."""
    from .pipeline import Pipeline
    from .writer import WriterProcess

    if _cache.get("key") != (command, config):
        _forget_pipeline()
        forecast = command == "predict"
        _cache["writer"] = WriterProcess() if forecast else None
        _cache["pipeline"] = Pipeline(config, forecast=forecast)
        _cache["key"] = (command, config)
    return _cache["pipeline"], _cache["writer"]


def _forget_pipeline() -> None:
    if _cache.get("writer") is not None:
        with contextlib.suppress(Exception):
            _cache["writer"].close()
    _cache.clear()


def output_of(command: str, video: VideoSource) -> str:
    """Where a video's outputs go, relative to OUT."""
    return video.name if command == "predict" else f"{video.name}.csv"


@dataclass(frozen=True)
class RunSpec:
    """What the tasks of one run share: the command (predict or track), the pipeline's config,
    OUT (absolute), torch threads per task, the progress actor (None: no bar), the test hook and
    commands.predict's `predict_video` (given by the command: no module here imports a command,
    so that they can import this one)."""

    command: str
    config: Any
    out: str
    threads: int
    progress: Any = None
    kill_at: str | None = None
    predict_video: Callable | None = None


def run_video(
    spec: RunSpec, video: VideoSource, stop: threading.Event | None = None
) -> dict[str, Any]:
    """One video, in a Ray task: outputs written under a fresh hidden staging folder in OUT and
    moved into place once complete -> {status, frames, seconds, tracks, error}. A video's own
    failure (TrajpredError, or an OSError such as a full disk) is returned, not raised: Ray
    retries only a worker that died. `stop`, once set, ends a stream after its current frame,
    as if it had ended: its outputs are kept."""
    import torch

    from .cli import one_line

    start = time.perf_counter()
    staging = Path(spec.out) / f"{STAGING_PREFIX}{video.name}-{uuid.uuid4().hex[:12]}"
    opened = False
    try:
        staging.mkdir()
        pipeline, writer = _pipeline(spec.config, spec.command)
        torch.set_num_threads(spec.threads)  # after loading: ultralytics sets its own on a CPU
        fps = spec.config.fps
        with _ReportingReader(video, fps, spec.progress, spec.kill_at, stop) as reader:
            opened = True
            target = Path(spec.out) / output_of(spec.command, video)
            if spec.command == "predict":
                assert spec.predict_video is not None
                summary = spec.predict_video(
                    pipeline, reader, staging, progress=False, writer=writer
                )
                frames, tracks, seconds = summary.frames, summary.tracks, summary.seconds
                _move_files(staging, target)
            else:
                from .video_tracks import track_video

                name = target.name
                frames, tracks, seconds = track_video(pipeline, reader, staging / name, False)
                os.replace(staging / name, target)
        # seconds: the video's own, as a local run prints them (models loaded before)
        info = reader.info
        return {
            "status": "stopped" if stop is not None and stop.is_set() else "done",
            "frames": frames,
            "tracks": tracks,
            "seconds": seconds,
            "video": {"fps": info.fps, "width": info.width, "height": info.height},
        }
    except TrajpredError as e:
        error = one_line(e)
    except OSError as e:
        error = one_line(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if opened:  # failed half-way: the next video on this worker gets a fresh writer and models
        _forget_pipeline()
    return {"status": "failed", "seconds": time.perf_counter() - start, "error": error}


def _move_files(staging: Path, final: Path) -> None:
    """The finished files of `staging` into `final`, each in one rename (same file system)."""
    from .outputs import writable_folder

    writable_folder(final)
    for path in sorted(staging.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            os.replace(path, final / path.name)


class StreamRunner:
    """A Ray actor for one stream (threaded: `stop()` reaches it while `run()` reads): runs
    the stream until it ends or the driver stops it; a restarted actor runs it again from
    the stream's present, into a fresh staging folder."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def run(self, spec: RunSpec, video: VideoSource) -> dict[str, Any]:
        """`run_video` of the stream, until it ends or `stop()`."""
        return run_video(spec, video, self._stop)

    def stop(self) -> None:
        self._stop.set()
