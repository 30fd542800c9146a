"""The writer process: forecasting, drawing and encoding beside detection, not under its GIL.

Detection and tracking spend much of each frame in Python (ultralytics' pre- and
post-processing, the tracker), and so do forecasting and drawing: on two threads of one
process they take turns on the GIL. Measured on 2 cores, 4.7 ms a frame of GIL-holding work on
a second thread cut detection's fps by about 30 %; the same time spent in C with the GIL
released cut it by under 8 %. So `predict_video` (commands/predict.py) hands each tracked
frame to one separate process that owns the forecaster's per-track state, the renderer and the
output files:

- the image goes through a ring of `depth` shared-memory slots (a copy, no pickling);
- the rest of the FrameResult (tracks, detections: small arrays) is pickled over a pipe;
- at most `depth` frames are in flight, so memory stays flat and the outputs are never more
  than `depth` frames behind;
- the process ignores SIGINT and SIGTERM: after Ctrl-C (or SIGTERM, which trajpred's CLI
  treats the same) the main process closes the video, and the writer finishes the frames it
  was given, then closes every file and publishes them, or removes them when the main process
  says the run failed (`finish(publish=False)`).

One process serves every video of a run (start-up imports torch: about 2 s, overlapping the
detector's loading when started first). Errors in it come back as the same one-line errors.

The pipe carries the small message dataclasses below, in this order per video: OpenVideo ->
Ready (or OpenFailed); Frame -> FrameDone, once per frame; CloseVideo -> Closed. Ping -> Pong
waits for the start; Stop ends the process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import multiprocessing.util
import os
import shutil
import signal
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from .atomic import HoldInterrupt
from .errors import TrajpredError, reason
from .events import EventsConfig
from .pipeline import ForecastConfig
from .render import RenderConfig
from .results import FrameForecasts, FrameResult
from .video import VideoInfo
from .zones import ZoneSet

WRITER_NICENESS = 10  # added to the writer process's nice value (see _serve)


@dataclass
class VideoJob:
    """What the writer needs to write one video's outputs (sent once, when the video opens)."""

    out_dir: Path
    info: VideoInfo
    render: RenderConfig
    forecast: ForecastConfig
    checkpoint: str | None  # forecaster checkpoint, None: no forecasts
    device: str
    homography: np.ndarray | None
    send_forecasts: bool  # return each frame's forecasts (for an on_result callback)
    zones: ZoneSet | None = None  # watched for events (events.csv, alerts.csv), or None
    events: EventsConfig | None = None


# ------------------------------------------------------------------ the messages on the pipe


@dataclass(frozen=True)
class Failure:
    """An exception in the writer, sent back as data: a user error's one line, or a bug's
    traceback."""

    user_error: bool  # a TrajpredError (bad input or output): shown as one line
    message: str

    @classmethod
    def of(cls, e: BaseException) -> Failure:
        if isinstance(e, TrajpredError):
            return cls(True, str(e))
        return cls(False, "".join(traceback.format_exception(e)))

    def raise_(self) -> NoReturn:
        if self.user_error:
            raise TrajpredError(self.message)
        raise RuntimeError(f"writer process: {self.message}")


@dataclass(frozen=True)
class Ping:
    """Main -> writer: answer Pong once started."""


@dataclass(frozen=True)
class Pong:
    """Writer -> main: started (imports done)."""


@dataclass(frozen=True)
class OpenVideo:
    """Main -> writer: start a video whose frames arrive in `depth` slots of shared memory."""

    job: VideoJob
    shm_name: str
    depth: int


@dataclass(frozen=True)
class Ready:
    """Writer -> main: the video's forecaster and output files are open."""


@dataclass(frozen=True)
class OpenFailed:
    """Writer -> main: the video could not be opened; the writer waits for the next one."""

    error: Failure


@dataclass(frozen=True)
class Frame:
    """Main -> writer: one tracked frame; its image (result.image is None) is in slot `slot`."""

    slot: int
    result: FrameResult


@dataclass(frozen=True)
class FrameDone:
    """Writer -> main: the frame is written and its slot free again; its forecasts when the job
    asked for them; the first error of this video, if any (later frames are then skipped)."""

    forecasts: FrameForecasts | None
    error: Failure | None


@dataclass(frozen=True)
class CloseVideo:
    """Main -> writer: every frame is sent; close the files and publish them (or, when the run
    failed, remove them)."""

    publish: bool = True


@dataclass(frozen=True)
class Closed:
    """Writer -> main: the files are closed and published; seconds the forecaster spent."""

    forecast_seconds: float
    error: Failure | None


@dataclass(frozen=True)
class Stop:
    """Main -> writer: end the process."""


# ------------------------------------------------------------------ the main process's end


class WriterProcess:
    """The main process's end: `open(job)`, `put(result)` per frame, `finish()`; `close()`."""

    def __init__(self, depth: int = 6):
        self.depth = depth
        ctx = multiprocessing.get_context("spawn")  # no forked torch/OpenCV thread state
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), name="trajpred-writer", daemon=True)
        self._proc.start()
        child.close()
        self._shm: shared_memory.SharedMemory | None = None
        self._slots: np.ndarray | None = None  # (depth, H, W, 3) uint8 over the shared memory
        # The process ignores SIGTERM, so multiprocessing's exit handler could not terminate it
        # as a daemon: whoever owns it stops it before that handler runs, `close()` or not.
        self._stop = multiprocessing.util.Finalize(
            self, _stop, args=(self._proc, self._conn), exitpriority=10
        )

    def wait_ready(self) -> None:
        """Block until the process has started (imports done); benchmarks call this first."""
        self._send(Ping())
        self._recv()

    # ------------------------------------------------------------------ one video
    def open(self, job: VideoJob, on_result: Callable[[FrameResult], None] | None = None) -> None:
        """Start a video: the writer creates its output files (one-line error if it cannot)."""
        h, w = job.info.height, job.info.width
        self._shm = _frame_slots(self.depth * h * w * 3)
        self._slots = np.ndarray((self.depth, h, w, 3), np.uint8, buffer=self._shm.buf)
        self._free = list(range(self.depth))
        self._pending: deque[tuple[int, FrameResult]] = deque()
        self._on_result = on_result
        self._error: Failure | None = None
        self._copy_pixels = job.render.video  # without a video the writer never reads them
        try:
            with HoldInterrupt():
                self._send(OpenVideo(job, self._shm.name, self.depth))
                reply = self._recv()
            if isinstance(reply, OpenFailed):
                reply.error.raise_()
        except BaseException:
            self._release_slots()
            raise

    def put(self, result: FrameResult) -> None:
        """Hand over one tracked frame (blocks while `depth` frames are in flight)."""
        with HoldInterrupt():
            self._put(result)

    def _put(self, result: FrameResult) -> None:
        while not self._free:
            self._collect()
        if self._error is not None:
            self._error.raise_()
        slot = self._free.pop()
        slots = self._slots
        assert slots is not None, "put() before open()"
        if self._copy_pixels:
            image = result.image
            if image.shape != slots.shape[1:]:  # a stream that changed size mid-way
                import cv2

                image = cv2.resize(image, (slots.shape[2], slots.shape[1]))
            slots[slot] = image
        self._pending.append((slot, result))
        # The pixels went through shared memory: the pipe carries the rest without them.
        self._send(Frame(slot, dataclasses.replace(result, image=None)))  # type: ignore[arg-type]

    def finish(self, publish: bool = True) -> float:
        """Wait for every frame handed over, close the files and publish them (publish=False:
        remove them, leaving an earlier run's files as they were); the seconds the forecaster
        spent. Raises the first error the writer met."""
        with HoldInterrupt():
            return self._finish(publish)

    def _finish(self, publish: bool) -> float:
        try:
            while self._pending:
                self._collect()
            self._send(CloseVideo(publish))
            reply: Closed = self._recv()
            error = self._error or reply.error
            if error is not None:
                error.raise_()
            return reply.forecast_seconds
        finally:
            self._release_slots()

    def _collect(self) -> None:
        """Receive one finished frame: free its slot and show it to on_result."""
        reply: FrameDone = self._recv()
        slot, result = self._pending.popleft()
        self._free.append(slot)
        self._error = self._error or reply.error
        if reply.forecasts is not None and self._on_result is not None and self._error is None:
            self._on_result(dataclasses.replace(result, forecasts=reply.forecasts))

    def _release_slots(self) -> None:
        if self._shm is not None:
            self._slots = None
            self._shm.close()
            self._shm.unlink()
            self._shm = None

    # ------------------------------------------------------------------ the pipe
    def _send(self, message: Ping | OpenVideo | Frame | CloseVideo) -> None:
        if not self._proc.is_alive():
            raise self._died()
        self._conn.send(message)

    def _recv(self) -> Any:
        while not self._conn.poll(0.5):
            if not self._proc.is_alive():
                raise self._died()
        return self._conn.recv()

    def _died(self) -> TrajpredError:
        return TrajpredError(
            f"the writer process stopped unexpectedly (exit code "
            f"{self._proc.exitcode}); outputs so far are left as hidden "
            f".*.partial.* files"
        )

    def close(self) -> None:
        """Stop the process (after `finish`)."""
        self._stop()

    def __enter__(self) -> WriterProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _frame_slots(size: int) -> shared_memory.SharedMemory:
    """Shared memory for the frame ring, or one line on why not. /dev/shm may be smaller than
    the ring (docker gives 64 MB): creating it would succeed and the first write past the end
    of the space would kill the process (SIGBUS), so the free space is checked first."""
    with contextlib.suppress(OSError):
        free = shutil.disk_usage("/dev/shm").free
        if free < size:
            raise TrajpredError(
                f"/dev/shm: {free / 1e6:.0f} MB free, the writer needs {size / 1e6:.0f} MB for "
                f"frames of this size (e.g. docker run --shm-size=1g)"
            )
    try:
        return shared_memory.SharedMemory(create=True, size=size)
    except OSError as e:
        raise TrajpredError(
            f"cannot allocate {size / 1e6:.0f} MB of shared memory for frames ({reason(e)})"
        ) from None


def _stop(proc, conn) -> None:
    if proc.is_alive():
        try:
            conn.send(Stop())
        except OSError:
            pass
        proc.join(10)
    if proc.is_alive():
        proc.kill()
    conn.close()


# ---------------------------------------------------------------------- the writer's end


class _Video:
    """One video inside the writer process: forecaster, renderer and files."""

    def __init__(self, job: VideoJob, shm_name: str, depth: int, models: dict):
        from .pipeline import LiveForecaster, load_model
        from .predict_files import PredictOutputs
        from .render import Renderer

        self.shm = shared_memory.SharedMemory(name=shm_name)
        self.frames: np.ndarray | None = np.ndarray(
            (depth, job.info.height, job.info.width, 3), np.uint8, buffer=self.shm.buf
        )
        self.forecaster = None
        if job.checkpoint is not None:
            if job.checkpoint not in models:
                models[job.checkpoint] = load_model(job.checkpoint)
            self.forecaster = LiveForecaster(
                models[job.checkpoint],
                job.info.fps,
                job.forecast,
                job.device,
                job.homography,
                job.zones,
                job.events,
            )
        alert = (job.events or EventsConfig()).alert
        self.renderer = Renderer(job.info.fps, job.render, job.zones, alert)
        self.outputs: PredictOutputs | None = None
        try:
            self.outputs = PredictOutputs(
                job.out_dir,
                job.info,
                job.homography,
                video=job.render.video,
                samples=job.checkpoint is not None and job.forecast.k > 0,
                events=job.checkpoint is not None and job.zones is not None,
            )
        except BaseException:
            self.release()
            raise

    def write(self, slot: int, result: FrameResult) -> FrameForecasts:
        assert self.frames is not None and self.outputs is not None, "write() after release()"
        result = dataclasses.replace(result, image=self.frames[slot])
        if self.forecaster is not None:
            result = dataclasses.replace(
                result, forecasts=self.forecaster.update(result.frame_id, result.tracks)
            )
        # The slot's frame is this process's until the reply: draw on it, no copy.
        annotated = self.renderer.draw(result, in_place=True) if self.renderer.cfg.video else None
        self.outputs.write(result, annotated)
        return result.forecasts

    @property
    def forecast_seconds(self) -> float:
        return self.forecaster.seconds if self.forecaster is not None else 0.0

    def release(self, publish_files: bool = True) -> None:
        outputs, self.outputs = self.outputs, None
        try:
            if outputs is not None:
                outputs.close(publish_files)
        finally:
            self.frames = None
            self.shm.close()


def _serve(conn) -> None:
    """The writer process's loop: videos one after another until "stop"."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import torch

    torch.set_num_threads(1)  # small LSTM steps; the other cores belong to the detector
    # Lower priority than detection: on a small CPU the detector's threads (OpenVINO, torch)
    # take every core while a frame is inferred, and equal shares made detection wait for
    # drawing and encoding. Niced, this process runs in the gaps (the detector's
    # single-threaded pre- and post-processing, the tracker) and still keeps up, since at most
    # `depth` frames wait for it.
    with contextlib.suppress(OSError):
        os.nice(WRITER_NICENESS)
    models: dict = {}
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the main process is gone
            return
        if isinstance(message, Stop):
            return
        if isinstance(message, Ping):
            conn.send(Pong())
            continue
        try:
            video = _Video(message.job, message.shm_name, message.depth, models)
        except BaseException as e:
            conn.send(OpenFailed(Failure.of(e)))
            continue
        conn.send(Ready())
        if not _serve_video(conn, video, message.job.send_forecasts):
            return


def _serve_video(conn, video: _Video, send_forecasts: bool) -> bool:
    """Write one video's frames until CloseVideo, then publish its files; False when the main
    process is gone (killed: nothing is published)."""
    error: Failure | None = None
    try:
        while isinstance(message := conn.recv(), Frame):
            forecasts = None
            if error is None:
                try:
                    forecasts = video.write(message.slot, message.result)
                except BaseException as e:
                    error = Failure.of(e)
            conn.send(FrameDone(forecasts if send_forecasts else None, error))
    except (EOFError, OSError):  # the main process died (killed): publish nothing
        video.release(publish_files=False)
        # It can no longer free the frame slots; left, they would also make the resource
        # tracker print a "leaked shared_memory" warning on the user's terminal.
        with contextlib.suppress(OSError):
            video.shm.unlink()
        return False
    try:
        # closes and publishes the files (complete rows, playable video), or removes them
        video.release(publish_files=message.publish and error is None)
    except BaseException as e:
        error = error or Failure.of(e)
    try:
        conn.send(Closed(video.forecast_seconds, error))
    except OSError:  # the main process is gone
        return False
    return True
